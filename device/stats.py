"""The agent's counters, logged every ``log_interval_s`` and reported by ``status``,
and the health readings the fleet page shows (input level, disk, CPU temperature).

Pure bookkeeping with the OS reads at the edge (:func:`disk_usage`,
:func:`cpu_temp_c`): the caller passes the clock.
"""

from __future__ import annotations

import math
import operator
import shutil
import sys
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "AckLatency",
    "Counters",
    "InputLevel",
    "cpu_temp_c",
    "disk_usage",
    "health_fields",
    "oldest_unacked_s",
    "parse_thermal",
]

#: dBFS reported for digital silence (all-zero samples), where the log is -inf.
FLOOR_DBFS = -120.0
THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


class AckLatency:
    """Time from putting a frame on the wire to the server's ack that covers it.

    Pure bookkeeping: the caller passes the clock. A resend (after a rewind or a
    reconnect) restarts the frame's clock, so an outage does not count as latency;
    the most recent ``keep`` samples are kept for percentiles.
    """

    def __init__(self, keep: int = 4096) -> None:
        self._pending: dict[str, deque[tuple[int, float]]] = {}
        self._samples: deque[float] = deque(maxlen=keep)

    def sent(self, encounter_id: str, seq: int, now: float) -> None:
        pending = self._pending.setdefault(encounter_id, deque())
        while pending and pending[-1][0] >= seq:  # a rewind: forget the older sends
            pending.pop()
        pending.append((seq, now))

    def acked(self, encounter_id: str, seq: int, now: float) -> None:
        pending = self._pending.get(encounter_id)
        while pending and pending[0][0] <= seq:
            self._samples.append((now - pending.popleft()[1]) * 1000)

    def forget(self, encounter_id: str) -> None:
        self._pending.pop(encounter_id, None)

    def percentile_ms(self, q: float) -> float | None:
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


@dataclass(slots=True)
class Counters:
    frames_captured: int = 0
    """Frames the source produced."""
    frames_spooled: int = 0
    """Frames written to the spool (captured minus dropped)."""
    frames_dropped: int = 0
    """Frames refused because the spool was full or unwritable."""
    frames_sent: int = 0
    """Frames put on the wire (resends count again)."""
    frames_acked: int = 0
    """Frames the server acknowledged as stored."""
    reconnects: int = 0
    """Connection attempts after a failed or dropped connection."""
    capture_errors: int = 0
    ack_latency: AckLatency = field(default_factory=AckLatency, repr=False, compare=False)

    def as_dict(self) -> dict[str, int]:
        """Integer counters (the ``status`` event's shape); latencies in whole ms, -1 = none."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ack_latency"}
        for name, q in (("ack_latency_ms_p50", 0.5), ("ack_latency_ms_p95", 0.95)):
            ms = self.ack_latency.percentile_ms(q)
            values[name] = -1 if ms is None else round(ms)
        return values

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


def _dbfs(amplitude: float) -> float:
    if amplitude <= 0:
        return FLOOR_DBFS
    return round(max(FLOOR_DBFS, 20 * math.log10(amplitude / 32768)), 1)


class InputLevel:
    """RMS and peak level of the captured input over the last ``window_s`` seconds.

    Cheap enough for every frame on a Pi: every ``stride``-th sample is summed into
    one-second buckets (RMS and peak; at 16 kHz a stride of 4 still sees 4 kHz of
    signal, plenty to tell silence from a room), and a report reads at most ``window_s``
    buckets. A microphone unplugged or muted at
    the hardware reads near the floor (-120 dBFS for digital silence); a quiet room with
    its fan or voices reads -70..-30.
    """

    def __init__(self, window_s: float = 60.0, stride: int = 4) -> None:
        self.window_s = window_s
        self.stride = stride
        self._buckets: deque[list[float]] = deque()  # [second, sum of squares, n, peak]

    def add(self, pcm: bytes, now: float) -> None:
        samples = array("h")
        samples.frombytes(pcm[: len(pcm) // 2 * 2])
        if not samples:
            return
        if sys.byteorder == "big":  # s16le on the wire and from the capture
            samples.byteswap()
        sub = samples[:: self.stride]
        sumsq = float(sum(map(operator.mul, sub, sub)))
        peak = float(max(max(sub), -min(sub)))
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
            bucket[1] += sumsq
            bucket[2] += len(sub)
            bucket[3] = max(bucket[3], peak)
        else:
            self._buckets.append([second, sumsq, len(sub), peak])
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window_s:
            self._buckets.popleft()

    def level(self, now: float) -> tuple[float, float] | None:
        """(RMS dBFS, peak dBFS) over the window, or None when nothing was captured in it."""
        self._expire(now)
        n = sum(b[2] for b in self._buckets)
        if not n:
            return None
        rms = math.sqrt(sum(b[1] for b in self._buckets) / n)
        return _dbfs(rms), _dbfs(max(b[3] for b in self._buckets))


class _Spooled(Protocol):
    """What :func:`oldest_unacked_s` reads of a spooled encounter (device.spool's
    ``EncounterInfo``)."""

    @property
    def started_at_us(self) -> int: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def acked(self) -> int: ...
    @property
    def discarded_through(self) -> int: ...


def oldest_unacked_s(encounters: Iterable[_Spooled], frame_ms: int, now_us: int) -> float:
    """Age in seconds of the oldest captured frame the server has not acknowledged
    (0: everything acknowledged). Estimated from each encounter's start and the frame
    length (frames are contiguous from the start)."""
    oldest: int | None = None
    for info in encounters:
        first = max(info.acked, info.discarded_through) + 1
        if first >= info.next_seq:
            continue
        at = info.started_at_us + first * frame_ms * 1000
        oldest = at if oldest is None else min(oldest, at)
    return 0.0 if oldest is None else round(max(0, now_us - oldest) / 1e6, 1)


def disk_usage(path: Path) -> tuple[int, int] | None:
    """(free bytes, total bytes) of the volume holding ``path``; None if it cannot be read."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free, usage.total


def parse_thermal(text: str) -> float | None:
    """A Linux thermal zone's ``temp`` (millidegrees Celsius) in °C."""
    try:
        return round(int(text.strip()) / 1000, 1)
    except ValueError:
        return None


def cpu_temp_c(zone: Path = THERMAL_ZONE) -> float | None:
    """The CPU temperature where the OS exposes it (a Raspberry Pi does), else None."""
    try:
        return parse_thermal(zone.read_text())
    except OSError:
        return None


def health_fields(*, agent_version: str, uptime_s: float, now_us: int, spool_max_bytes: int,
                  oldest_unacked: float, level: tuple[float, float] | None,
                  disk: tuple[int, int] | None, cpu_temp: float | None) -> dict[str, Any]:
    """The ``status`` event's ``health`` body (protocol.Status.health); readings the device
    could not take are left out."""
    out: dict[str, Any] = {"agent_version": agent_version, "uptime_s": round(uptime_s, 1),
                           "sent_at_us": now_us, "spool_max_bytes": spool_max_bytes,
                           "oldest_unacked_s": oldest_unacked}
    if level is not None:
        out["input_rms_dbfs"], out["input_peak_dbfs"] = level
    if disk is not None:
        out["disk_free_bytes"], out["disk_total_bytes"] = disk
    if cpu_temp is not None:
        out["cpu_temp_c"] = cpu_temp
    return out
