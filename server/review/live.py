"""Live updates: queue and draft changes pushed to open browsers.

Each change is published once, after its transaction commits, by whoever made
it (a route's worker thread or the intake). :class:`LiveHub` fans it out on the
event loop to every subscriber allowed to see the item (the same rule as
:mod:`server.review.access`), each through a bounded queue: a browser too slow
to keep up gets one ``resync`` instead of an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from server.review.auth import Principal
from server.review.lifecycle import Role
from server.review.models import ReviewItem

__all__ = ["ItemChange", "LiveHub", "Subscriber", "hub_of"]

QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ItemChange:
    item_id: str
    clinic_id: str
    pool_id: str | None
    physician_id: int | None
    state: str
    version: int
    action: str
    actor: str  # username
    actor_name: str = ""  # as people read it ("Dr North")

    @classmethod
    def of(cls, item: ReviewItem, action: str, actor: str, actor_name: str = "") -> ItemChange:
        return cls(item.id, item.clinic_id, item.pool_id, item.physician_id, item.state,
                   item.version, action, actor, actor_name or actor)

    def to_json(self) -> dict[str, Any]:
        return {"type": "item-changed", **asdict(self)}


@dataclass(eq=False)
class Subscriber:
    who: Principal
    pools: set[str]
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def wants(self, change: ItemChange) -> bool:
        role = self.who.role_in(change.clinic_id)
        if role is Role.PHYSICIAN:
            return change.physician_id in (None, self.who.user_id)
        if role is Role.PARTNER:
            return change.pool_id in self.pools
        return False

    def offer(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "resync"})


class LiveHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    def subscribe(self, who: Principal, pools: set[str]) -> Subscriber:
        """Call on the event loop (the websocket route)."""
        self._loop = asyncio.get_running_loop()
        sub = Subscriber(who, pools)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, change: ItemChange) -> None:
        """From any thread, after the change has committed."""
        self.published += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has ever subscribed: nothing to push
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fanout(change)
        else:
            loop.call_soon_threadsafe(self._fanout, change)

    def _fanout(self, change: ItemChange) -> None:
        message = change.to_json()
        for sub in list(self._subscribers):
            if sub.wants(change):
                sub.offer(message)


_lock = threading.Lock()


def hub_of(services: Any) -> LiveHub:
    """The hub of one server process, kept in ``Services.extras``."""
    with _lock:
        hub = services.extras.get("review_hub")
        if hub is None:
            hub = services.extras["review_hub"] = LiveHub()
        assert isinstance(hub, LiveHub)
        return hub
