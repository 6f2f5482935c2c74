"""The evaluation loop: every ``interval_s`` judge the fleet and deliver alert changes.

One object with ``start()`` / ``aclose()`` for the composition root. The sweep runs
in a worker thread (it is database work); changes go to the webhook sender and to
``on_change`` (e.g. the live UI) in the event loop. A failed sweep is logged and the
next one runs on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from server.db import Database
from server.fleet.alerts import AlertChange, sweep
from server.fleet.hours import ClinicHours
from server.fleet.rules import HealthRules
from server.fleet.webhook import WebhookSender
from server.settings import Settings

__all__ = ["FleetMonitor"]

log = logging.getLogger(__name__)


def _urls(text: str) -> list[str]:
    return [u.strip() for u in text.split(",") if u.strip()]


class FleetMonitor:
    def __init__(self, db: Database, rules: HealthRules, hours: ClinicHours,
                 is_connected: Callable[[str], bool], *, interval_s: float = 15.0,
                 webhook: WebhookSender | None = None,
                 on_change: Callable[[AlertChange], None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.rules = rules
        self.hours = hours
        self.is_connected = is_connected
        self.interval_s = interval_s
        self.webhook = webhook or WebhookSender(())
        self.on_change = on_change
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0

    @classmethod
    def from_settings(cls, settings: Settings, db: Database,
                      is_connected: Callable[[str], bool]) -> FleetMonitor:
        """Built from the server's settings (``fleet_*``)."""
        webhook = WebhookSender(_urls(settings.fleet_webhook_urls),
                                attempts=settings.fleet_webhook_attempts,
                                backoff_s=settings.fleet_webhook_backoff_s)
        return cls(db, HealthRules.from_settings(settings),
                   ClinicHours.parse(settings.fleet_clinic_hours), is_connected,
                   interval_s=settings.fleet_evaluate_every_s, webhook=webhook)

    async def evaluate_once(self) -> list[AlertChange]:
        changes = await asyncio.to_thread(sweep, self.db, self.rules, self.hours,
                                          self.clock(), self.is_connected)
        self.sweeps += 1
        for change in changes:
            log.warning("fleet alert %s", change.as_json()["text"])
            self.webhook.notify(change.as_json())
            if self.on_change is not None:
                self.on_change(change)
        return changes

    def start(self) -> None:
        self.webhook.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleet-monitor")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhook.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate_once()
            except Exception:  # the loop outlives one bad sweep
                log.exception("fleet evaluation failed")
            await asyncio.sleep(self.interval_s)
