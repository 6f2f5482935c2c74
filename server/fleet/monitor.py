"""The evaluation loop: every ``interval_s`` judge the fleet and deliver alert changes.

One object with ``start()`` / ``aclose()`` for the composition root. The sweep runs
in a worker thread (it is database work); changes go to the alert channels (webhook,
email; each outcome audited) and to ``on_change`` (e.g. the live UI) in the event
loop. A failed sweep is logged and the next one runs on time. With ``transcription``
(this process's ASR monitor) each sweep also judges the transcription backlog of the
rooms transcribed here (server/fleet/backlog.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from server.asr.monitor import TranscriptionMonitor
from server.db import Database
from server.fleet.alerts import AlertChange, sweep
from server.fleet.backlog import BacklogWatch, room_backlogs
from server.fleet.delivery import AlertChannel, audited
from server.fleet.email import EmailSender
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
                 webhook: WebhookSender | None = None, channels: Sequence[AlertChannel] = (),
                 on_change: Callable[[AlertChange], None] | None = None,
                 transcription: TranscriptionMonitor | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.rules = rules
        self.hours = hours
        self.is_connected = is_connected
        self.interval_s = interval_s
        self.webhook = webhook or WebhookSender(())
        #: Where each change goes: the webhook, then the other channels (email).
        self.channels: tuple[AlertChannel, ...] = (self.webhook, *channels)
        self.on_change = on_change
        self.clock = clock
        self.transcription = transcription
        self.backlog = BacklogWatch(rules.backlog_max_s)
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0

    @classmethod
    def from_settings(cls, settings: Settings, db: Database,
                      is_connected: Callable[[str], bool],
                      transcription: TranscriptionMonitor | None = None) -> FleetMonitor:
        """Built from the server's settings (``fleet_*``); every delivery is audited."""
        on_delivery = audited(db)
        webhook = WebhookSender(_urls(settings.fleet_webhook_urls),
                                attempts=settings.fleet_webhook_attempts,
                                backoff_s=settings.fleet_webhook_backoff_s,
                                on_delivery=on_delivery)
        email = EmailSender.from_settings(settings, on_delivery)
        return cls(db, HealthRules.from_settings(settings),
                   ClinicHours.parse(settings.fleet_clinic_hours), is_connected,
                   interval_s=settings.fleet_evaluate_every_s, webhook=webhook,
                   channels=(email,), transcription=transcription)

    async def evaluate_once(self) -> list[AlertChange]:
        now = self.clock()
        backlogs = (self.backlog.observe(room_backlogs(self.transcription), now)
                    if self.transcription is not None else None)
        changes = await asyncio.to_thread(sweep, self.db, self.rules, self.hours, now,
                                          self.is_connected, backlogs)
        self.sweeps += 1
        for change in changes:
            log.warning("fleet alert %s", change.as_json()["text"])
            body = change.as_json()
            for channel in self.channels:
                channel.notify(body)
            if self.on_change is not None:
                self.on_change(change)
        return changes

    def start(self) -> None:
        for channel in self.channels:
            channel.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleet-monitor")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for channel in self.channels:
            await channel.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate_once()
            except Exception:  # the loop outlives one bad sweep
                log.exception("fleet evaluation failed")
            await asyncio.sleep(self.interval_s)
