"""Live updates: queue and draft changes pushed to open browsers.

Each change is published once, after its transaction commits, by whoever made
it (a route's worker thread or the intake). :class:`LiveHub` fans it out on the
event loop to every subscriber allowed to see the item (the same rule as
:mod:`server.review.access`), each through a bounded queue: a browser too slow
to keep up gets one ``resync`` instead of an unbounded backlog.

With a bus (several nodes or workers), each change is also published on the
bus's ``review`` channel, and the changes other nodes publish there fan out
to this node's subscribers through the same :meth:`Subscriber.wants` rule:
a browser sees what happened on any node, and only what it may see. Local
delivery is direct and the bus never echoes a node's own changes, so nobody
gets one twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from server.review.auth import Principal
from server.review.lifecycle import Role
from server.review.models import ReviewItem

if TYPE_CHECKING:
    from server.bus import Bus

__all__ = ["CHANNEL", "ItemChange", "LiveHub", "Subscriber", "hub_of"]

log = logging.getLogger(__name__)

#: The bus channel of review item changes.
CHANNEL = "review"

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

    @classmethod
    def from_json(cls, message: dict[str, Any]) -> ItemChange:
        """The change :meth:`to_json` described; ValueError when it is not one."""
        if message.get("type") != "item-changed":
            raise ValueError("not an item-changed message")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in message:
                if f.name == "actor_name":
                    continue
                raise ValueError(f"missing {f.name}")
            values[f.name] = message[f.name]
        for name in ("item_id", "clinic_id", "state", "action", "actor", "actor_name"):
            if name in values and not isinstance(values[name], str):
                raise ValueError(f"{name} must be a string")
        if values["pool_id"] is not None and not isinstance(values["pool_id"], str):
            raise ValueError("pool_id must be a string or null")
        for name in ("physician_id", "version"):
            v = values[name]
            if (v is not None or name == "version") and (
                    not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"{name} must be an integer")
        return cls(**values)


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
    def __init__(self, bus: Bus | None = None) -> None:
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0
        self.bus = bus
        if bus is not None:
            bus.subscribe(CHANNEL, self._from_bus)

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
        if self.bus is not None:
            self.bus.publish(CHANNEL, change.to_json())
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

    def _from_bus(self, message: dict[str, Any]) -> None:
        """A change another node published (on the bus's loop)."""
        try:
            change = ItemChange.from_json(message)
        except ValueError as err:
            log.warning("ignored a malformed review change from the bus: %s", err)
            return
        self._fanout(change)

    def _fanout(self, change: ItemChange) -> None:
        message = change.to_json()
        for sub in list(self._subscribers):
            if sub.wants(change):
                sub.offer(message)


def hub_of(services: Any) -> LiveHub:
    """The hub of one server process: ``Services.review_hub``, built with the rest of the
    process in its composition root (server/services.py)."""
    hub = services.review_hub
    assert isinstance(hub, LiveHub)
    return hub
