"""The websocket session to the server: hello, resume, stream, acks, liveness.

One :class:`Uplink` runs for the agent's lifetime and keeps reconnecting, with
jittered back-off, whatever goes wrong. Per connection::

    → hello                 ← ready            (or a 44xx close: logged clearly)
    → status
    → encounter-start       ← ack(seq)         for each spooled encounter, oldest first
    → audio seq+1 ...       ← ack ...          from the spool, bounded window in flight
    → encounter-end         ← ack(complete)    → the spool deletes the encounter
    → ping                  ← pong             no pong in time → reconnect
                            ← command, consent-withdrawn, diagnostics-request,
                              config-change     (device/server_requests.py)

With several ``server_urls`` (nodes of one cluster), a connection that ends
moves to the next node (:class:`~device.backoff.Failover`); the handshake there
resumes each encounter from that server's ack, which is the cluster's (the
nodes share one database), so nothing is lost or sent twice.

Capture never waits for the network: the sender only ever *reads* the spool,
woken by an :class:`asyncio.Event` when the agent appends a frame.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from protocol import (
    MAX_EVENT_BYTES,
    SUPPORTED_FORMAT,
    Ack,
    AudioFrame,
    CloseCode,
    Command,
    ConfigChange,
    Consent,
    ConsentWithdrawn,
    DiagnosticsRequest,
    EncounterEnd,
    EncounterStart,
    ErrorCode,
    ErrorEvent,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Ready,
    Status,
    encode_event,
    parse_event,
)

from . import __version__
from .backoff import Backoff, Failover
from .errors import SpoolError
from .segments import Record
from .sendstate import SendState
from .server_requests import OnRequest, ServerRequests
from .settings import AgentSettings
from .spool import Spool, SpoolReader
from .stats import Counters

__all__ = ["SessionEnded", "Uplink", "describe_close"]

log = logging.getLogger(__name__)

_READ_CAP = 256 * 1024

# close code -> (what to tell IT, whether only a slow retry makes sense)
_CLOSES: dict[int, tuple[str, bool]] = {
    CloseCode.UNAUTHORIZED: ("token rejected: re-enrol this device", True),
    CloseCode.UNSUPPORTED_FORMAT: (
        "server refused the audio format (16 kHz mono s16le): agent and server versions "
        "disagree", True),
    CloseCode.PROTOCOL: ("server says our hello is malformed: agent and server versions "
                         "disagree", True),
    CloseCode.REPLACED: ("another connection with this device id replaced this one: is a "
                         "second agent running with the same identity?", True),
    CloseCode.HELLO_TIMEOUT: ("server timed out waiting for our hello", False),
    CloseCode.SERVER_ERROR: ("server cannot store audio right now; the spool keeps it", False),
    CloseCode.GOING_AWAY: ("server is going away (restarting?)", False),
    CloseCode.NORMAL: ("server closed the connection", False),
    CloseCode.MESSAGE_TOO_BIG: ("server says a message was too big", True),
    1006: ("connection lost", False),
}


class SessionEnded(Exception):
    """Why a connection ended; ``at_cap``: retry only at the back-off cap."""

    def __init__(self, message: str, *, at_cap: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.at_cap = at_cap


def describe_close(code: int | None, reason: str = "") -> SessionEnded:
    """Turn a close code into a clear, actionable message."""
    if code is None:
        return SessionEnded("connection lost")
    text, at_cap = _CLOSES.get(code, ("connection closed by the server", code >= 4400))
    detail = f" ({reason})" if reason else ""
    return SessionEnded(f"{text} [close {code}]{detail}", at_cap=at_cap)


def _ssl_context(settings: AgentSettings, url: str) -> ssl.SSLContext | None:
    if urlsplit(url).scheme != "wss":
        return None
    cafile = str(settings.ca_bundle) if settings.ca_bundle else None
    return ssl.create_default_context(cafile=cafile)  # verifies chain and hostname


class Uplink:
    """Streams the spool to the server, forever, across every kind of failure."""

    def __init__(
        self,
        settings: AgentSettings,
        spool: Spool,
        counters: Counters,
        *,
        status: Callable[[], Status],
        on_command: Callable[[str], Any] = lambda _action: None,
        on_removed: Callable[[str], None] = lambda _encounter_id: None,
        on_withdrawn: Callable[[str, str], Any] = lambda _encounter_id, _by: None,
        on_request: OnRequest = lambda _body: None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.counters = counters
        self.connected = False
        self.last_error: str | None = None
        self._status = status
        self._on_removed = on_removed
        #: the server's commands and IT's requests, answered by the agent's callbacks
        self.requests = ServerRequests(on_command=on_command, on_withdrawn=on_withdrawn,
                                       on_request=on_request)
        self._rng = rng or random.Random()
        self.failover = Failover(settings.servers)
        self._ssl = {url: _ssl_context(settings, url) for url in settings.servers}
        self._wake = asyncio.Event()
        self._status_due = True
        self._readers: dict[str, SpoolReader] = {}
        self._healthy = False
        self._last_progress = 0.0
        self._pong = asyncio.Event()
        self._ping_id = 0
        #: consent state sent per encounter on this connection (sent again on reconnect)
        self._consent_sent: dict[str, str] = {}
        #: bumped on each withdrawal: frames read before it are not sent
        self._discards = 0

    # ---------------------------------------------------------- agent -> uplink

    def wake(self) -> None:
        """New audio or a new/ended encounter is in the spool."""
        self._wake.set()

    def audio_discarded(self, encounter_id: str) -> None:
        """The encounter's unsent audio was deleted (consent withdrawn): frames of it
        already read into memory are not sent; the placeholders go instead."""
        self._discards += 1
        self._drop_reader(encounter_id)
        self._wake.set()

    def status_changed(self) -> None:
        """Send a fresh ``status`` event as soon as connected."""
        self._status_due = True
        self._wake.set()

    # --------------------------------------------------------------- sessions

    async def run(self) -> None:
        """Connect, stream, and on any failure back off and reconnect. Never returns."""
        loop = asyncio.get_running_loop()
        s = self.settings
        backoff = Backoff(s.backoff_base_s, s.backoff_cap_s)
        while True:
            self._healthy = False
            started = loop.time()
            try:
                await self._session()
                end = SessionEnded("connection closed")
            except SessionEnded as err:
                end = err
            except Exception as err:  # a bug must not stop delivery for good
                log.exception("uplink: unexpected error")
                end = SessionEnded(f"internal error: {err!r}")
            finally:
                self.connected = False
                self._close_readers()
            healthy = self._healthy or loop.time() - started >= backoff.cap
            if healthy:
                backoff.reset()
            failed_url = self.failover.current
            all_failed = self.failover.moved_on(healthy)
            if end.at_cap:
                delay = backoff.cap_delay(self._rng)
            elif healthy or all_failed:
                delay = backoff.next_delay(self._rng)
            else:  # another node has not failed yet: try it at once
                delay = self._rng.uniform(0.0, backoff.base)
            self.last_error = end.message
            where = (f" ({failed_url}); next: {self.failover.current}"
                     if len(self.failover.urls) > 1 else "")
            log.log(logging.ERROR if end.at_cap else logging.WARNING,
                    "uplink: %s%s; reconnecting in %.1f s", end.message, where, delay)
            self.counters.reconnects += 1
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        s = self.settings
        url = self.failover.current
        host = urlsplit(url).hostname
        try:
            async with connect(
                url, ssl=self._ssl[url], open_timeout=s.open_timeout_s,
                max_size=4 * MAX_EVENT_BYTES, compression=None, ping_interval=None,
                close_timeout=5, user_agent_header=f"roomscribe-device/{__version__}",
            ) as ws:
                await self._handshake(ws)
                await self._stream(ws)
        except SessionEnded:
            raise
        except ConnectionClosed as err:
            rcvd = err.rcvd
            raise describe_close(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") \
                from err
        except InvalidStatus as err:
            status = err.response.status_code
            hint = ": check server_url's path" if status == 404 else ""
            raise SessionEnded(f"server refused the websocket (HTTP {status}){hint}",
                               at_cap=status in (401, 403, 404)) from err
        except ssl.SSLCertVerificationError as err:
            raise SessionEnded(
                f"TLS certificate of {host} not trusted ({err.verify_message}); "
                "set ca_bundle to the clinic's CA", at_cap=True) from err
        except ssl.SSLError as err:
            raise SessionEnded(f"TLS error with {host}: {err}") from err
        except TimeoutError as err:
            raise SessionEnded(f"timed out connecting to {host}") from err
        except OSError as err:
            raise SessionEnded(f"cannot reach {host}: {err.strerror or err}") from err
        except InvalidHandshake as err:
            raise SessionEnded(f"websocket handshake with {host} failed: {err}") from err

    async def _handshake(self, ws: ClientConnection) -> Ready:
        s = self.settings
        hello = Hello(device_id=s.device_id, token=s.token, room_id=s.room_id,
                      agent_version=__version__, audio=asdict(SUPPORTED_FORMAT))
        await ws.send(encode_event(hello.to_event()))
        try:
            message = await asyncio.wait_for(ws.recv(), s.open_timeout_s)
        except TimeoutError:
            raise SessionEnded(f"no ready from the server within {s.open_timeout_s:g} s") \
                from None
        try:
            body = parse_event(message) if isinstance(message, str) else None
        except ProtocolError as err:
            raise SessionEnded(f"server's answer to hello is not an event: {err.message}",
                               at_cap=True) from err
        if isinstance(body, ErrorEvent):
            raise SessionEnded(f"server answered hello with error {body.code}: {body.message}")
        if not isinstance(body, Ready):
            raise SessionEnded("server's answer to hello is not ready", at_cap=True)
        if body.max_audio_payload < s.frame_bytes:
            raise SessionEnded(
                f"server takes at most {body.max_audio_payload} audio bytes per frame but "
                f"frame_ms={s.frame_ms} makes {s.frame_bytes}: lower frame_ms", at_cap=True)
        log.info("uplink: connected to %s (server %s)", self.failover.current,
                 body.server_version)
        return body

    async def _stream(self, ws: ClientConnection) -> None:
        self.connected = True
        self.last_error = None
        self._status_due = True
        self._consent_sent = {}
        self._last_progress = asyncio.get_running_loop().time()
        state = SendState(self.settings.max_inflight_kb * 1024)
        tasks = [
            asyncio.create_task(self._sender(ws, state), name="uplink-sender"),
            asyncio.create_task(self._receiver(ws, state), name="uplink-receiver"),
            asyncio.create_task(self._keepalive(ws, state), name="uplink-keepalive"),
        ]
        try:
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if (exc := task.exception()) is not None:
                raise exc
        raise SessionEnded("connection closed")

    # ----------------------------------------------------------------- sender

    async def _sender(self, ws: ClientConnection, state: SendState) -> None:
        while True:
            self._wake.clear()
            await self._pump(ws, state)
            await self._wake.wait()

    async def _pump(self, ws: ClientConnection, state: SendState) -> None:
        """Send whatever can go now; return when waiting on the server or on capture."""
        if self._status_due:
            self._status_due = False
            await ws.send(encode_event(self._status().to_event()))
        if not state.waiting_on_server():  # the ack watchdog's clock starts now
            self._last_progress = asyncio.get_running_loop().time()
        for info in self.spool.encounters():
            enc = info.encounter_id
            p = state.progress(enc)
            if p.refused:
                continue
            if not p.announced:
                state.on_announced(enc)
                await ws.send(encode_event(EncounterStart(enc, info.started_at_us).to_event()))
            if not p.resumed:
                return  # the server's ack says where to resume
            consent = info.consent
            if consent and self._consent_sent.get(enc) != consent.get("state"):
                # before any more audio: a withdrawal must reach the server first
                self._consent_sent[enc] = str(consent.get("state"))
                await ws.send(encode_event(Consent(
                    enc, str(consent.get("state")), str(consent.get("method", "")),
                    str(consent.get("obtained_by", "")), int(consent.get("at_us", 0)),
                ).to_event()))
            while p.next_seq < info.next_seq:
                if not state.window_open():
                    return  # an ack will wake us
                budget = min(state.window_bytes - state.inflight_bytes, _READ_CAP)
                discards = self._discards
                records = self._read(enc, p.next_seq, budget)
                if not records:
                    p.refused = True  # cannot be delivered; do not hold up the others
                    break
                for record in records:
                    if state.get(enc) is not p or p.next_seq != record.seq \
                            or self._discards != discards:
                        return  # rewound, completed or withdrawn meanwhile; start over
                    state.on_sent(enc, record.seq, len(record.pcm))
                    frame = AudioFrame(enc, record.seq, record.captured_at_us, record.pcm)
                    await ws.send(frame.to_bytes())
                    self.counters.frames_sent += 1
                    self.counters.ack_latency.sent(enc, record.seq, time.monotonic())
            if p.refused:
                continue
            if not info.ended:
                return  # the live encounter is always the newest
            if not p.end_sent and p.next_seq > info.last_seq:
                p.end_sent = True
                end = EncounterEnd(enc, info.last_seq, info.ended_at_us)
                await ws.send(encode_event(end.to_event()))

    def _read(self, encounter_id: str, seq: int, budget: int) -> list[Record]:
        """Frames from ``seq`` on; empty (and logged) when the spool cannot give them."""
        reader = self._readers.get(encounter_id)
        if reader is None or reader.next_seq != seq:
            if reader is not None:
                reader.close()
            reader = self._readers[encounter_id] = self.spool.reader(encounter_id, seq)
        try:
            if reader.next_seq == seq and (records := reader.read(budget)):
                return records
            problem = f"frames from seq {seq} are no longer in the spool"
        except (SpoolError, OSError) as err:
            problem = str(err)
        log.error("uplink: encounter %s cannot be delivered: %s (the server wants them; "
                  "storage damage or a server restored from backup?); skipping it",
                  encounter_id, problem)
        self._drop_reader(encounter_id)
        return []

    def _drop_reader(self, encounter_id: str) -> None:
        reader = self._readers.pop(encounter_id, None)
        if reader is not None:
            reader.close()

    def _close_readers(self) -> None:
        for encounter_id in list(self._readers):
            self._drop_reader(encounter_id)

    # --------------------------------------------------------------- receiver

    async def _receiver(self, ws: ClientConnection, state: SendState) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                log.warning("uplink: ignoring a binary message from the server")
                continue
            try:
                body = parse_event(message)
            except ProtocolError as err:
                log.warning("uplink: ignoring a malformed event from the server: %s",
                            err.message)
                continue
            if isinstance(body, DiagnosticsRequest | ConfigChange):
                answer = self.requests.answer(body)
                if answer is not None:
                    await ws.send(encode_event(answer.to_event()))
                continue
            self._handle(body, state)
        raise describe_close(ws.close_code, ws.close_reason or "")

    def _handle(self, body: object, state: SendState) -> None:
        if isinstance(body, Ack):
            self._on_ack(body, state)
        elif isinstance(body, Pong):
            if body.id == self._ping_id:
                self._pong.set()
        elif isinstance(body, ErrorEvent):
            self._on_error(body, state)
        elif isinstance(body, Command):
            self.requests.command(body)
        elif isinstance(body, ConsentWithdrawn):
            # handled before the next event (an ack that would resume it): the spool's
            # copy is deleted before another frame of it can be read
            self.requests.withdrawn(body)
            self.audio_discarded(body.encounter_id)
        elif not isinstance(body, Ready):
            log.debug("uplink: ignoring %s from the server", type(body).__name__)

    def _on_ack(self, ack: Ack, state: SendState) -> None:
        enc = ack.encounter_id
        self.counters.ack_latency.acked(enc, ack.seq, time.monotonic())
        if state.on_ack(enc, ack.seq):
            self._last_progress = asyncio.get_running_loop().time()
            self._healthy = True
        self.counters.frames_acked += self.spool.ack(enc, ack.seq)
        if ack.complete:
            info = self.spool.get(enc)
            if info is not None and not info.ended:
                log.warning("uplink: server says encounter %s is complete but it is still "
                            "being captured; keeping it", enc)
            elif info is not None:
                self._drop_reader(enc)
                state.forget(enc)
                self.counters.ack_latency.forget(enc)
                self.spool.remove(enc)
                log.info("uplink: encounter %s delivered complete (%d frames)", enc,
                         info.next_seq)
                self._on_removed(enc)
        self._wake.set()

    def _on_error(self, err: ErrorEvent, state: SendState) -> None:
        enc = err.encounter_id
        where = f" (encounter {enc}, seq {err.seq})" if enc else ""
        p = state.get(enc) if enc else None
        if enc and err.code in (ErrorCode.OUT_OF_ORDER, ErrorCode.STORAGE_UNAVAILABLE):
            resend_from = state.on_error(enc, err.seq)
            if resend_from is not None:
                log.warning("uplink: server error %s%s; resending from seq %d",
                            err.code, where, resend_from)
                self._drop_reader(enc)
                self._wake.set()
        elif enc and p is not None and err.code == ErrorCode.UNKNOWN_ENCOUNTER:
            if p.resumed and not p.end_sent:
                log.warning("uplink: server forgot encounter %s; announcing it again", enc)
                state.forget(enc)
                self._drop_reader(enc)
            else:
                p.refused = True
                log.error("uplink: server refused encounter %s: %s; it stays in the spool "
                          "and is offered again on the next connection", enc, err.message)
            self._wake.set()
        else:
            log.warning("uplink: server error %s%s: %s", err.code, where, err.message)

    # -------------------------------------------------------------- liveness

    async def _keepalive(self, ws: ClientConnection, state: SendState) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()

        async def round_trip(ping_id: int) -> None:
            await ws.send(encode_event(Ping(ping_id).to_event()))
            await self._pong.wait()

        while True:
            await asyncio.sleep(s.ping_interval_s)
            self._ping_id += 1
            self._pong.clear()
            try:
                # A black-holed link blocks the send itself: bound both together.
                await asyncio.wait_for(round_trip(self._ping_id), s.pong_timeout_s)
            except TimeoutError:
                raise SessionEnded(f"no pong within {s.pong_timeout_s:g} s") from None
            if state.waiting_on_server() and \
                    loop.time() - self._last_progress > s.ack_timeout_s:
                raise SessionEnded(f"no answer from the server for {s.ack_timeout_s:g} s "
                                   "to what was sent")
