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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from server.db import Database
from server.review import audit

__all__ = ["AlertChannel", "Delivery", "OnDelivery", "audited", "record_delivery"]


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
