"""What a bus is: publish a JSON message on a channel; other nodes' consumers get it.

A *node* is one server or worker process. ``publish`` reaches the consumers
of every **other** bus of the deployment, never this bus's own: the publisher
has already delivered to its own viewers directly (no round trip, still works
while Redis is away), so a node never sees its own message twice.

``publish`` never blocks and may be called from any thread; consumers are
called on the event loop the bus was started on, one message at a time, in
the order each publisher sent them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Bus", "BusStats", "Consumer", "Unsubscribe"]

#: Called on the event loop with each message another node published on the channel.
Consumer = Callable[[dict[str, Any]], None]
#: Returned by ``subscribe``: call it to stop receiving.
Unsubscribe = Callable[[], None]


@dataclass
class BusStats:
    """Counters for logs and the benchmark."""

    published: int = 0  # handed to publish
    sent: int = 0  # reached the broker
    dropped: int = 0  # outbox full or bus not started: lost, logged
    received: int = 0  # from other nodes, handed to consumers
    reconnects: int = 0


class Bus(Protocol):
    #: This node's name (``ROOMSCRIBE_NODE_ID``), carried in every message.
    node_id: str
    stats: BusStats

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Queue ``message`` for the other nodes; never blocks, any thread."""
        ...

    def subscribe(self, channel: str, consumer: Consumer) -> Unsubscribe:
        """Receive the other nodes' messages on ``channel`` (before or after start)."""
        ...

    async def start(self) -> None:
        """Connect (in the background: a broker that is down is retried) on this loop."""
        ...

    async def aclose(self) -> None: ...

    async def ready(self) -> bool:
        """True when the broker answers now (readiness probes)."""
        ...
