"""Health states from a device's reports: ok / warning / failing, with the reason.

Pure rules, no clock and no database: the caller builds a :class:`DeviceView` (the
latest report, the recent history, whether the device is connected and since when
it is not, whether its clinic is open now) and passes ``now``. Each rule yields at
most one :class:`Finding`; the device's state is the worst of them.

    offline          not connected: failing after ``offline_fail_min`` during clinic
                     hours (warning after ``offline_warn_min``); after hours only a
                     warning, after ``offline_after_hours_warn_min``
    silent_mic       listening with the input peak at or below ``silence_dbfs`` for
                     ``silent_warn_min`` / ``silent_fail_min`` (mic unplugged, muted)
    spool            spool use at ``spool_warn_pct`` / ``spool_fail_pct`` of its cap
    unacked          oldest unacknowledged audio older than ``unacked_warn_s`` /
                     ``unacked_fail_s`` (the server is not keeping up, or the link)
    capture_errors   capture errors rising within ``capture_window_min``: any is a
                     warning, ``capture_errors_fail`` or more failing
    clock            device clock off the server's by more than ``clock_offset_max_s``
    disk             free space on the spool volume under ``disk_warn_pct`` /
                     ``disk_fail_pct``
    temperature      CPU above ``cpu_temp_warn_c``
    backlog          the room's transcription backlog (audio stored, not yet decoded) over
                     ``backlog_max_s``: a warning at once, failing once it has stayed over
                     for ``backlog_for_s``; clears when it drains. Judged from
                     :attr:`DeviceView.backlog` (None: not transcribed where this runs, not
                     judged)

While a device is offline only ``offline`` is judged (its last report is stale), and the
room's ``backlog`` (the server's own measure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from server.fleet.report import HealthReport

__all__ = ["DeviceView", "Finding", "Health", "HealthRules", "Level", "RoomBacklog", "Rule",
           "evaluate"]


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"

    @property
    def rank(self) -> int:
        return (Level.OK, Level.WARNING, Level.FAILING).index(self)


class Rule(StrEnum):
    OFFLINE = "offline"
    SILENT_MIC = "silent_mic"
    SPOOL = "spool"
    UNACKED = "unacked"
    CAPTURE_ERRORS = "capture_errors"
    CLOCK = "clock"
    DISK = "disk"
    TEMPERATURE = "temperature"
    BACKLOG = "backlog"


@dataclass(frozen=True, slots=True)
class HealthRules:
    """Thresholds; the server's are ``Settings.fleet_*`` (:meth:`from_settings`)."""

    offline_warn_min: float = 2.0
    offline_fail_min: float = 5.0
    offline_after_hours_warn_min: float = 720.0
    silence_dbfs: float = -60.0
    silent_warn_min: float = 2.0
    silent_fail_min: float = 5.0
    spool_warn_pct: float = 50.0
    spool_fail_pct: float = 80.0
    unacked_warn_s: float = 120.0
    unacked_fail_s: float = 600.0
    capture_window_min: float = 10.0
    capture_errors_fail: int = 3
    clock_offset_max_s: float = 2.0
    disk_warn_pct: float = 10.0
    disk_fail_pct: float = 3.0
    cpu_temp_warn_c: float = 80.0
    backlog_max_s: float = 60.0
    backlog_for_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any) -> HealthRules:
        """Read each ``fleet_<name>`` of the server's settings object."""
        return cls(**{name: getattr(settings, f"fleet_{name}")
                      for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Finding:
    rule: Rule
    level: Level
    reason: str


@dataclass(frozen=True, slots=True)
class Health:
    level: Level
    findings: tuple[Finding, ...] = ()

    @property
    def reason(self) -> str:
        """The worst findings' reasons (what the rooms page and an alert say)."""
        return "; ".join(f.reason for f in self.findings if f.level is self.level)

    def failing_rules(self) -> dict[Rule, str]:
        return {f.rule: f.reason for f in self.findings if f.level is Level.FAILING}


@dataclass(frozen=True, slots=True)
class RoomBacklog:
    """The device's room's transcription backlog now, and since when it has been over
    the threshold (None: it is not; server/fleet/backlog.py keeps that)."""

    backlog_s: float
    over_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceView:
    connected: bool
    clinic_open: bool
    latest: HealthReport | None = None
    latest_at: datetime | None = None
    #: Reports of the last while (at least ``capture_window_min`` and ``silent_fail_min``),
    #: oldest first; the latest is the last one.
    history: Sequence[tuple[datetime, HealthReport]] = ()
    #: When the device was first seen disconnected (or its last contact), None: never.
    offline_since: datetime | None = None
    #: The room's transcription backlog (None: not known here; the rule is not judged).
    backlog: RoomBacklog | None = None


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _ago(minutes: float) -> str:
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _graded(rule: Rule, value: float, warn: float, fail: float, reason: str) -> Finding | None:
    if value >= fail:
        return Finding(rule, Level.FAILING, reason)
    if value >= warn:
        return Finding(rule, Level.WARNING, reason)
    return None


def _offline(view: DeviceView, r: HealthRules, now: datetime) -> Finding | None:
    if view.offline_since is None:
        return Finding(Rule.OFFLINE, Level.WARNING, "enrolled, never connected")
    minutes = _minutes(now - view.offline_since)
    if view.clinic_open:
        return _graded(Rule.OFFLINE, minutes, r.offline_warn_min, r.offline_fail_min,
                       f"offline {_ago(minutes)} during clinic hours")
    if minutes >= r.offline_after_hours_warn_min:
        return Finding(Rule.OFFLINE, Level.WARNING, f"offline {_ago(minutes)} (after hours)")
    return None


def _listening_with_level(report: HealthReport) -> bool:
    return (report.state == "listening" and report.input_peak_dbfs is not None)


def _silent_mic(view: DeviceView, r: HealthRules, now: datetime) -> Finding | None:
    latest = view.latest
    if latest is None or view.latest_at is None or not _listening_with_level(latest):
        return None
    assert latest.input_peak_dbfs is not None
    if latest.input_peak_dbfs > r.silence_dbfs:
        return None
    since = view.latest_at
    for at, report in reversed(view.history):
        if at > since:
            continue
        if not _listening_with_level(report) or (report.input_peak_dbfs or 0.0) > r.silence_dbfs:
            break
        since = at
    minutes = _minutes(now - since)
    return _graded(Rule.SILENT_MIC, minutes, r.silent_warn_min, r.silent_fail_min,
                   f"listening, input silent ({latest.input_peak_dbfs:.0f} dBFS peak) for "
                   f"{_ago(minutes)}: microphone unplugged or muted?")


def _capture_errors(view: DeviceView, r: HealthRules, now: datetime) -> Finding | None:
    latest = view.latest
    if latest is None or latest.capture_errors is None:
        return None
    start = now - timedelta(minutes=r.capture_window_min)
    base = next((rep.capture_errors for at, rep in view.history
                 if at >= start and rep.capture_errors is not None), latest.capture_errors)
    rise = latest.capture_errors - base
    if rise < 0:  # the agent restarted: its counters began again
        rise = latest.capture_errors
    if rise <= 0:
        return None
    return _graded(Rule.CAPTURE_ERRORS, rise, 1, r.capture_errors_fail,
                   f"{rise} capture errors in {_ago(r.capture_window_min)}")


def _backlog(view: DeviceView, r: HealthRules, now: datetime) -> Finding | None:
    b = view.backlog
    if b is None or b.over_since is None or b.backlog_s <= r.backlog_max_s:
        return None
    held_s = max(0.0, (now - b.over_since).total_seconds())
    level = Level.FAILING if held_s >= r.backlog_for_s else Level.WARNING
    held = _ago(held_s / 60) if held_s >= 120 else f"{held_s:.0f} s"
    return Finding(Rule.BACKLOG, level,
                   f"transcription {b.backlog_s:.0f} s behind the audio (over "
                   f"{r.backlog_max_s:.0f} s for {held})")


def _from_latest(report: HealthReport, r: HealthRules) -> list[Finding | None]:
    found: list[Finding | None] = []
    pct = report.spool_pct
    if pct is not None:
        found.append(_graded(Rule.SPOOL, pct, r.spool_warn_pct, r.spool_fail_pct,
                             f"spool {pct:.0f} % full"))
    if report.oldest_unacked_s is not None:
        age = report.oldest_unacked_s
        found.append(_graded(Rule.UNACKED, age, r.unacked_warn_s, r.unacked_fail_s,
                             f"oldest unacknowledged audio {_ago(age / 60)} old"))
    if report.clock_offset_s is not None and abs(report.clock_offset_s) > r.clock_offset_max_s:
        way = "ahead of" if report.clock_offset_s > 0 else "behind"
        found.append(Finding(Rule.CLOCK, Level.FAILING,
                             f"clock {abs(report.clock_offset_s):.1f} s {way} the server"))
    free = report.disk_free_pct
    if free is not None:
        found.append(_graded(Rule.DISK, -free, -r.disk_warn_pct, -r.disk_fail_pct,
                             f"{free:.0f} % disk free on the spool volume"))
    if report.cpu_temp_c is not None and report.cpu_temp_c >= r.cpu_temp_warn_c:
        found.append(Finding(Rule.TEMPERATURE, Level.WARNING,
                             f"CPU at {report.cpu_temp_c:.0f} °C"))
    return found


def evaluate(view: DeviceView, rules: HealthRules, now: datetime) -> Health:
    """The device's health at ``now``."""
    if not view.connected:
        candidates: list[Finding | None] = [_offline(view, rules, now)]
    else:
        candidates = [_silent_mic(view, rules, now), _capture_errors(view, rules, now)]
        if view.latest is not None:
            candidates += _from_latest(view.latest, rules)
    candidates.append(_backlog(view, rules, now))
    findings = tuple(f for f in candidates if f is not None)
    level = max((f.level for f in findings), key=lambda lv: lv.rank, default=Level.OK)
    return Health(level, findings)
