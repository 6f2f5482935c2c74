"""Live per-room transcription metrics: how far behind each room's engine is.

Back-pressure is reported, never resolved by dropping audio: the audio is
durable in the database, so a room that falls behind is decoded later, and
this is where that shows (``GET /api/v1/transcription/rooms`` and the
``lagging`` live event; persisted in the transcription row too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RoomProgress", "TranscriptionMonitor"]


@dataclass
class RoomProgress:
    encounter_id: str
    room_id: str
    engine: str
    received_s: float = 0.0  # audio read from storage
    decoded_s: float = 0.0  # audio the engine has consumed
    max_backlog_s: float = 0.0
    behind: bool = False
    behind_events: int = 0
    engine_s: float = 0.0  # wall time of engine calls (waiting for a worker included)
    label_s: float = 0.0  # wall time of speaker labelling after finals
    store_s: float = 0.0  # wall time of storing finals and progress
    partials: int = 0
    finals: int = 0
    #: End of an utterance's audio arriving → its final published, per final.
    final_latency_ms: list[float] = field(default_factory=list)
    #: (received_s, clock) after each chunk read; pruned as finals come.
    arrivals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def backlog_s(self) -> float:
        return max(0.0, self.received_s - self.decoded_s)

    @property
    def rtf(self) -> float | None:
        return round(self.engine_s / self.decoded_s, 4) if self.decoded_s else None

    def snapshot(self) -> dict[str, Any]:
        d = asdict(self)
        del d["final_latency_ms"], d["arrivals"]
        lat = sorted(self.final_latency_ms)
        d["final_latency_ms_p50"] = lat[len(lat) // 2] if lat else None
        d["final_latency_ms_max"] = lat[-1] if lat else None
        d.update(backlog_s=round(self.backlog_s, 3), rtf=self.rtf)
        for k in ("received_s", "decoded_s", "max_backlog_s", "engine_s", "label_s", "store_s"):
            d[k] = round(d[k], 3)
        return d


class TranscriptionMonitor:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomProgress] = {}
        #: Times any room crossed the falling-behind threshold since start.
        self.behind_events_total = 0

    def add(self, progress: RoomProgress) -> None:
        self._rooms[progress.encounter_id] = progress

    def remove(self, encounter_id: str) -> None:
        self._rooms.pop(encounter_id, None)

    def get(self, encounter_id: str) -> RoomProgress | None:
        return self._rooms.get(encounter_id)

    def snapshot(self) -> dict[str, Any]:
        rooms = [p.snapshot() for p in self._rooms.values()]
        return {"active": len(rooms), "behind": sum(1 for r in rooms if r["behind"]),
                "behind_events_total": self.behind_events_total, "rooms": rooms}
