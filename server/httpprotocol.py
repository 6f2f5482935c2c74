"""uvicorn's h11 protocol with a header-read timeout: no slowloris.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but any byte
the client sends cancels that timer, and a new connection has none at all: a client that
sends a request's headers one byte a second holds its connection (and a file
descriptor, and a little memory) for as long as it likes; a few thousand of them and
nobody else gets in. :func:`header_timeout_protocol` makes a protocol class that closes
a connection whose request line and headers are not complete within ``timeout_s`` of
the connection opening, or of the previous response finishing::

    uvicorn.run(app, http=header_timeout_protocol(settings.http_header_timeout_s))

A request whose headers arrived in time may take as long as it needs for its body and
its answer (uploads, a slow report); a websocket is handed over to uvicorn's websocket
protocol with the timer stopped. A connection closed for a partial request gets
``408 Request Timeout`` first; an idle one is just closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderTimeoutH11Protocol", "header_timeout_protocol"]

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8"
                    b"\r\nconnection: close\r\ncontent-length: 40\r\n\r\n"
                    b"request headers not received in time.\r\n")


class HeaderTimeoutH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request headers are late.

    Use :func:`header_timeout_protocol` to set :attr:`header_timeout_s` (uvicorn makes
    one instance per connection from the class it is given)."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of a request whose headers are not complete yet

    # -- the timer runs while h11 waits for a request line and headers (their state IDLE)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._partial = False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.conn.their_state is not h11.IDLE:
            return  # the headers came in (seen by a path that does not disarm)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        if self._partial:
            log.info("%s: request headers not complete within %g s; closing", client,
                     self.header_timeout_s)
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is None:
            return
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()  # a whole request line and headers arrived
        elif data:
            self._partial = True

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm_header_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:  # waiting for the next request's headers
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def header_timeout_protocol(timeout_s: float) -> type[HeaderTimeoutH11Protocol]:
    """A :class:`HeaderTimeoutH11Protocol` class whose connections wait at most
    ``timeout_s`` seconds for a request's line and headers."""
    if not timeout_s > 0:
        raise ValueError("the header timeout must be more than 0 seconds")
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,),
                {"header_timeout_s": float(timeout_s)})
