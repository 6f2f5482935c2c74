"""Status reports stored (latest + bounded history) and the sweep's alerts: raised once,
resolved when the rule clears, audited; offline during vs after the clinic's hours.

Real database: SQLite here, PostgreSQL when ROOMSCRIBE_TEST_DATABASE_URL is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from server import registry
from server.db import Database
from server.fleet.alerts import open_alerts, sweep
from server.fleet.hours import ClinicHours
from server.fleet.rules import HealthRules
from server.fleet.store import history, record_status
from server.fleet.tables import DeviceHealth, DeviceReport, FleetAlert
from server.models import Clinic, Device
from server.review.models import AuditEvent
from tests.support import enrol_device

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOURS = ClinicHours.parse("Mon-Fri 07:00-19:00")
RULES = HealthRules()


def status(state: str = "listening", peak: float | None = -20.0, capture_errors: int = 0,
           sent_at: datetime | None = None) -> dict[str, object]:
    health: dict[str, object] = {"agent_version": "1.2.3", "uptime_s": 100.0,
                                 "spool_max_bytes": 1000, "disk_free_bytes": 50,
                                 "disk_total_bytes": 100}
    if peak is not None:
        health |= {"input_peak_dbfs": peak, "input_rms_dbfs": peak - 3}
    if sent_at is not None:
        health["sent_at_us"] = int(sent_at.timestamp() * 1e6)
    return {"state": state, "encounter_id": None, "spool_bytes": 10,
            "counters": {"capture_errors": capture_errors, "frames_dropped": 0}, "health": health}


def test_latest_report_and_a_bounded_history(db: Database) -> None:
    dev = enrol_device(db)
    t0 = MONDAY_NOON
    for i in range(8):
        record_status(db, dev.device_id, status(peak=-20.0 - i), t0 + timedelta(minutes=i),
                      ip="10.1.2.3", keep_max=5)
    with db.session() as s:
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None and row.received_at == t0 + timedelta(minutes=7)
        assert (row.ip, row.report["input_peak_dbfs"], row.report["agent_version"]) == (
            "10.1.2.3", -27.0, "1.2.3")
        kept = history(s, dev.device_id, t0)
        assert [r.input_peak_dbfs for _, r in kept] == [-23.0, -24.0, -25.0, -26.0, -27.0]
    # reports older than keep_h go as new ones arrive
    record_status(db, dev.device_id, status(), t0 + timedelta(hours=2), keep_h=1.0)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DeviceReport)) == 1
    assert record_status(db, "no-such-device", status(), t0) is None


def _audit(db: Database) -> list[str]:
    with db.session() as s:
        return [f"{a.action} {a.clinic_id} {a.detail.split(': ')[0]}"
                for a in s.scalars(select(AuditEvent).where(AuditEvent.action.like("alert_%"))
                                   .order_by(AuditEvent.id))]


def test_silent_mic_alert_raised_once_and_cleared_when_speech_returns(db: Database) -> None:
    dev = enrol_device(db)
    t = MONDAY_NOON
    # a muted microphone: listening, input at -90 dBFS, a report every 30 s for 7 minutes
    for i in range(15):
        at = t + timedelta(seconds=30 * i)
        record_status(db, dev.device_id, status(peak=-90.0, sent_at=at), at)
        changes = sweep(db, RULES, HOURS, at, lambda _d: True)
        if i < 10:  # under 5 min silent
            assert changes == []
    with db.session() as s:
        alerts = open_alerts(s)
        assert [(a.device_id, a.rule) for a in alerts] == [(dev.device_id, "silent_mic")]
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None and row.state == "failing"
        assert "microphone unplugged or muted" in row.reason
    # speech returns
    back = t + timedelta(minutes=8)
    record_status(db, dev.device_id, status(peak=-12.0, sent_at=back), back)
    changes = sweep(db, RULES, HOURS, back, lambda _d: True)
    assert [(c.event, c.rule) for c in changes] == [("resolved", "silent_mic")]
    assert changes[0].as_json()["text"].startswith(f"[test-clinic/exam-1] {dev.device_id}: ")
    with db.session() as s:
        assert open_alerts(s) == []
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None and (row.state, row.reason) == ("ok", "")
        assert s.scalar(select(func.count()).select_from(FleetAlert)) == 1
    aid = changes[0].alert_id
    what = f"alert {aid} {dev.device_id} (exam-1) silent_mic"
    assert _audit(db) == [f"alert_raised test-clinic {what}", f"alert_resolved test-clinic {what}"]


def test_offline_during_clinic_hours_fails_after_hours_does_not(db: Database) -> None:
    dev = enrol_device(db)
    with db.session() as s:  # the clinic is in Chicago: 12:00 UTC is 06:00 there
        clinic = s.get(Clinic, "test-clinic")
        assert clinic is not None
        clinic.timezone = "America/Chicago"
    last = MONDAY_NOON - timedelta(minutes=30)
    record_status(db, dev.device_id, status(state="idle"), last)
    offline = lambda _d: False  # noqa: E731
    assert sweep(db, RULES, HOURS, MONDAY_NOON, offline) == []  # 30 min, before opening
    with db.session() as s:
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None and (row.state, row.offline_since) == ("ok", last)
    opening = datetime(2026, 3, 2, 13, 1, tzinfo=UTC)  # 07:01 in Chicago
    changes = sweep(db, RULES, HOURS, opening, offline)
    assert [(c.event, c.rule, c.reason) for c in changes] == [
        ("raised", "offline", "offline 91 min during clinic hours")]
    assert sweep(db, RULES, HOURS, opening + timedelta(minutes=1), offline) == []  # deduplicated
    # it reconnects
    changes = sweep(db, RULES, HOURS, opening + timedelta(minutes=2), lambda _d: True)
    assert [(c.event, c.rule) for c in changes] == [("resolved", "offline")]
    with db.session() as s:
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None and row.offline_since is None


def test_a_revoked_devices_alerts_resolve_and_it_is_no_longer_judged(db: Database) -> None:
    dev = enrol_device(db)
    other = enrol_device(db, "exam-2")
    record_status(db, dev.device_id, status(), MONDAY_NOON - timedelta(hours=1))
    changes = sweep(db, RULES, HOURS, MONDAY_NOON, lambda d: d == other.device_id)
    assert [(c.device_id, c.event) for c in changes] == [(dev.device_id, "raised")]
    with db.session() as s:
        registry.revoke_device(s, dev.device_id)
    changes = sweep(db, RULES, HOURS, MONDAY_NOON + timedelta(minutes=1), lambda _d: False)
    # the other device never reported: a warning ("never connected"), not an alert
    assert [(c.device_id, c.event, c.reason) for c in changes] == [
        (dev.device_id, "resolved", "device revoked")]
    with db.session() as s:
        assert [a.device_id for a in open_alerts(s)] == []
        assert s.get(Device, dev.device_id) is not None


def test_never_connected_is_a_warning_not_an_alert(db: Database) -> None:
    dev = enrol_device(db)
    assert sweep(db, RULES, HOURS, MONDAY_NOON, lambda _d: False) == []
    with db.session() as s:
        row = s.get(DeviceHealth, dev.device_id)
        assert row is not None
        assert (row.state, row.reason) == ("warning", "enrolled, never connected")
