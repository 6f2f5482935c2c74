"""The agent's counters, logged every ``log_interval_s`` and reported by ``status``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields

__all__ = ["AckLatency", "Counters"]


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
