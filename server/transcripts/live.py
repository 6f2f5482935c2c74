"""Live transcript events, fanned out to the viewers of each encounter.

Events are ``{"type": ..., "data": {...}}`` like the device protocol's. A
viewer's queue is bounded: a viewer that stops reading is cut off (its socket
closes 1013 and it can reconnect, receiving the finals so far again) rather
than holding memory or slowing the transcription down.

With a bus (several nodes, or transcription in a worker process) each event
is also published on the bus's ``transcripts`` channel, and events other
nodes publish there reach this node's viewers: a viewer may be connected to
any node. The hub delivers its own events locally itself; the bus never
echoes them back, so no viewer sees one twice. Who may watch is decided when
the viewer connects (server/transcripts/auth.py), on the node it connects to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.bus import Bus

__all__ = ["CHANNEL", "LiveHub", "Viewer"]

log = logging.getLogger(__name__)

#: The bus channel of live transcript events.
CHANNEL = "transcripts"


class Viewer:
    def __init__(self, encounter_id: str, maxsize: int) -> None:
        self.encounter_id = encounter_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()  # make room for the end marker
            self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event


class LiveHub:
    """Per-encounter subscriber lists. Publish never blocks. Call on the event loop."""

    def __init__(self, viewer_queue: int = 512, bus: Bus | None = None) -> None:
        self.viewer_queue = viewer_queue
        self._viewers: dict[str, set[Viewer]] = {}
        self.bus = bus
        if bus is not None:
            bus.subscribe(CHANNEL, self._from_bus)

    @contextmanager
    def subscribe(self, encounter_id: str) -> Iterator[Viewer]:
        viewer = Viewer(encounter_id, self.viewer_queue)
        self._viewers.setdefault(encounter_id, set()).add(viewer)
        try:
            yield viewer
        finally:
            viewers = self._viewers.get(encounter_id)
            if viewers is not None:
                viewers.discard(viewer)
                if not viewers:
                    del self._viewers[encounter_id]

    def publish(self, encounter_id: str, type_: str, data: dict[str, Any]) -> None:
        self._fanout(encounter_id, {"type": type_, "data": data})
        if self.bus is not None:
            self.bus.publish(CHANNEL, {"encounter_id": encounter_id, "type": type_,
                                       "data": data})

    def _fanout(self, encounter_id: str, event: dict[str, Any]) -> None:
        for viewer in list(self._viewers.get(encounter_id, ())):
            viewer.offer(event)

    def _from_bus(self, message: dict[str, Any]) -> None:
        """An event another node published (on the loop, from the bus)."""
        eid, type_, data = (message.get("encounter_id"), message.get("type"),
                            message.get("data"))
        if not isinstance(eid, str) or not isinstance(type_, str) or not isinstance(data, dict):
            log.warning("ignored a malformed transcript event from the bus")
            return
        self._fanout(eid, {"type": type_, "data": data})

    def viewers(self, encounter_id: str) -> int:
        return len(self._viewers.get(encounter_id, ()))
