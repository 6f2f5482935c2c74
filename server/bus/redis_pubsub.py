"""The bus over Redis pub/sub (``ROOMSCRIBE_REDIS_URL`` set): live events between nodes.

Two connections per node. The *sender* drains the :class:`~server.bus.outbox.Outbox`
(``PUBLISH`` in pipelined batches, oldest first); the *receiver* holds one
``PSUBSCRIBE <prefix>:*`` and hands each message to the consumers of its
channel, skipping this bus's own echoes. Either connection, when Redis goes
away (a restart, a failover), retries with capped exponential back-off with
full jitter; the sender keeps what it has not sent (up to the outbox's bound,
then drops and counts). The receiver subscribes only once a consumer exists,
so a worker that only publishes holds no subscription.

Pub/sub is at-most-once: a message published while a node's receiver is
reconnecting is not seen there. That is the contract of live updates (a
browser that reconnects reloads the state from the database); durable work
goes through the PostgreSQL queue, not this bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import threading
from typing import Any

from server.bus.envelope import decode, encode
from server.bus.interface import BusStats, Consumer, Unsubscribe
from server.bus.outbox import Outbox

__all__ = ["RedisBus", "backoff_delay"]

log = logging.getLogger(__name__)

_BATCH = 128
#: A subscriber waits on its socket without a timeout: TCP keepalive notices a Redis that
#: vanished without closing the connection (a machine gone, a cable pulled) in ~25 s.
_KEEPALIVE = {opt: value for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5),
                                            ("TCP_KEEPCNT", 3))
              if (opt := getattr(socket, name, None)) is not None}


def backoff_delay(attempt: int, rng: random.Random, base: float = 0.1, cap: float = 5.0) -> float:
    """Full-jitter back-off: uniform(0, min(cap, base * 2**attempt)), pure."""
    return rng.uniform(0.0, min(cap, base * 2 ** min(attempt, 32)))


class RedisBus:
    def __init__(self, url: str, node_id: str, prefix: str, *, outbox_size: int = 10_000,
                 backoff_cap_s: float = 5.0) -> None:
        if not prefix or ":" in prefix or "*" in prefix:
            raise ValueError("the channel prefix must be a non-empty word without ':' or '*'")
        self.url = url
        self.node_id = node_id
        self.prefix = prefix
        self.src = secrets.token_hex(8)
        self.stats = BusStats()
        self.backoff_cap_s = backoff_cap_s
        self._outbox = Outbox(outbox_size)
        self._consumers: dict[str, list[Consumer]] = {}
        self._consumers_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._has_consumers: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()
        self._drop_logged = 0
        #: Set while the receiver holds its subscription (tests and readiness wait on it).
        self.subscribed: asyncio.Event | None = None

    # ------------------------------------------------------------------ interface

    def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.stats.published += 1
        try:
            data = encode(self.node_id, self.src, message)
        except (TypeError, ValueError):
            self.stats.dropped += 1
            log.exception("bus: a message on %s is not JSON; not sent", channel)
            return
        if not self._outbox.put(f"{self.prefix}:{channel}", data, self._wake):
            self.stats.dropped += 1
            if self.stats.dropped >= 2 * self._drop_logged or self._drop_logged == 0:
                self._drop_logged = max(1, self.stats.dropped)
                log.warning("bus outbox full (%d waiting for Redis): %d live events dropped",
                            self._outbox.maxsize, self.stats.dropped)

    def subscribe(self, channel: str, consumer: Consumer) -> Unsubscribe:
        with self._consumers_lock:
            self._consumers.setdefault(channel, []).append(consumer)
        loop, event = self._loop, self._has_consumers
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

        def unsubscribe() -> None:
            with self._consumers_lock:
                consumers = self._consumers.get(channel, [])
                if consumer in consumers:
                    consumers.remove(consumer)

        return unsubscribe

    async def start(self) -> None:
        """Fail fast on what a retry cannot fix (no redis package, a malformed URL); a
        Redis that does not answer yet is retried in the background."""
        if self._loop is not None:
            return
        try:
            probe = self._client(socket_timeout=1.0)  # connects lazily: nothing sent
        except ImportError as err:
            raise RuntimeError("ROOMSCRIBE_REDIS_URL is set but the redis package is not "
                               "installed: pip install 'roomscribe[server]'") from err
        except ValueError as err:
            raise RuntimeError(f"ROOMSCRIBE_REDIS_URL is not a Redis URL: {err}") from err
        await probe.aclose()
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._has_consumers = asyncio.Event()
        self.subscribed = asyncio.Event()
        if any(self._consumers.values()):
            self._has_consumers.set()
        if len(self._outbox):
            self._wakeup.set()
        self._tasks = [asyncio.create_task(self._sender(), name="bus-sender"),
                       asyncio.create_task(self._receiver(), name="bus-receiver")]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._loop = None

    async def ready(self) -> bool:
        client = self._client(socket_timeout=1.0)
        try:
            return bool(await asyncio.wait_for(client.ping(), timeout=2.0))
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    # ------------------------------------------------------------------ internals

    def _client(self, *, socket_timeout: float | None) -> Any:
        import redis.asyncio as aioredis  # the server extra; only deployments with Redis

        return aioredis.Redis.from_url(self.url, socket_connect_timeout=2.0,
                                       socket_timeout=socket_timeout, socket_keepalive=True,
                                       socket_keepalive_options=_KEEPALIVE,
                                       health_check_interval=15)

    def _wake(self) -> None:
        loop, event = self._loop, self._wakeup
        if loop is None or event is None or loop.is_closed():
            return  # start() sets it for what is waiting
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def _sender(self) -> None:
        assert self._wakeup is not None
        attempt = 0
        client: Any = None
        try:
            while True:
                batch = self._outbox.peek(_BATCH)
                if not batch:
                    self._wakeup.clear()
                    if not self._outbox.peek(1):
                        await self._wakeup.wait()
                    continue
                try:
                    if client is None:
                        client = self._client(socket_timeout=5.0)
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    attempt += 1
                    delay = backoff_delay(attempt, self._rng, cap=self.backoff_cap_s)
                    log.warning("bus: publishing to Redis failed (%s); retry in %.2f s", err,
                                delay)
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await client.aclose()
                    client = None
                    self.stats.reconnects += 1
                    await asyncio.sleep(delay)
                    continue
                if attempt:
                    log.info("bus: publishing to Redis again")
                attempt = 0
                self._outbox.pop(len(batch))
                self.stats.sent += len(batch)
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _receiver(self) -> None:
        assert self._has_consumers is not None and self.subscribed is not None
        await self._has_consumers.wait()
        attempt = 0
        pattern = f"{self.prefix}:*"
        skip = len(self.prefix) + 1
        while True:
            client = self._client(socket_timeout=None)  # start() checked it can be made
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(pattern)
                self.subscribed.set()
                if attempt:
                    log.info("bus: subscribed to Redis again")
                attempt = 0
                async for raw in pubsub.listen():
                    if raw.get("type") != "pmessage":
                        continue
                    channel = raw["channel"]
                    name = (channel.decode() if isinstance(channel, bytes) else channel)[skip:]
                    self._dispatch(name, raw["data"])
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.subscribed.clear()
                attempt += 1
                delay = backoff_delay(attempt, self._rng, cap=self.backoff_cap_s)
                log.warning("bus: Redis subscription lost (%s); retry in %.2f s", err, delay)
                self.stats.reconnects += 1
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _dispatch(self, channel: str, data: bytes | str) -> None:
        envelope = decode(data)
        if envelope is None:
            log.warning("bus: ignored a malformed message on %s", channel)
            return
        if envelope.src == self.src:
            return  # our own: delivered locally already
        with self._consumers_lock:
            consumers = list(self._consumers.get(channel, ()))
        if not consumers:
            return
        self.stats.received += 1
        for consumer in consumers:
            try:
                consumer(envelope.body)
            except Exception:
                log.exception("bus consumer for %s failed", channel)
