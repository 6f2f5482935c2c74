"""One device connection, independent of the websocket library.

The route turns the socket into a :class:`DeviceTransport`; this class runs the
protocol: hello → authenticate → ready, then events and audio frames. Frames
and encounter events go through one ordered queue to a writer task that
stores them in batches (one transaction each) and acks after commit. Pings are
answered at once. Reads pause when the queue is full (back-pressure on TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from protocol import (
    SUPPORTED_FORMAT,
    Ack,
    AudioFrame,
    CloseCode,
    ConfigResult,
    Consent,
    ConsentWithdrawn,
    Diagnostics,
    EncounterEnd,
    EncounterStart,
    ErrorCode,
    ErrorEvent,
    Event,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Ready,
    Status,
    encode_event,
    parse_event,
)
from server import metrics
from server.bus.devices import DEVICES_CHANNEL, ConnectedDevices
from server.fleet.store import record_status
from server.ingest.handoff import EncounterInfo, Handoff
from server.ingest.store import AckState, AudioStore, DeviceIdentity, EncounterConflict
from server.settings import Settings

__all__ = ["DEVICES_CHANNEL", "ConnectedDevices", "DeviceSession", "DeviceTransport",
           "TransportClosed"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_BATCH = 64


class TransportClosed(Exception):
    """The peer went away."""


class DeviceTransport(Protocol):
    async def receive(self) -> str | bytes:
        """The next message; raises TransportClosed when the peer has gone."""
        ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class _StorageDown(Exception):
    pass


class DeviceSession:
    def __init__(self, transport: DeviceTransport, *, settings: Settings, store: AudioStore,
                 handoff: Handoff, devices: ConnectedDevices,
                 run_db: Callable[..., Awaitable[object]], server_version: str,
                 peer: str = "") -> None:
        self.transport = transport
        #: the device's address as this server sees it (the fleet page shows it)
        self.peer = peer
        self.settings = settings
        self.store = store
        self.handoff = handoff
        self.devices = devices
        self._run_db = run_db
        self.server_version = server_version
        self.device: DeviceIdentity | None = None
        #: Tells this connection from the device's others (on any node); set on attach.
        self.session_id = secrets.token_hex(8)
        self.attached_at = 0.0
        #: The device's latest ``status`` (for /metrics); None before the first.
        self.last_status: Status | None = None
        self._queue: asyncio.Queue[
            AudioFrame | EncounterStart | EncounterEnd | Status | Consent | None] = (
            asyncio.Queue(maxsize=settings.ingest_queue_frames))
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await self._run_db(fn, *args)  # type: ignore[return-value]

    async def send(self, event: Event) -> None:
        async with self._send_lock:
            await self.transport.send_text(encode_event(event))

    async def close(self, code: CloseCode, reason: str) -> None:
        if not self._closed:
            self._closed = True
            await self.transport.close(int(code), reason[:120])

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        try:
            if not await self._handshake():
                return
            writer = asyncio.create_task(self._writer(), name="ingest-writer")
            try:
                await self._reader(writer)
            finally:
                if not writer.done():
                    await self._queue.put(None)
                    try:
                        await asyncio.wait_for(writer, timeout=30)
                    except (TimeoutError, _StorageDown):
                        writer.cancel()
        except TransportClosed:
            pass
        finally:
            self.devices.detach(self)

    async def _handshake(self) -> bool:
        try:
            first = await asyncio.wait_for(self.transport.receive(), self.settings.hello_timeout_s)
        except TimeoutError:
            await self.close(CloseCode.HELLO_TIMEOUT, "no hello")
            return False
        if isinstance(first, bytes):
            await self.close(CloseCode.PROTOCOL, "first message must be a hello event")
            return False
        try:
            hello = parse_event(first)
        except ProtocolError as err:
            await self.close(CloseCode.PROTOCOL, f"bad hello: {err.message}")
            return False
        if not isinstance(hello, Hello):
            await self.close(CloseCode.PROTOCOL, "first message must be a hello event")
            return False
        try:
            device = await self.run_db(self.store.authenticate, hello.device_id, hello.token,
                                       hello.agent_version)
        except SQLAlchemyError:
            log.exception("database unavailable during device hello")
            await self.close(CloseCode.SERVER_ERROR, "storage unavailable")
            return False
        if device is None:
            log.warning("device %r: token rejected", hello.device_id[:64])
            await self.close(CloseCode.UNAUTHORIZED, "unknown device or wrong token")
            return False
        try:
            fmt = hello.audio_format()
        except ProtocolError as err:
            await self.close(CloseCode.UNSUPPORTED_FORMAT, err.message)
            return False
        if fmt != SUPPORTED_FORMAT:
            await self.close(
                CloseCode.UNSUPPORTED_FORMAT,
                f"audio must be {SUPPORTED_FORMAT.rate} Hz, {SUPPORTED_FORMAT.channels} ch, "
                f"{SUPPORTED_FORMAT.encoding}",
            )
            return False
        self.device = device
        old = self.devices.attach(self)
        if old is not None:
            await old.close(CloseCode.REPLACED, "device connected again")
        await self.send(Ready(self.server_version, self.settings.max_audio_payload,
                              self.settings.ping_interval_s).to_event())
        log.info("device %s (room %s) connected", device.device_id, device.room_id)
        return True

    async def _reader(self, writer: asyncio.Task[None]) -> None:
        while not writer.done():
            receive = asyncio.ensure_future(self.transport.receive())
            done, _ = await asyncio.wait({receive, writer}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                return
            message = receive.result()
            try:
                if isinstance(message, bytes):
                    frame = AudioFrame.from_bytes(message,
                                                  max_payload=self.settings.max_audio_payload)
                    await self._queue.put(frame)
                    continue
                event = parse_event(message)
            except ProtocolError as err:
                await self.send(ErrorEvent(err.code, err.message).to_event())
                continue
            if isinstance(event, Ping):
                await self.send(Pong(event.id).to_event())
            elif isinstance(event, EncounterStart | EncounterEnd | Status | Consent):
                await self._queue.put(event)
            elif isinstance(event, Diagnostics | ConfigResult):  # answers to admin requests
                assert self.device is not None
                self.devices.answered(self.device.device_id, event.request,
                                      event.to_event().data)
            else:
                await self.send(ErrorEvent(ErrorCode.MALFORMED_EVENT,
                                           f"{event.TYPE} is not sent by devices").to_event())

    # ------------------------------------------------------------------ writer

    async def _writer(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                items = [item]
                while len(items) < _BATCH and not self._queue.empty():
                    items.append(self._queue.get_nowait())
                batch: list[AudioFrame] = []
                for it in items:
                    if isinstance(it, AudioFrame):
                        batch.append(it)
                        continue
                    if batch:
                        await self._store(batch)
                        batch = []
                    if it is None:
                        return
                    await self._handle_event(it)
                if batch:
                    await self._store(batch)
        except _StorageDown:
            err = ErrorEvent(ErrorCode.STORAGE_UNAVAILABLE,
                             "audio could not be stored; reconnect and resend")
            await self.send(err.to_event())
            await self.close(CloseCode.SERVER_ERROR, "storage unavailable")
            raise
        except (TransportClosed, asyncio.CancelledError):
            raise
        except Exception:
            # A bug, not bad input (the protocol range-checks every number): never leave
            # the device without a close code; it reconnects and resends from its ack.
            log.exception("device writer failed")
            with contextlib.suppress(TransportClosed):
                await self.send(ErrorEvent(ErrorCode.STORAGE_UNAVAILABLE,
                                           "audio could not be stored; reconnect and resend"
                                           ).to_event())
            await self.close(CloseCode.SERVER_ERROR, "server error")

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await self.run_db(fn, *args)
        except SQLAlchemyError as err:
            log.exception("database error while storing device audio")
            raise _StorageDown() from err

    async def _send_ack(self, ack: AckState) -> None:
        await self.send(Ack(ack.encounter_id, ack.seq, ack.complete).to_event())

    async def _handle_event(self, event: EncounterStart | EncounterEnd | Status | Consent,
                            ) -> None:
        device = self.device
        assert device is not None
        if isinstance(event, Status):
            self.last_status = event
            await self._db(self.store.record_device_state, device.device_id, event.state)
            await self._db(record_status, self.store.db, device.device_id,
                           event.to_event().data, datetime.now(UTC), self.peer, "",
                           self.settings.fleet_history_h)
            return
        if isinstance(event, Consent):
            await self._consent(event)
            return
        try:
            if isinstance(event, EncounterStart):
                ack = await self._db(self.store.open_encounter, device, event.encounter_id,
                                     event.started_at_us)
                self.handoff.encounter_opened(EncounterInfo(
                    event.encounter_id, device.device_id, device.room_id, event.started_at_us))
            else:
                ack = await self._db(self.store.end_encounter, device, event.encounter_id,
                                     event.last_seq, event.ended_at_us)
                self.handoff.audio_stored(ack)
        except EncounterConflict as err:
            await self.send(ErrorEvent(ErrorCode.UNKNOWN_ENCOUNTER, str(err),
                                       encounter_id=event.encounter_id).to_event())
            return
        if ack.withdrawn and isinstance(event, EncounterStart):
            # before the ack that lets it resume: not one more frame of real audio
            await self.send(ConsentWithdrawn(event.encounter_id).to_event())
        await self._send_ack(ack)

    async def _consent(self, event: Consent) -> None:
        """Record the room's consent event (server/privacy); a withdrawal first stops the
        visit's transcription, then deletes what was stored."""
        from server.privacy.consent import apply_device_consent

        device = self.device
        assert device is not None
        if event.state == "withdrawn":
            await self.handoff.discard(event.encounter_id)
        try:
            await self._db(apply_device_consent, self.store.db, device.device_id, event)
        except LookupError as err:
            await self.send(ErrorEvent(ErrorCode.UNKNOWN_ENCOUNTER, str(err),
                                       encounter_id=event.encounter_id).to_event())
            return
        except ValueError as err:
            await self.send(ErrorEvent(ErrorCode.MALFORMED_EVENT, str(err),
                                       encounter_id=event.encounter_id).to_event())
            return
        self.handoff.consent_changed(event.encounter_id)

    async def _store(self, frames: list[AudioFrame]) -> None:
        device = self.device
        assert device is not None
        result = await self._db(self.store.store_frames, device, frames)
        metrics.audio_ingested(device.room_id, result.stored_bytes)
        for eid, seq in result.unknown[:1]:
            await self.send(ErrorEvent(ErrorCode.UNKNOWN_ENCOUNTER,
                                       "audio for an encounter this device has not started",
                                       encounter_id=eid, seq=seq).to_event())
        for eid, resend_from in result.out_of_order:
            await self.send(ErrorEvent(ErrorCode.OUT_OF_ORDER,
                                       f"expected seq {resend_from}; resend from there",
                                       encounter_id=eid, seq=resend_from).to_event())
        for eid, seq in result.beyond_end[:1]:
            await self.send(ErrorEvent(ErrorCode.ENCOUNTER_CLOSED,
                                       "audio after the encounter's last_seq",
                                       encounter_id=eid, seq=seq).to_event())
        for ack in result.acks.values():
            if result.stored:
                self.handoff.audio_stored(ack)
            await self._send_ack(ack)
