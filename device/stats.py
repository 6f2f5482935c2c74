"""The agent's counters, logged every ``log_interval_s`` and reported by ``status``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Counters"]


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

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())
