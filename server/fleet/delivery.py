"""What every alert channel (webhook, email) is to the evaluation loop, and how its
outcomes are audited.

A channel takes each alert change's JSON body (:meth:`AlertChange.as_json
<server.fleet.alerts.AlertChange.as_json>`) with ``notify`` (it must return at once:
the channel queues it) and delivers it in a background task of its own, retried with
back-off. Each delivery, and each one given up, is reported as a :class:`Delivery` to
the channel's ``on_delivery``; the composition root passes :func:`audited`, which
writes one ``alert_delivered`` / ``alert_undelivered`` audit row per outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from server.db import Database
from server.review import audit

__all__ = ["AlertChannel", "Delivery", "OnDelivery", "QueuedChannel", "audited",
           "record_delivery"]

log = logging.getLogger(__name__)


class AlertChannel(Protocol):
    def notify(self, body: dict[str, Any]) -> None:
        """Queue one alert change (never blocks; a full queue drops it, logged)."""

    def start(self) -> None:
        """Start delivering (on the event loop)."""

    async def aclose(self) -> None:
        """Give queued deliveries a bounded time to finish, then stop."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert change delivered by a channel, or given up."""

    channel: str  # webhook | email
    target: str  # where it went, without secrets: a host, "3 recipients via smtp.host"
    body: dict[str, Any]
    ok: bool
    attempts: int
    why: str = ""  # the last failure (ok=False), or what was refused in part

    def detail(self) -> str:
        what = (f"alert {self.body.get('alert_id', '?')} {self.body.get('event', '?')} "
                f"{self.body.get('device_id', '?')} ({self.body.get('room_id', '?')}) "
                f"{self.body.get('rule', '?')}")
        how = f"{self.channel} to {self.target}"
        if self.ok:
            tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
            return f"{what}: {how}{tries}{f'; {self.why}' if self.why else ''}"
        return f"{what}: {how} gave up after {self.attempts} attempt(s): {self.why}"


#: Called by a channel with each outcome, on the event loop (it may await the database).
OnDelivery = Callable[[Delivery], Awaitable[None]]


def record_delivery(db: Database, delivery: Delivery) -> None:
    """One audit row for ``delivery`` in its own transaction (blocking: a worker thread)."""
    action = (audit.AuditAction.ALERT_DELIVERED if delivery.ok
              else audit.AuditAction.ALERT_UNDELIVERED)
    with db.session() as s:
        audit.record(s, None, action, clinic_id=str(delivery.body.get("clinic_id", "")),
                     detail=delivery.detail())


def audited(db: Database) -> OnDelivery:
    """The ``on_delivery`` that audits each outcome in a worker thread."""

    async def on_delivery(delivery: Delivery) -> None:
        await asyncio.to_thread(record_delivery, db, delivery)

    return on_delivery


class QueuedChannel:
    """What every channel shares: the bounded queue ``notify`` fills, the background task
    that delivers one body at a time, the drain on ``aclose`` and the outcome reports.
    A channel says whether it is on (``enabled``), which bodies it takes (``wants``),
    what it opens and closes around its task, and how it delivers one body with its
    retries (``deliver``, reporting each outcome with ``report``)."""

    name = "channel"

    def __init__(self, *, queue_max: int, drain_s: float,
                 on_delivery: OnDelivery | None) -> None:
        self.drain_s = drain_s
        self._on_delivery = on_delivery
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_max)
        self._task: asyncio.Task[None] | None = None
        #: Deliveries that succeeded / were given up (for tests and the log).
        self.delivered = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        raise NotImplementedError

    def wants(self, body: dict[str, Any]) -> bool:
        return True

    def opened(self) -> None:
        """Called before the task starts (on the event loop)."""

    async def closed(self) -> None:
        """Called after the task stopped."""

    async def deliver(self, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def notify(self, body: dict[str, Any]) -> None:
        """Queue one alert change (dropped, and logged, when the queue is full)."""
        if not self.enabled or not self.wants(body):
            return
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            log.error("alert %s queue full: dropped %s", self.name, body.get("text", body))

    def start(self) -> None:
        if self.enabled and self._task is None:
            self.opened()
            self._task = asyncio.create_task(self._run(), name=f"fleet-{self.name}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self.drain_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.closed()

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self.deliver(body)
            except Exception:  # the channel outlives one bad message
                log.exception("alert %s failed", self.name)
            finally:
                self._queue.task_done()

    async def report(self, delivery: Delivery) -> None:
        if delivery.ok:
            self.delivered += 1
        else:
            self.failed += 1
        if self._on_delivery is None:
            return
        try:
            await self._on_delivery(delivery)
        except Exception:  # auditing failed: the delivery itself stands
            log.exception("could not audit the alert %s outcome", self.name)
