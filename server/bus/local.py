"""The bus of a single process (``ROOMSCRIBE_REDIS_URL`` empty), and a fake for tests.

Every :class:`InProcessBus` joins a :class:`LocalBroker`. ``make_bus`` gives
each its own broker, so nothing leaves the process: live updates are the hubs'
direct local delivery, exactly as before the bus existed. Tests put two buses
on one broker to play two nodes in one process, with Redis's semantics
(other nodes only, JSON round trip, per-publisher order).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from typing import Any

from server.bus.interface import BusStats, Consumer, Unsubscribe

__all__ = ["InProcessBus", "LocalBroker"]

log = logging.getLogger(__name__)


class LocalBroker:
    def __init__(self) -> None:
        self._buses: list[InProcessBus] = []
        self._lock = threading.Lock()

    def join(self, bus: InProcessBus) -> None:
        with self._lock:
            self._buses.append(bus)

    def leave(self, bus: InProcessBus) -> None:
        with self._lock:
            if bus in self._buses:
                self._buses.remove(bus)

    def others(self, bus: InProcessBus) -> list[InProcessBus]:
        with self._lock:
            return [b for b in self._buses if b is not bus]


class InProcessBus:
    def __init__(self, node_id: str, broker: LocalBroker | None = None) -> None:
        self.node_id = node_id
        self.src = secrets.token_hex(8)
        self.stats = BusStats()
        self._broker = broker or LocalBroker()
        self._broker.join(self)
        self._consumers: dict[str, list[Consumer]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.stats.published += 1
        others = self._broker.others(self)
        if not others:
            return  # alone: nobody else to tell
        try:
            data = json.dumps(message, separators=(",", ":"))  # what Redis would carry
        except (TypeError, ValueError):
            self.stats.dropped += 1
            log.exception("bus: a message on %s is not JSON; not sent", channel)
            return
        self.stats.sent += 1
        for bus in others:
            bus._arrive(channel, data)

    def subscribe(self, channel: str, consumer: Consumer) -> Unsubscribe:
        self._consumers.setdefault(channel, []).append(consumer)

        def unsubscribe() -> None:
            consumers = self._consumers.get(channel, [])
            if consumer in consumers:
                consumers.remove(consumer)

        return unsubscribe

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        self._broker.leave(self)
        self._loop = None

    async def ready(self) -> bool:
        return True

    def _arrive(self, channel: str, data: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            self.stats.dropped += 1
            return
        loop.call_soon_threadsafe(self._deliver, channel, data)

    def _deliver(self, channel: str, data: str) -> None:
        message = json.loads(data)
        self.stats.received += 1
        for consumer in list(self._consumers.get(channel, ())):
            try:
                consumer(message)
            except Exception:
                log.exception("bus consumer for %s failed", channel)
