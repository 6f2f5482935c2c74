"""Both alert channels report each outcome to ``on_delivery``: the webhook's deliveries and
give-ups are audited like the email's (server/fleet/delivery.py), without the URL's path;
``FleetMonitor.from_settings`` wires both channels to the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from server.db import Database
from server.fleet.delivery import audited
from server.fleet.email import EmailSender
from server.fleet.monitor import FleetMonitor
from server.fleet.webhook import WebhookSender
from server.lab.processes import free_port
from server.review.models import AuditEvent
from server.settings import Settings
from tests.fleet.test_webhook import Receiver


async def test_webhook_outcomes_are_audited(db: Database) -> None:
    receiver = Receiver(fail=1)
    dead = f"http://127.0.0.1:{free_port()}/T0KEN-secret"

    async def sleep(_s: float) -> None:
        await asyncio.sleep(0)

    try:
        sender = WebhookSender([receiver.url, dead], attempts=2, backoff_s=1.0, sleep=sleep,
                               on_delivery=audited(db))
        sender.start()
        sender.notify({"event": "raised", "alert_id": 3, "device_id": "dev-9",
                       "room_id": "exam-9", "clinic_id": "north", "rule": "silent"})
        await sender.aclose()
    finally:
        receiver.close()
    with db.session() as s:
        rows = sorted((e.action, e.clinic_id, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("alert_%"))))
    assert rows == [
        ("alert_delivered", "north",
         "alert 3 raised dev-9 (exam-9) silent: webhook to 127.0.0.1 after 2 attempts"),
        ("alert_undelivered", "north",
         "alert 3 raised dev-9 (exam-9) silent: webhook to 127.0.0.1 gave up after 2 "
         "attempt(s): ConnectError")]
    assert not any("T0KEN" in detail for *_, detail in rows)


def test_the_monitor_built_from_settings_has_both_channels(tmp_path: Path,
                                                           db: Database) -> None:
    settings = Settings(data_dir=tmp_path, fleet_webhook_urls="http://127.0.0.1:9/h",
                        fleet_smtp_host="127.0.0.1", fleet_email_from="rs@clinic.example",
                        fleet_email_to="ops@clinic.example", fleet_email_attempts=7)
    monitor = FleetMonitor.from_settings(settings, db, lambda _d: False)
    webhook, email = monitor.channels
    assert isinstance(webhook, WebhookSender) and webhook.urls == ("http://127.0.0.1:9/h",)
    assert isinstance(email, EmailSender) and email.enabled and email.attempts == 7
    assert email.recipients.for_clinic("any") == ["ops@clinic.example"]
