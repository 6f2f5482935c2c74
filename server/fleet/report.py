"""A device's ``status`` event, normalised into what the fleet keeps and the rules read.

Pure: the caller passes when the report arrived. Anything missing or of the wrong
type becomes ``None`` (an older agent sends only state, spool bytes and counters), so
one odd report cannot break the rooms page or the rules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

__all__ = ["HealthReport", "normalise"]


@dataclass(frozen=True, slots=True)
class HealthReport:
    state: str = ""  # listening | idle | muted
    encounter_id: str | None = None
    agent_version: str = ""
    ip: str = ""
    uptime_s: float | None = None
    spool_bytes: int | None = None
    spool_max_bytes: int | None = None
    #: Age of the oldest captured audio the server has not acknowledged yet (device clock).
    oldest_unacked_s: float | None = None
    frames_captured: int | None = None
    frames_dropped: int | None = None
    reconnects: int | None = None
    capture_errors: int | None = None
    ack_latency_ms_p50: int | None = None
    ack_latency_ms_p95: int | None = None
    #: Input level over the last minute of capture (dBFS; None: nothing captured).
    input_rms_dbfs: float | None = None
    input_peak_dbfs: float | None = None
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    #: Device clock minus server clock when the report arrived, seconds (transit included).
    clock_offset_s: float | None = None
    cpu_temp_c: float | None = None

    @property
    def spool_pct(self) -> float | None:
        if self.spool_bytes is None or not self.spool_max_bytes:
            return None
        return 100.0 * self.spool_bytes / self.spool_max_bytes

    @property
    def disk_free_pct(self) -> float | None:
        if self.disk_free_bytes is None or not self.disk_total_bytes:
            return None
        return 100.0 * self.disk_free_bytes / self.disk_total_bytes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthReport:
        """Read back what :meth:`as_dict` stored (unknown keys from a later version ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value >= 0 else None


def _float(value: Any, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    if not math.isfinite(f) or not lo <= f <= hi:
        return None
    return round(f, 3)


def _str(value: Any, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def normalise(data: dict[str, Any], received_at: datetime, *, ip: str = "",
              agent_version: str = "") -> HealthReport:
    """``data`` is a ``status`` event's body (``Status.to_event().data``): ``state``,
    ``encounter_id``, ``spool_bytes``, ``counters`` and, from newer agents, ``health``
    (device/stats.py ``health_fields``). ``agent_version`` falls back to the one the
    device gave in its ``hello``."""
    counters = data.get("counters") if isinstance(data.get("counters"), dict) else {}
    health = data.get("health") if isinstance(data.get("health"), dict) else {}
    assert isinstance(counters, dict) and isinstance(health, dict)
    sent_at_us = _int(health.get("sent_at_us"))
    offset = (None if sent_at_us is None
              else round(sent_at_us / 1e6 - received_at.timestamp(), 3))
    latency = {k: counters.get(k) for k in ("ack_latency_ms_p50", "ack_latency_ms_p95")}
    enc = data.get("encounter_id")
    return HealthReport(
        state=_str(data.get("state"), 32),
        encounter_id=enc if isinstance(enc, str) else None,
        agent_version=_str(health.get("agent_version")) or agent_version[:64],
        ip=ip[:64],
        uptime_s=_float(health.get("uptime_s"), 0),
        spool_bytes=_int(data.get("spool_bytes")),
        spool_max_bytes=_int(health.get("spool_max_bytes")),
        oldest_unacked_s=_float(health.get("oldest_unacked_s"), 0),
        frames_captured=_int(counters.get("frames_captured")),
        frames_dropped=_int(counters.get("frames_dropped")),
        reconnects=_int(counters.get("reconnects")),
        capture_errors=_int(counters.get("capture_errors")),
        ack_latency_ms_p50=_int(latency["ack_latency_ms_p50"]),  # -1 (none yet) -> None
        ack_latency_ms_p95=_int(latency["ack_latency_ms_p95"]),
        input_rms_dbfs=_float(health.get("input_rms_dbfs"), -200, 0.01),
        input_peak_dbfs=_float(health.get("input_peak_dbfs"), -200, 0.01),
        disk_free_bytes=_int(health.get("disk_free_bytes")),
        disk_total_bytes=_int(health.get("disk_total_bytes")),
        clock_offset_s=offset,
        cpu_temp_c=_float(health.get("cpu_temp_c"), -60, 150),
    )
