"""Live transcript events, fanned out to the viewers of each encounter.

Events are ``{"type": ..., "data": {...}}`` like the device protocol's. A
viewer's queue is bounded: a viewer that stops reading is cut off (its socket
closes 1013 and it can reconnect, receiving the finals so far again) rather
than holding memory or slowing the transcription down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LiveHub", "Viewer"]


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
    """Per-encounter subscriber lists. Publish never blocks."""

    def __init__(self, viewer_queue: int = 512) -> None:
        self.viewer_queue = viewer_queue
        self._viewers: dict[str, set[Viewer]] = {}

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
        for viewer in list(self._viewers.get(encounter_id, ())):
            viewer.offer({"type": type_, "data": data})

    def viewers(self, encounter_id: str) -> int:
        return len(self._viewers.get(encounter_id, ()))
