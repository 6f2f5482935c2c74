"""Slowloris (issue 16, finding 10): a client that sends a request's headers a byte at a
time is closed once ``http_header_timeout_s`` has passed, whatever it keeps trickling;
normal requests, keep-alive and websockets go on as before.

The server is the real app under uvicorn on loopback with the protocol ``roomscribe
serve`` passes (server/httpprotocol.py), with a 1 s timeout. The test asserts that the
connection is closed, not how fast (the bound is generous).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from server.httpprotocol import HeaderTimeoutH11Protocol, header_timeout_protocol
from server.settings import Settings
from tests.review.world import World
from tests.support import ServerThread

TIMEOUT_S = 1.0
BOUND_S = 15.0  # closed well within this, or the test fails


@pytest.fixture
def slow_server(settings: Settings, world: World) -> Iterator[ServerThread]:
    srv = ServerThread(settings.model_copy(update={"http_header_timeout_s": TIMEOUT_S}))
    srv.server.config.http = header_timeout_protocol(TIMEOUT_S)  # as `roomscribe serve`
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _trickle(port: int, request: bytes, every_s: float) -> tuple[bool, bytes, float]:
    """Send ``request`` one byte every ``every_s`` seconds until the server closes the
    connection or BOUND_S passes. Returns (closed, what the server sent, seconds)."""
    started = time.monotonic()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND_S) as sock:
        sock.settimeout(every_s)
        for byte in (request * 100)[: int(BOUND_S / every_s)]:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return True, got, time.monotonic() - started
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return True, got, time.monotonic() - started
            if not chunk:
                return True, got, time.monotonic() - started
            got += chunk
    return False, got, time.monotonic() - started


def test_headers_sent_a_byte_at_a_time_are_cut_off(slow_server: ServerThread) -> None:
    closed, answer, took = _trickle(slow_server.port, b"GET /healthz HTTP/1.1\r\n"
                                    b"Host: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaa", 0.25)
    print(f"slowloris connection closed after {took:.2f} s (timeout {TIMEOUT_S} s)")
    assert closed, f"still open after {BOUND_S} s"
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]


def test_a_connection_that_sends_nothing_is_closed(slow_server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", slow_server.port), timeout=BOUND_S) as sock:
        assert sock.recv(4096) == b""  # closed by the server, no answer owed


def test_normal_requests_keep_alive_and_websockets_still_work(
        slow_server: ServerThread) -> None:
    with httpx.Client(base_url=slow_server.http_url, timeout=10) as c:
        assert c.get("/healthz").status_code == 200
        time.sleep(TIMEOUT_S / 2)
        assert c.get("/login").status_code == 200  # same connection, within the timeout
    # headers sent in pieces, complete within the timeout: answered
    with socket.create_connection(("127.0.0.1", slow_server.port), timeout=10) as sock:
        for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: 127.0.0.1\r\n",
                      b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(TIMEOUT_S / 5)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
    # a websocket outlives the header timeout: the timer stops at the upgrade
    with ws_connect(slow_server.ws_url, open_timeout=10) as ws:
        time.sleep(TIMEOUT_S * 1.5)
        ws.send('{"type": "hello"}')  # not a valid hello: the server says so and closes
        try:
            ws.recv(timeout=10)
        except ConnectionClosed as err:  # closed by the app, with a code: not cut off
            assert err.rcvd is not None and err.rcvd.code >= 4000, err


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        header_timeout_protocol(0)
    assert issubclass(header_timeout_protocol(3), HeaderTimeoutH11Protocol)
    assert header_timeout_protocol(3).header_timeout_s == 3.0
