"""Alert email against a real SMTP server (aiosmtpd) on a loopback port: one message per
alert raised and one when it resolves, none for an alert already open, STARTTLS and
login, retried with back-off while the server is down, each outcome audited."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from server.db import Database
from server.fleet.alerts import open_alerts
from server.fleet.delivery import audited
from server.fleet.email import EmailSender, Recipients, SmtpServer, compose
from server.fleet.hours import ClinicHours
from server.fleet.monitor import FleetMonitor
from server.fleet.rules import HealthRules
from server.fleet.store import record_status
from server.lab.processes import free_port
from server.review.models import AuditEvent
from server.settings import Settings
from tests.support import enrol_device
from tests.tlsca import make_ca_and_server_cert

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # clinic open (UTC)
HOURS = ClinicHours.parse("Mon-Fri 07:00-19:00")


class Mailbox:
    """aiosmtpd handler: keeps what it is given; refuses RCPT with ``refuse`` if set."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.arrived = threading.Condition()

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session,
                          envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg: Message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.arrived:
            self.messages.append((envelope, msg))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    async def wait(self, count: int) -> None:
        def until() -> bool:
            with self.arrived:
                return self.arrived.wait_for(lambda: len(self.messages) >= count, 10)

        assert await asyncio.to_thread(until)


def smtp_server(box: Mailbox, port: int | None = None, **kwargs: Any) -> Controller:
    controller = Controller(box, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def box() -> Iterator[tuple[Mailbox, Controller]]:
    mailbox = Mailbox()
    controller = smtp_server(mailbox)
    yield mailbox, controller
    controller.stop()


def plain(port: int) -> SmtpServer:
    return SmtpServer("127.0.0.1", port, starttls=False, timeout_s=5.0)


def _sender(server: SmtpServer, db: Database | None = None, *, to: str = "ops@clinic.example",
            pauses: list[float] | None = None, attempts: int = 4,
            on_pause: Any = None) -> EmailSender:
    async def sleep(s: float) -> None:
        if pauses is not None:
            pauses.append(s)
        if on_pause is not None:
            await on_pause()
        await asyncio.sleep(0)

    return EmailSender(server, "roomscribe@clinic.example", Recipients.parse(to),
                       attempts=attempts, backoff_s=1.0, sleep=sleep,
                       on_delivery=audited(db) if db is not None else None)


def _audit(db: Database, *actions: str) -> list[str]:
    with db.session() as s:
        return [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.in_(actions)).order_by(AuditEvent.id))]


def _body(**extra: Any) -> dict[str, Any]:
    return {"event": "raised", "alert_id": 7, "device_id": "dev-1", "room_id": "exam-3",
            "clinic_id": "north", "rule": "offline", "reason": "offline 6 min",
            "at": MONDAY_NOON.isoformat(), "text": "x"} | extra


async def test_raise_and_resolve_send_one_mail_each_and_an_open_alert_none(
        db: Database, box: tuple[Mailbox, Controller]) -> None:
    mailbox, controller = box
    dev = enrol_device(db, "exam-3")
    now = MONDAY_NOON
    record_status(db, dev.device_id, {"state": "idle"}, now - timedelta(minutes=10))
    connected = {dev.device_id: False}
    sender = _sender(plain(controller.port), db)
    monitor = FleetMonitor(db, HealthRules(), HOURS, lambda d: connected[d],
                           channels=(sender,), clock=lambda: now)
    sender.start()  # the channel only: the test runs the sweeps itself
    try:
        assert [c.event for c in await monitor.evaluate_once()] == ["raised"]
        await mailbox.wait(1)
        # the device still offline: the alert is open already, nothing new to send
        assert await monitor.evaluate_once() == []
        connected[dev.device_id] = True
        now += timedelta(minutes=1)
        record_status(db, dev.device_id, {"state": "idle"}, now)
        assert [c.event for c in await monitor.evaluate_once()] == ["resolved"]
        await mailbox.wait(2)
    finally:
        await monitor.aclose()
    assert len(mailbox.messages) == 2
    (env1, raised), (env2, resolved) = mailbox.messages
    assert env1.rcpt_tos == env2.rcpt_tos == ["ops@clinic.example"]
    assert env1.mail_from == "roomscribe@clinic.example"
    assert raised["Subject"] == (f"[RoomScribe] FAILING: room exam-3, device {dev.device_id} "
                                 "(offline)")
    text = raised.get_content()
    assert f"Device {dev.device_id} in room exam-3 (clinic test-clinic)" in text
    assert "Reason: offline 10 min during clinic hours" in text
    assert resolved["Subject"].startswith("[RoomScribe] recovered: room exam-3")
    assert resolved["In-Reply-To"] == raised["Message-ID"]  # threaded with the raise
    assert _audit(db, "alert_delivered") == [
        f"alert 1 raised {dev.device_id} (exam-3) offline: email to 1 recipient(s) via "
        "127.0.0.1", f"alert 1 resolved {dev.device_id} (exam-3) offline: email to "
        "1 recipient(s) via 127.0.0.1"]


async def test_starttls_and_login_and_the_password_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs = make_ca_and_server_cert(tmp_path / "tls")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certs["cert"], certs["key"])
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: SMTPServer, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-Pw", handled=False)

    mailbox = Mailbox()
    controller = smtp_server(mailbox, tls_context=tls, require_starttls=True,
                             authenticator=authenticator, auth_required=True)
    try:
        server = SmtpServer("127.0.0.1", controller.port, user="alerts", password="s3cret-Pw",
                            ca_file=certs["ca"], timeout_s=5.0)
        assert "s3cret" not in repr(server)
        sender = _sender(server)
        sender.start()
        sender.notify(_body())
        await sender.aclose()
        assert (sender.delivered, sender.failed) == (1, 0)
        assert logins == [(b"alerts", b"s3cret-Pw")]
        ((_, msg),) = mailbox.messages
        assert msg["Subject"] == "[RoomScribe] FAILING: room exam-3, device dev-1 (offline)"

        # a wrong password is refused (535): final, not retried
        pauses: list[float] = []
        bad = _sender(SmtpServer("127.0.0.1", controller.port, user="alerts",
                                 password="wr0ng-Pw", ca_file=certs["ca"]), pauses=pauses)
        bad.start()
        bad.notify(_body())
        await bad.aclose()
        assert (bad.failed, pauses) == (1, [])
        assert "gave up after 1 attempt(s): SMTP 535" in caplog.text

        # without the clinic's CA the certificate is not trusted: never sent in the clear
        untrusted = _sender(SmtpServer("127.0.0.1", controller.port, user="alerts",
                                       password="s3cret-Pw"), attempts=2)
        untrusted.start()
        untrusted.notify(_body())
        await untrusted.aclose()
        assert (untrusted.delivered, untrusted.failed) == (0, 1)
        assert "SSLCertVerificationError" in caplog.text
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1
    assert "s3cret" not in caplog.text and "wr0ng" not in caplog.text


async def test_smtp_down_retried_with_back_off_then_delivered(db: Database) -> None:
    port = free_port()
    mailbox = Mailbox()
    started: list[Controller] = []

    async def server_comes_back() -> None:  # after the second refused attempt
        if len(pauses) == 2:
            started.append(await asyncio.to_thread(smtp_server, mailbox, port))

    pauses: list[float] = []
    sender = _sender(plain(port), db, pauses=pauses, on_pause=server_comes_back)
    sender.start()
    sender.notify(_body())
    try:
        await sender.aclose()
    finally:
        for controller in started:
            controller.stop()
    assert pauses == [1.0, 2.0]
    assert (sender.delivered, sender.failed, len(mailbox.messages)) == (1, 0, 1)
    assert _audit(db, "alert_delivered", "alert_undelivered") == [
        "alert 7 raised dev-1 (exam-3) offline: email to 1 recipient(s) via 127.0.0.1 "
        "after 3 attempts"]


async def test_smtp_down_gives_up_audited_and_the_alert_stays_open(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    dev = enrol_device(db, "exam-3")
    record_status(db, dev.device_id, {"state": "idle"}, MONDAY_NOON - timedelta(minutes=10))
    pauses: list[float] = []
    sender = _sender(plain(free_port()), db, pauses=pauses, attempts=3)
    monitor = FleetMonitor(db, HealthRules(), HOURS, lambda _d: False, channels=(sender,),
                           clock=lambda: MONDAY_NOON)
    sender.start()  # the channel only: the test runs the sweeps itself
    try:
        await monitor.evaluate_once()
    finally:
        await monitor.aclose()
    assert pauses == [1.0, 2.0]
    assert (sender.delivered, sender.failed) == (0, 1)
    assert _audit(db, "alert_undelivered") == [
        f"alert 1 raised {dev.device_id} (exam-3) offline: email to 1 recipient(s) via "
        "127.0.0.1 gave up after 3 attempt(s): ConnectionRefusedError"]
    with db.session() as s:  # nothing lost: still open, on the rooms page
        assert [(a.device_id, a.rule) for a in open_alerts(s)] == [(dev.device_id, "offline")]
    assert "alert email via 127.0.0.1 gave up after 3 attempt(s)" in caplog.text


async def test_refused_recipients_are_final(db: Database) -> None:
    mailbox = Mailbox(refuse="550 no such mailbox")
    controller = smtp_server(mailbox)
    try:
        pauses: list[float] = []
        sender = _sender(plain(controller.port), db, pauses=pauses)
        sender.start()
        sender.notify(_body())
        await sender.aclose()
    finally:
        controller.stop()
    assert (pauses, sender.failed, mailbox.messages) == ([], 1, [])
    assert _audit(db, "alert_undelivered") == [
        "alert 7 raised dev-1 (exam-3) offline: email to 1 recipient(s) via 127.0.0.1 gave up "
        "after 1 attempt(s): every recipient refused"]


async def test_each_clinic_has_its_own_recipients(box: tuple[Mailbox, Controller]) -> None:
    mailbox, controller = box
    sender = _sender(plain(controller.port),
                     to="ops@it.example, north=north@clinic.example, north=lead@clinic.example")
    sender.start()
    sender.notify(_body(clinic_id="north"))
    sender.notify(_body(clinic_id="south", alert_id=8))
    await sender.aclose()
    assert [(env.rcpt_tos, msg["To"]) for env, msg in mailbox.messages] == [
        (["ops@it.example", "north@clinic.example", "lead@clinic.example"],
         "ops@it.example, north@clinic.example, lead@clinic.example"),
        (["ops@it.example"], "ops@it.example")]
    # a clinic nobody is told about: nothing queued
    only_north = _sender(plain(controller.port), to="north=north@clinic.example")
    only_north.start()
    only_north.notify(_body(clinic_id="south"))
    await only_north.aclose()
    assert (only_north.delivered, len(mailbox.messages)) == (0, 2)


def test_recipients_and_settings_refuse_bad_input(tmp_path: Path) -> None:
    assert Recipients.parse("") == Recipients()
    assert not Recipients.parse(" , ")
    assert Recipients.parse("a@x.org, a@x.org").everyone == ("a@x.org",)
    for bad, says in [("ops", "not an email address"),
                      ("a@x.org\r\nBcc: b@y.org", "not an email address"),
                      ("no clinic=a@x.org", "not a clinic id"),
                      ("north=", "not an email address")]:
        with pytest.raises(ValueError, match=says):
            Recipients.parse(bad)

    def settings(**kw: Any) -> Settings:
        return Settings(data_dir=tmp_path, fleet_smtp_host="smtp.example.org", **kw)

    with pytest.raises(ValueError, match="ROOMSCRIBE_FLEET_EMAIL_FROM"):
        settings(fleet_email_to="ops@x.org")
    with pytest.raises(ValueError, match="no recipients"):
        settings(fleet_email_from="rs@x.org")
    with pytest.raises(ValueError, match="not both"):
        settings(fleet_email_from="rs@x.org", fleet_email_to="ops@x.org",
                 fleet_smtp_password="pw", fleet_smtp_password_file=tmp_path / "pw")
    with pytest.raises(ValueError, match="needs STARTTLS"):
        settings(fleet_email_from="rs@x.org", fleet_email_to="ops@x.org",
                 fleet_smtp_user="u", fleet_smtp_starttls=False)
    # the password from a secret file; kept out of the settings' repr
    (tmp_path / "pw").write_text("fr0m-file\n")
    good = settings(fleet_email_from="rs@x.org", fleet_email_to="ops@x.org",
                    fleet_smtp_user="u", fleet_smtp_password_file=tmp_path / "pw")
    sender = EmailSender.from_settings(good)
    assert sender.server is not None and sender.server.password == "fr0m-file"
    assert sender.enabled and "fr0m" not in repr(sender.server)
    assert "pw-in-env" not in repr(settings(fleet_email_from="rs@x.org",
                                            fleet_email_to="ops@x.org",
                                            fleet_smtp_password="pw-in-env"))
    with pytest.raises(ValueError, match="cannot read ROOMSCRIBE_FLEET_SMTP_PASSWORD_FILE"):
        EmailSender.from_settings(settings(fleet_email_from="rs@x.org",
                                           fleet_email_to="ops@x.org",
                                           fleet_smtp_password_file=tmp_path / "missing"))
    # no host: a sender that sends nothing
    assert not EmailSender.from_settings(Settings(data_dir=tmp_path)).enabled


def test_the_message_names_room_device_and_reason() -> None:
    msg = compose(_body(event="resolved"), "rs@clinic.example", ["a@x.org", "b@x.org"])
    assert msg["To"] == "a@x.org, b@x.org"
    assert msg["Message-ID"] == "<roomscribe-alert-7-resolved@clinic.example>"
    assert msg["References"] == "<roomscribe-alert-7-raised@clinic.example>"
    assert msg["Date"] == "Mon, 02 Mar 2026 12:00:00 +0000"
    text = msg.get_content()
    assert "Device dev-1 in room exam-3 (clinic north) has recovered" in text
    assert "It was: offline 6 min" in text
