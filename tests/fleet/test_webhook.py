"""Alert delivery to a real HTTP receiver on a loopback port: retried with back-off on
5xx and refused connections, not on 4xx; the evaluation loop delivers what a sweep
raises."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from server.db import Database
from server.fleet.hours import ClinicHours
from server.fleet.monitor import FleetMonitor
from server.fleet.rules import HealthRules
from server.fleet.store import record_status
from server.fleet.webhook import WebhookSender
from server.lab.processes import free_port
from tests.support import enrol_device


class Receiver:
    """Answers the first ``fail`` POSTs with ``status`` then 204; keeps the bodies."""

    def __init__(self, fail: int = 0, status: int = 503) -> None:
        self.fail, self.status = fail, status
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name for it
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail:
                    self.send_response(receiver.status)
                else:
                    receiver.bodies.append(json.loads(body))
                    receiver.got.set()
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.close()


def _sender(urls: list[str], pauses: list[float]) -> WebhookSender:
    async def sleep(s: float) -> None:
        pauses.append(s)
        await asyncio.sleep(0)

    return WebhookSender(urls, attempts=4, backoff_s=1.0, timeout_s=5.0, sleep=sleep)


async def test_retried_with_back_off_until_delivered(receiver: Receiver) -> None:
    pauses: list[float] = []
    sender = _sender([receiver.url], pauses)
    sender.start()
    sender.notify({"event": "raised", "rule": "offline"})
    await sender.aclose()  # waits for the queue to drain
    assert receiver.bodies == [{"event": "raised", "rule": "offline"}]
    assert (receiver.attempts, pauses, sender.delivered, sender.failed) == (3, [1.0, 2.0], 1, 0)


async def test_a_4xx_is_final_and_a_dead_url_gives_up(
        caplog: pytest.LogCaptureFixture) -> None:
    refusing = Receiver(fail=10, status=404)
    dead = f"http://127.0.0.1:{free_port()}/T0KEN-secret"
    try:
        pauses: list[float] = []
        sender = _sender([refusing.url, dead], pauses)
        sender.start()
        sender.notify({"event": "raised"})
        await sender.aclose()
        assert refusing.attempts == 1  # not retried
        assert pauses == [1.0, 2.0, 4.0]  # the dead URL: 4 attempts
        assert (sender.delivered, sender.failed) == (0, 2)
        assert "gave up after 4 attempt(s)" in caplog.text
        assert "T0KEN" not in caplog.text  # a chat webhook's path is its secret
    finally:
        refusing.close()


async def test_the_loop_delivers_what_a_sweep_raises(db: Database, receiver: Receiver) -> None:
    dev = enrol_device(db)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # Monday, clinic open (UTC)
    record_status(db, dev.device_id, {"state": "idle"}, now - timedelta(minutes=10))
    monitor = FleetMonitor(db, HealthRules(), ClinicHours.parse("Mon-Fri 07:00-19:00"),
                           lambda _d: False, interval_s=0.05,
                           webhook=_sender([receiver.url], []), clock=lambda: now)
    monitor.start()
    try:
        got = await asyncio.wait_for(asyncio.to_thread(receiver.got.wait, 10), 15)
        assert got
    finally:
        await monitor.aclose()
    assert monitor.sweeps >= 1
    (body,) = receiver.bodies  # later sweeps found the alert open: nothing new to send
    assert (body["event"], body["rule"], body["device_id"], body["clinic_id"]) == (
        "raised", "offline", dev.device_id, "test-clinic")
    assert body["reason"] == "offline 10 min during clinic hours"
