"""The backlog rule's input: each room's transcription backlog, and since when it has
been over the threshold.

:func:`room_backlogs` reads the ASR monitor of this process (server/asr/monitor.py, the
numbers ``GET /api/v1/transcription/rooms`` shows): a room's backlog is the largest of
its encounters being transcribed. :class:`BacklogWatch` is a pure state machine fed one
sample per sweep (no clock: ``now`` is given). A room that stops being transcribed here
while over the threshold is reported drained once (its alert clears); a room this process
does not transcribe is left out, so its rule is not judged here (another node may).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from server.asr.monitor import TranscriptionMonitor
from server.fleet.rules import RoomBacklog

__all__ = ["BacklogWatch", "room_backlogs"]


def room_backlogs(monitor: TranscriptionMonitor) -> dict[str, float]:
    """Seconds of stored audio not yet decoded, per room being transcribed here."""
    out: dict[str, float] = {}
    for progress in monitor.snapshot()["rooms"]:
        room, backlog = str(progress["room_id"]), float(progress["backlog_s"])
        out[room] = max(out.get(room, 0.0), backlog)
    return out


class BacklogWatch:
    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self._over_since: dict[str, datetime] = {}

    def observe(self, backlogs: Mapping[str, float], now: datetime) -> dict[str, RoomBacklog]:
        """The rooms' backlogs at ``now``, each with since when it has been over."""
        out: dict[str, RoomBacklog] = {}
        for room, seconds in backlogs.items():
            if seconds > self.threshold_s:
                out[room] = RoomBacklog(seconds, self._over_since.setdefault(room, now))
            else:
                self._over_since.pop(room, None)
                out[room] = RoomBacklog(seconds)
        for room in [r for r in self._over_since if r not in backlogs]:
            del self._over_since[room]  # no longer transcribed here: it drained
            out[room] = RoomBacklog(0.0)
        return out
