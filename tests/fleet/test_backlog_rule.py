"""The transcription-backlog rule: table-tested as a pure rule and as the pure watch that
feeds it, then end to end through the sweep and the fleet monitor (real database): a
room whose backlog stays over the threshold raises one alert, which clears when it
drains, and a node that does not transcribe the room leaves the alert alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.asr.monitor import RoomProgress, TranscriptionMonitor
from server.db import Database
from server.fleet.alerts import open_alerts, sweep
from server.fleet.backlog import BacklogWatch, room_backlogs
from server.fleet.hours import ClinicHours
from server.fleet.monitor import FleetMonitor
from server.fleet.report import HealthReport
from server.fleet.rules import DeviceView, HealthRules, Level, RoomBacklog, Rule, evaluate
from server.review.models import AuditEvent
from server.settings import Settings
from tests.support import enrol_device

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, clinic open
RULES = HealthRules(backlog_max_s=60.0, backlog_for_s=120.0)
OPEN = ClinicHours.parse("Mon-Sun 00:00-24:00")


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


def online(backlog: RoomBacklog | None) -> DeviceView:
    return DeviceView(connected=True, clinic_open=True, latest=HealthReport(state="listening"),
                      latest_at=ago(5), backlog=backlog)


CASES = [
    # (name, view, level, rule of the worst finding or None, words in the reason)
    ("not transcribed here", online(None), Level.OK, None, ""),
    ("no backlog", online(RoomBacklog(0.0)), Level.OK, None, ""),
    ("under the threshold", online(RoomBacklog(59.0)), Level.OK, None, ""),
    ("at the threshold is not over", online(RoomBacklog(60.0, ago(600))), Level.OK, None, ""),
    ("just over", online(RoomBacklog(61.0, ago(0))), Level.WARNING, Rule.BACKLOG,
     "transcription 61 s behind the audio (over 60 s for 0 s)"),
    ("over, not yet long", online(RoomBacklog(95.0, ago(119))), Level.WARNING, Rule.BACKLOG,
     "over 60 s for 119 s"),
    ("over for the whole while", online(RoomBacklog(95.0, ago(120))), Level.FAILING,
     Rule.BACKLOG, "transcription 95 s behind the audio (over 60 s for 2 min)"),
    ("over for long", online(RoomBacklog(400.0, ago(3 * 3600))), Level.FAILING, Rule.BACKLOG,
     "400 s behind the audio (over 60 s for 3.0 h)"),
    ("device offline, backlog still judged",
     DeviceView(False, True, offline_since=ago(30), backlog=RoomBacklog(90.0, ago(300))),
     Level.FAILING, Rule.BACKLOG, "90 s behind"),
]


@pytest.mark.parametrize(("name", "view", "level", "rule", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_backlog_rule(name: str, view: DeviceView, level: Level, rule: Rule | None,
                      words: str) -> None:
    health = evaluate(view, RULES, NOW)
    assert health.level is level, (name, health)
    found = [f for f in health.findings if f.rule is Rule.BACKLOG]
    if rule is None:
        assert found == []
    else:
        assert found[0].level is level and words in found[0].reason, found


def test_the_threshold_and_the_while_are_settings() -> None:
    rules = HealthRules.from_settings(Settings(fleet_backlog_max_s=30, fleet_backlog_for_s=10))
    assert (rules.backlog_max_s, rules.backlog_for_s) == (30, 10)
    assert evaluate(online(RoomBacklog(31.0, ago(10))), rules, NOW).level is Level.FAILING
    assert (HealthRules().backlog_max_s, HealthRules().backlog_for_s) == (60.0, 60.0)


# one sample per sweep: (seconds after start, {room: backlog}) -> {room: (backlog, over for)}
WATCH = [
    (0, {"a": 10.0, "b": 70.0}, {"a": (10.0, None), "b": (70.0, 0)}),
    (15, {"a": 61.0, "b": 80.0}, {"a": (61.0, 0), "b": (80.0, 15)}),
    (30, {"a": 59.0, "b": 90.0}, {"a": (59.0, None), "b": (90.0, 30)}),  # a drained
    (45, {"a": 65.0, "b": 90.0}, {"a": (65.0, 0), "b": (90.0, 45)}),  # a over again: anew
    (60, {"a": 65.0}, {"a": (65.0, 15), "b": (0.0, None)}),  # b no longer here: drained once
    (75, {"a": 65.0}, {"a": (65.0, 30)}),  # ... and then not judged here
    (90, {}, {"a": (0.0, None)}),
    (105, {}, {}),
]


def test_the_watch_keeps_since_when_each_room_is_over() -> None:
    watch = BacklogWatch(60.0)
    start = NOW
    for t, sample, expected in WATCH:
        now = start + timedelta(seconds=t)
        got = watch.observe(sample, now)
        assert {room: (b.backlog_s, None if b.over_since is None
                       else (now - b.over_since).total_seconds())
                for room, b in got.items()} == expected, t


def test_room_backlogs_from_the_asr_monitor() -> None:
    monitor = TranscriptionMonitor()
    assert room_backlogs(monitor) == {}
    monitor.add(RoomProgress("e1", "exam-1", "fake", received_s=100.0, decoded_s=20.0))
    monitor.add(RoomProgress("e2", "exam-1", "fake", received_s=30.0, decoded_s=25.0))
    monitor.add(RoomProgress("e3", "exam-2", "fake", received_s=5.0, decoded_s=9.0))
    assert room_backlogs(monitor) == {"exam-1": 80.0, "exam-2": 0.0}


def _backlog_audit(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.detail).where(
            AuditEvent.action.in_(("alert_raised", "alert_resolved")),
            AuditEvent.detail.contains("backlog")).order_by(AuditEvent.id)))


def test_the_sweep_raises_keeps_and_clears_the_alert(db: Database) -> None:
    dev = enrol_device(db, "exam-1")
    other = enrol_device(db, "exam-2")
    on = lambda _d: True  # noqa: E731
    over = {"exam-1": RoomBacklog(90.0, NOW - timedelta(seconds=200))}
    changes = sweep(db, RULES, OPEN, NOW, on, over)
    assert [(c.event, c.device_id, c.rule) for c in changes] == [
        ("raised", dev.device_id, "backlog")]
    assert "transcription 90 s behind the audio" in changes[0].reason
    # a node that transcribes nothing, or not this room, leaves the alert as it is
    assert sweep(db, RULES, OPEN, NOW + timedelta(seconds=15), on, None) == []
    assert sweep(db, RULES, OPEN, NOW + timedelta(seconds=30), on,
                 {"exam-2": RoomBacklog(3.0)}) == []
    with db.session() as s:
        assert [(a.device_id, a.rule) for a in open_alerts(s)] == [(dev.device_id, "backlog")]
    # drained: cleared
    changes = sweep(db, RULES, OPEN, NOW + timedelta(seconds=45), on,
                    {"exam-1": RoomBacklog(2.0)})
    assert [(c.event, c.device_id, c.rule) for c in changes] == [
        ("resolved", dev.device_id, "backlog")]
    with db.session() as s:
        assert open_alerts(s) == []
    audit = _backlog_audit(db)
    assert len(audit) == 2 and ": cleared" in audit[1] and other.device_id not in "".join(audit)


async def test_the_monitor_feeds_the_asr_backlog_to_its_sweeps(db: Database) -> None:
    dev = enrol_device(db, "exam-1")
    asr = TranscriptionMonitor()
    clock = [NOW]
    monitor = FleetMonitor(db, HealthRules(backlog_max_s=60.0, backlog_for_s=30.0), OPEN,
                           lambda _d: True, transcription=asr, clock=lambda: clock[0])
    visit = RoomProgress("enc-1", "exam-1", "fake", received_s=100.0, decoded_s=10.0)
    asr.add(visit)

    async def at(seconds: float) -> list[tuple[str, str]]:
        clock[0] = NOW + timedelta(seconds=seconds)
        return [(c.event, c.rule) for c in await monitor.evaluate_once()]

    assert await at(0) == []  # over, not yet for 30 s
    assert await at(15) == []
    assert await at(30) == [("raised", "backlog")]
    assert await at(45) == []  # one alert, not one a sweep
    visit.decoded_s = 95.0  # caught up
    assert await at(60) == [("resolved", "backlog")]
    visit.decoded_s = 10.0  # behind again, then the visit ends while still behind
    assert await at(75) == []
    assert await at(105) == [("raised", "backlog")]
    asr.remove("enc-1")
    assert await at(120) == [("resolved", "backlog")]
    assert await at(135) == []
    with db.session() as s:
        assert open_alerts(s) == []
    assert len(_backlog_audit(db)) == 4 and dev.device_id in _backlog_audit(db)[0]
