"""Alert delivery by email: one message per alert raised and one when it resolves.

Standard library only (``smtplib``, ``email.message``). Like the webhook
(server/fleet/webhook.py) a background task drains a bounded queue; each message is
retried with exponential back-off (``backoff_s`` doubling, capped at ``backoff_max_s``)
up to ``attempts`` times on a connection error, a dropped connection or a 4xx answer;
a 5xx answer (a refused login, sender or every recipient) and a server that does not
offer STARTTLS when it is required are final. Each message delivered, and each given
up, goes to ``on_delivery`` (audited by the composition root; server/fleet/delivery.py).
The alert itself stays in the database and on the rooms page either way.

Deduplication is the sweep's (server/fleet/alerts.py: at most one open alert per
device and rule, raised once, resolved once), so every change handed to ``notify`` is
new. A message's ``Message-ID`` is derived from the alert and event, and the
resolution answers the raise (``In-Reply-To``): mail clients thread the two, and a
receiving server may drop a copy a retry sends twice.

Recipients: addresses for every clinic's alerts, and ``<clinic-id>=<address>`` for
one clinic's only (:meth:`Recipients.parse`). The SMTP password is never logged nor
put in a ``repr``; failures are logged with the server's host and the error's type.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import re
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.fleet.delivery import Delivery, OnDelivery, QueuedChannel

if TYPE_CHECKING:
    from server.settings import Settings

__all__ = ["EmailSender", "Recipients", "SmtpServer", "compose"]

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^[^@\s,;<>\"=()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_CLINIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Headers unfolded up to SMTP's line limit: a subject is never folded before its text.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where mail goes: STARTTLS on (certificate checked against the system's CAs or
    ``ca_file``) unless turned off for a relay on the same host."""

    host: str
    port: int = 587
    starttls: bool = True
    user: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None
    timeout_s: float = 10.0


def check_address(address: str, what: str = "address") -> str:
    if not _ADDRESS.match(address):
        raise ValueError(f"{what} {address!r} is not an email address (name@host)")
    return address


@dataclass(frozen=True, slots=True)
class Recipients:
    """Who is told: ``everyone`` gets every clinic's alerts, ``by_clinic`` one clinic's."""

    everyone: tuple[str, ...] = ()
    by_clinic: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Recipients:
        """``ops@example.org, north=north-admin@example.org`` (comma-separated; "" =
        nobody). ValueError names the entry that is not an address."""
        everyone: list[str] = []
        by_clinic: dict[str, list[str]] = {}
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            clinic, sep, address = entry.partition("=")
            if not sep:
                everyone.append(check_address(entry, "recipient"))
                continue
            clinic, address = clinic.strip(), address.strip()
            if not _CLINIC.match(clinic):
                raise ValueError(f"recipient {entry!r}: {clinic!r} is not a clinic id")
            by_clinic.setdefault(clinic, []).append(check_address(address, "recipient"))
        return cls(tuple(dict.fromkeys(everyone)),
                   {c: tuple(dict.fromkeys(a)) for c, a in by_clinic.items()})

    def __bool__(self) -> bool:
        return bool(self.everyone or self.by_clinic)

    def for_clinic(self, clinic_id: str) -> list[str]:
        return list(dict.fromkeys((*self.everyone, *self.by_clinic.get(clinic_id, ()))))


def _message_id(body: dict[str, Any], event: str, domain: str) -> str:
    return f"<roomscribe-alert-{body.get('alert_id', 'x')}-{event}@{domain}>"


def compose(body: dict[str, Any], from_addr: str, to: list[str]) -> EmailMessage:
    """The message for one alert change (the webhook's JSON body, ``AlertChange.as_json``):
    room, device, rule and reason in the subject and the text."""
    event = str(body.get("event", "raised"))
    raised = event == "raised"
    device, room = body.get("device_id", "?"), body.get("room_id", "?")
    clinic, rule, reason = body.get("clinic_id", "?"), body.get("rule", "?"), body.get(
        "reason", "")
    try:
        at = datetime.fromisoformat(str(body["at"]))
    except (KeyError, ValueError):
        at = datetime.now(UTC)
    domain = from_addr.rpartition("@")[2]
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    msg["Subject"] = (f"[RoomScribe] {'FAILING' if raised else 'recovered'}: room {room}, "
                      f"device {device} ({rule})")
    msg["Date"] = format_datetime(at if at.tzinfo else at.replace(tzinfo=UTC))
    msg["Message-ID"] = _message_id(body, event, domain)
    if not raised:
        msg["In-Reply-To"] = msg["References"] = _message_id(body, "raised", domain)
    state = (f"is FAILING the {rule} rule" if raised
             else f"has recovered: the {rule} rule no longer fails")
    msg.set_content(
        f"Device {device} in room {room} (clinic {clinic}) {state}.\n\n"
        f"{'Reason' if raised else 'It was'}: {reason}\n"
        f"{'Raised' if raised else 'Resolved'} at: {at.isoformat()}\n"
        f"Alert: {body.get('alert_id', '?')}\n\n"
        "The rooms page shows the device's health and its open alerts.\n")
    return msg


def _password(settings: Settings) -> str:
    if settings.fleet_smtp_password_file is None:
        return settings.fleet_smtp_password
    try:
        return settings.fleet_smtp_password_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"cannot read ROOMSCRIBE_FLEET_SMTP_PASSWORD_FILE "
                         f"({settings.fleet_smtp_password_file}): {err.strerror}") from None


class EmailSender(QueuedChannel):
    """The email channel (server/fleet/delivery.py ``AlertChannel``)."""

    name = "email"

    def __init__(self, server: SmtpServer | None, from_addr: str, recipients: Recipients, *,
                 attempts: int = 5, backoff_s: float = 1.0, backoff_max_s: float = 60.0,
                 queue_max: int = 1000, drain_s: float = 10.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_delivery: OnDelivery | None = None) -> None:
        if server is not None:
            check_address(from_addr, "sender")
        super().__init__(queue_max=queue_max, drain_s=drain_s, on_delivery=on_delivery)
        self.server = server
        self.from_addr = from_addr
        self.recipients = recipients
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings,
                      on_delivery: OnDelivery | None = None) -> EmailSender:
        """Built from ``fleet_smtp_*`` / ``fleet_email_*``; no host: a sender that sends
        nothing."""
        server = None
        if settings.fleet_smtp_host:
            server = SmtpServer(settings.fleet_smtp_host, settings.fleet_smtp_port,
                                settings.fleet_smtp_starttls, settings.fleet_smtp_user,
                                _password(settings), settings.fleet_smtp_ca_file)
        return cls(server, settings.fleet_email_from, Recipients.parse(settings.fleet_email_to),
                   attempts=settings.fleet_email_attempts,
                   backoff_s=settings.fleet_email_backoff_s, on_delivery=on_delivery)

    @property
    def enabled(self) -> bool:
        return self.server is not None and bool(self.recipients)

    def wants(self, body: dict[str, Any]) -> bool:
        return bool(self.recipients.for_clinic(str(body.get("clinic_id", ""))))

    async def deliver(self, body: dict[str, Any]) -> None:
        assert self.server is not None
        to = self.recipients.for_clinic(str(body.get("clinic_id", "")))
        msg = compose(body, self.from_addr, to)
        target = f"{len(to)} recipient(s) via {self.server.host}"
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                refused = await asyncio.to_thread(self._send, msg, to)
            except smtplib.SMTPRecipientsRefused:
                retry, why = False, "every recipient refused"
            except smtplib.SMTPNotSupportedError:
                retry, why = False, "the server does not offer STARTTLS"
            except smtplib.SMTPResponseException as err:
                retry, why = err.smtp_code < 500, f"SMTP {err.smtp_code}"
            except (smtplib.SMTPException, OSError) as err:
                retry, why = True, type(err).__name__
            else:
                await self.report(Delivery("email", target, body, True, attempt,
                                            f"{len(refused)} refused" if refused else ""))
                return
            if not retry or attempt == self.attempts:
                log.error("alert email via %s gave up after %d attempt(s): %s",
                          self.server.host, attempt, why)
                await self.report(Delivery("email", target, body, False, attempt, why))
                return
            log.warning("alert email via %s: %s; retrying in %.1f s", self.server.host, why,
                        delay)
            await self._sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    def _send(self, msg: EmailMessage, to: list[str]) -> dict[str, tuple[int, bytes]]:
        """One SMTP conversation (blocking: run in a worker thread)."""
        server = self.server
        assert server is not None
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout_s) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context(
                    cafile=str(server.ca_file) if server.ca_file else None))
            if server.user:
                smtp.login(server.user, server.password)
            return smtp.send_message(msg, from_addr=self.from_addr, to_addrs=to)
