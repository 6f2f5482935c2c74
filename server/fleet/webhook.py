"""Alert delivery by webhook: POST each alert's JSON to every configured URL.

A background task drains a bounded queue; each delivery is retried with exponential
back-off (``backoff_s``, doubled per attempt, capped at ``backoff_max_s``) up to
``attempts`` times on a connection error or a 5xx/429 answer; a 4xx is final. What
could not be delivered is logged; each delivery and each one given up goes to
``on_delivery`` (audited by the composition root; server/fleet/delivery.py). The alert
itself stays in the database and the rooms page either way. ``start()`` / ``aclose()``
are called by the composition root; ``aclose`` gives queued deliveries ``drain_s`` to
finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from server.fleet.delivery import Delivery, OnDelivery, QueuedChannel

__all__ = ["WebhookSender"]

log = logging.getLogger(__name__)


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


class WebhookSender(QueuedChannel):
    """The webhook channel (server/fleet/delivery.py ``AlertChannel``)."""

    name = "webhook"

    def __init__(self, urls: Sequence[str], *, attempts: int = 5, backoff_s: float = 1.0,
                 backoff_max_s: float = 60.0, timeout_s: float = 5.0, queue_max: int = 1000,
                 drain_s: float = 5.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_delivery: OnDelivery | None = None) -> None:
        super().__init__(queue_max=queue_max, drain_s=drain_s, on_delivery=on_delivery)
        self.urls = tuple(urls)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def opened(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s)

    async def closed(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, body: dict[str, Any]) -> None:
        """To every URL at once."""
        await asyncio.gather(*(self._deliver(url, body) for url in self.urls))

    async def _deliver(self, url: str, body: dict[str, Any]) -> None:
        assert self._client is not None
        where = _host(url)  # a chat webhook's path is its secret: never logged
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                resp = await self._client.post(url, json=body)
                if resp.status_code < 300:
                    await self.report(Delivery("webhook", where, body, True, attempt))
                    return
                retry = resp.status_code >= 500 or resp.status_code == 429
                why = f"HTTP {resp.status_code}"
            except httpx.HTTPError as err:
                retry, why = True, type(err).__name__
            if not retry or attempt == self.attempts:
                log.error("alert webhook %s gave up after %d attempt(s): %s", where, attempt, why)
                await self.report(Delivery("webhook", where, body, False, attempt, why))
                return
            log.warning("alert webhook %s: %s; retrying in %.1f s", where, why, delay)
            await self._sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)
