"""Health rules, table-tested: each row a device view at a moment and the expected state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.fleet.hours import ClinicHours, HoursError
from server.fleet.report import HealthReport, normalise
from server.fleet.rules import DeviceView, HealthRules, Level, Rule, evaluate
from server.settings import Settings

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday
RULES = HealthRules()
MB = 1024 * 1024


def minutes_ago(m: float) -> datetime:
    return NOW - timedelta(minutes=m)


def report(**kw: object) -> HealthReport:
    base: dict[str, object] = {"state": "idle", "spool_bytes": 0, "spool_max_bytes": 512 * MB,
                               "capture_errors": 0, "disk_free_bytes": 50, "disk_total_bytes": 100,
                               "clock_offset_s": 0.1, "oldest_unacked_s": 0.0}
    base.update(kw)
    return HealthReport(**base)  # type: ignore[arg-type]


def silent_history(minutes: float, step: float = 0.5, peak: float = -90.0,
                   ) -> list[tuple[datetime, HealthReport]]:
    """Listening reports every ``step`` minutes from ``minutes`` ago to now, input silent."""
    n = int(minutes / step)
    return [(minutes_ago(minutes - i * step), report(state="listening", input_peak_dbfs=peak,
                                                     input_rms_dbfs=peak - 3))
            for i in range(n + 1)]


def connected(latest: HealthReport, history: list[tuple[datetime, HealthReport]] | None = None,
              ) -> DeviceView:
    history = history if history is not None else [(minutes_ago(0.1), latest)]
    return DeviceView(connected=True, clinic_open=True, latest=latest,
                      latest_at=history[-1][0], history=history)


CASES = [
    # (name, view, level, rule of the worst finding or None, words in the reason)
    ("all well", connected(report()), Level.OK, None, ""),
    ("offline 1 min in hours", DeviceView(False, True, offline_since=minutes_ago(1)),
     Level.OK, None, ""),
    ("offline 3 min in hours", DeviceView(False, True, offline_since=minutes_ago(3)),
     Level.WARNING, Rule.OFFLINE, "offline 3 min during clinic hours"),
    ("offline 6 min in hours", DeviceView(False, True, offline_since=minutes_ago(6)),
     Level.FAILING, Rule.OFFLINE, "offline 6 min during clinic hours"),
    ("offline 6 h after hours", DeviceView(False, False, offline_since=minutes_ago(360)),
     Level.OK, None, ""),
    ("offline 13 h after hours", DeviceView(False, False, offline_since=minutes_ago(780)),
     Level.WARNING, Rule.OFFLINE, "offline 13.0 h (after hours)"),
    ("never connected", DeviceView(False, True), Level.WARNING, Rule.OFFLINE,
     "never connected"),
    ("offline ignores a stale full spool",
     DeviceView(False, True, latest=report(spool_bytes=500 * MB), latest_at=minutes_ago(1),
                offline_since=minutes_ago(1)), Level.OK, None, ""),
    ("silent 1 min", connected(silent_history(1)[-1][1], silent_history(1)),
     Level.OK, None, ""),
    ("silent 3 min", connected(silent_history(3)[-1][1], silent_history(3)),
     Level.WARNING, Rule.SILENT_MIC, "input silent (-90 dBFS peak) for 3 min"),
    ("silent 6 min", connected(silent_history(6)[-1][1], silent_history(6)),
     Level.FAILING, Rule.SILENT_MIC, "microphone unplugged or muted"),
    ("quiet room, not silent", connected(silent_history(6, peak=-35)[-1][1],
                                         silent_history(6, peak=-35)), Level.OK, None, ""),
    ("speech returned just now",
     connected(report(state="listening", input_peak_dbfs=-20.0),
               [*silent_history(6)[:-1], (NOW, report(state="listening", input_peak_dbfs=-20.0))]),
     Level.OK, None, ""),
    ("silent but idle", connected(report(state="idle", input_peak_dbfs=-90.0),
                                  [(minutes_ago(30), report(state="idle",
                                                            input_peak_dbfs=-90.0))]),
     Level.OK, None, ""),
    ("spool 60 %", connected(report(spool_bytes=int(0.6 * 512 * MB))), Level.WARNING,
     Rule.SPOOL, "spool 60 % full"),
    ("spool 85 %", connected(report(spool_bytes=int(0.85 * 512 * MB))), Level.FAILING,
     Rule.SPOOL, "spool 85 % full"),
    ("unacked 3 min", connected(report(oldest_unacked_s=180.0)), Level.WARNING, Rule.UNACKED,
     "oldest unacknowledged audio 3 min old"),
    ("unacked 20 min", connected(report(oldest_unacked_s=1200.0)), Level.FAILING, Rule.UNACKED,
     "20 min"),
    ("clock 3 s ahead", connected(report(clock_offset_s=3.2)), Level.FAILING, Rule.CLOCK,
     "clock 3.2 s ahead of the server"),
    ("clock 1.5 s behind", connected(report(clock_offset_s=-1.5)), Level.OK, None, ""),
    ("disk 5 % free", connected(report(disk_free_bytes=5)), Level.WARNING, Rule.DISK,
     "5 % disk free"),
    ("disk 1 % free", connected(report(disk_free_bytes=1)), Level.FAILING, Rule.DISK,
     "1 % disk free"),
    ("hot CPU", connected(report(cpu_temp_c=85.0)), Level.WARNING, Rule.TEMPERATURE, "85 °C"),
    ("capture errors rising by 1",
     connected(report(capture_errors=5), [(minutes_ago(8), report(capture_errors=4)),
                                          (minutes_ago(0.1), report(capture_errors=5))]),
     Level.WARNING, Rule.CAPTURE_ERRORS, "1 capture errors in 10 min"),
    ("capture errors rising by 4",
     connected(report(capture_errors=8), [(minutes_ago(8), report(capture_errors=4)),
                                          (minutes_ago(0.1), report(capture_errors=8))]),
     Level.FAILING, Rule.CAPTURE_ERRORS, "4 capture errors"),
    ("old capture errors, none new",
     connected(report(capture_errors=8), [(minutes_ago(8), report(capture_errors=8)),
                                          (minutes_ago(0.1), report(capture_errors=8))]),
     Level.OK, None, ""),
    ("agent restarted: counters began again",
     connected(report(capture_errors=1), [(minutes_ago(8), report(capture_errors=9)),
                                          (minutes_ago(0.1), report(capture_errors=1))]),
     Level.WARNING, Rule.CAPTURE_ERRORS, "1 capture errors"),
    ("old agent: nothing but state",
     connected(HealthReport(state="listening")), Level.OK, None, ""),
]


@pytest.mark.parametrize(("name", "view", "level", "rule", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_rules(name: str, view: DeviceView, level: Level, rule: Rule | None,
               words: str) -> None:
    health = evaluate(view, RULES, NOW)
    assert health.level is level, health
    if rule is None:
        assert health.findings == () or all(f.level is Level.OK for f in health.findings)
        assert health.reason == ""
    else:
        assert rule in {f.rule for f in health.findings if f.level is level}
        assert words in health.reason


def test_the_worst_finding_wins_and_only_failing_rules_alert() -> None:
    view = connected(report(spool_bytes=int(0.6 * 512 * MB), clock_offset_s=-4.0))
    health = evaluate(view, RULES, NOW)
    assert health.level is Level.FAILING
    assert health.reason == "clock 4.0 s behind the server"
    assert set(health.failing_rules()) == {Rule.CLOCK}


def test_thresholds_come_from_settings_and_match_the_defaults(tmp_path: object) -> None:
    assert HealthRules.from_settings(Settings()) == HealthRules()
    strict = HealthRules.from_settings(Settings(fleet_offline_fail_min=1.0))
    health = evaluate(DeviceView(False, True, offline_since=minutes_ago(1.5)), strict, NOW)
    assert health.level is Level.FAILING


HOURS = ClinicHours.parse("Mon-Fri 07:00-19:00, Sat 08:00-12:00")


@pytest.mark.parametrize(("utc", "tz", "open_"), [
    ("2026-03-02T15:00", "UTC", True),  # Monday 15:00
    ("2026-03-02T06:59", "UTC", False),
    ("2026-03-02T19:00", "UTC", False),  # closes at 19:00
    ("2026-03-02T13:30", "America/Chicago", True),  # 07:30 CST (UTC-6)
    ("2026-03-02T12:59", "America/Chicago", False),  # 06:59 CST
    ("2026-03-03T00:30", "America/Chicago", True),  # Monday 18:30 CST
    ("2026-03-07T09:00", "UTC", True),  # Saturday
    ("2026-03-07T13:00", "UTC", False),
    ("2026-03-08T10:00", "UTC", False),  # Sunday
    ("2026-03-02T15:00", "Not/AZone", True),  # an unknown zone reads as UTC
])
def test_clinic_hours_in_the_clinics_time_zone(utc: str, tz: str, open_: bool) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert HOURS.is_open(now, tz) is open_


def test_clinic_hours_parse() -> None:
    assert ClinicHours.parse("").is_open(NOW, "UTC") is False
    assert ClinicHours.parse("Fri-Mon 10:00-11:00").is_open(
        datetime(2026, 3, 8, 10, 30, tzinfo=UTC), "UTC")  # Sunday, within Fri..Mon
    assert ClinicHours.parse("Mon/Wed 00:00-24:00").is_open(
        datetime(2026, 3, 4, 23, 59, tzinfo=UTC), "UTC")  # Wednesday
    for bad in ("Mon", "Funday 07:00-19:00", "Mon 19:00-07:00", "Mon 7-19"):
        with pytest.raises(HoursError):
            ClinicHours.parse(bad)


def test_normalise_a_status_event() -> None:
    received = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    data = {"state": "listening", "encounter_id": None, "spool_bytes": 2048,
            "counters": {"frames_captured": 100, "frames_dropped": 2, "reconnects": 1,
                         "capture_errors": 0, "ack_latency_ms_p50": 40,
                         "ack_latency_ms_p95": -1},
            "health": {"agent_version": "0.9.1", "uptime_s": 3600.5,
                       "sent_at_us": int((received.timestamp() + 2.5) * 1e6),
                       "spool_max_bytes": 4096, "oldest_unacked_s": 1.25,
                       "input_rms_dbfs": -41.2, "input_peak_dbfs": -20.0,
                       "disk_free_bytes": 10, "disk_total_bytes": 100,
                       "cpu_temp_c": 51.5}}
    r = normalise(data, received, ip="10.0.0.7")
    assert (r.state, r.agent_version, r.ip, r.spool_pct, r.disk_free_pct) == (
        "listening", "0.9.1", "10.0.0.7", 50.0, 10.0)
    assert (r.clock_offset_s, r.ack_latency_ms_p50, r.ack_latency_ms_p95) == (2.5, 40, None)
    assert (r.input_rms_dbfs, r.input_peak_dbfs, r.cpu_temp_c) == (-41.2, -20.0, 51.5)
    assert HealthReport.from_dict(r.as_dict() | {"from_a_later_version": 1}) == r
    # an older agent, and garbage, become None rather than errors
    odd = normalise({"state": 3, "spool_bytes": -5, "counters": "x",
                     "health": {"uptime_s": "long", "input_peak_dbfs": float("nan"),
                                "cpu_temp_c": True}}, received, agent_version="0.8")
    assert odd == HealthReport(agent_version="0.8")
