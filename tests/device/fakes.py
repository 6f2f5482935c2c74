"""Fakes at the device agent's seams: a minimal server, a fast source, settings, WAVs.

:class:`FakeServer` speaks the server side of ``protocol`` on a real
``websockets`` server bound to 127.0.0.1 port 0, and can misbehave on cue:
drop the connection mid-stream (after storing a frame, before acking it),
lose a frame with a ``storage-unavailable`` error, stop answering pings, or
close every connection with a 44xx code.
"""

from __future__ import annotations

import asyncio
import math
import struct
import wave
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from device.audio import AudioChunk, StreamPosition
from device.settings import AgentSettings
from protocol import (
    MAX_AUDIO_PAYLOAD,
    Ack,
    AudioFrame,
    CloseCode,
    Command,
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

TOKEN = "rsd_test-token"
DEVICE_ID = "dev-test-1"
WAIT = 10.0  # the bound on every wait in these tests


def pcm_for(seq: int, nbytes: int = 3200) -> bytes:
    """Deterministic, seq-specific audio, so a swapped or doubled frame shows."""
    return struct.pack("<H", seq & 0xFFFF) * (nbytes // 2)


@dataclass
class Encounter:
    started_at_us: int
    frames: list[AudioFrame] = field(default_factory=list)
    last_seq: int | None = None

    @property
    def next_seq(self) -> int:
        return len(self.frames)

    @property
    def complete(self) -> bool:
        return self.last_seq is not None and self.next_seq > self.last_seq

    def audio(self) -> bytes:
        return b"".join(f.pcm for f in self.frames)


class FakeServer:
    """The server side of the wire protocol, stored in memory."""

    def __init__(self) -> None:
        self.encounters: dict[str, Encounter] = {}
        self.events: list[Any] = []
        self.statuses: list[Status] = []
        self.duplicates = 0
        self.frames_received = 0
        self.conflicts: list[str] = []
        self.connections = 0
        self.hellos: list[Hello] = []
        # misbehaviour, set by tests
        self.drop_after_frames: int | None = None  # one-shot: abort after storing N frames
        self.lose: set[tuple[str, int]] = set()  # one-shot storage failures, per (enc, seq)
        self.close_code: int | None = None
        self.answer_pings = True
        self.commands_after_ready: list[str] = []
        self.hold_acks = False  # store frames but never ack them
        self.ping_interval_s = 10.0
        self._stored_since_drop = 0
        self._changed = asyncio.Event()
        self._server: Any = None
        self._live: set[ServerConnection] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/device"

    async def start(self) -> None:
        self._server = await serve(self._handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        """Wait (bounded) until ``predicate`` holds; re-checked on every server event."""
        async def poll() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(poll(), within)

    def audio(self, encounter_id: str) -> bytes:
        return self.encounters[encounter_id].audio()

    def complete(self, encounter_id: str | None = None) -> bool:
        encs = [self.encounters.get(encounter_id)] if encounter_id else self.encounters.values()
        return bool(encs) and all(e is not None and e.complete for e in encs)

    def drop_all(self) -> None:
        for ws in list(self._live):
            ws.transport.abort()

    def _notify(self) -> None:
        self._changed.set()

    async def _send(self, ws: ServerConnection, body: Any) -> None:
        await ws.send(encode_event(body.to_event()))

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._live.add(ws)
        self._notify()
        try:
            await self._session(ws)
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            self._notify()

    async def _session(self, ws: ServerConnection) -> None:
        hello = parse_event(await ws.recv())
        if self.close_code is not None:
            await ws.close(self.close_code, "fake refusal")
            return
        if not isinstance(hello, Hello) or hello.token != TOKEN:
            await ws.close(CloseCode.UNAUTHORIZED, "unknown device or wrong token")
            return
        self.hellos.append(hello)
        await self._send(ws, Ready("fake-1", MAX_AUDIO_PAYLOAD, self.ping_interval_s))
        for action in self.commands_after_ready:
            await self._send(ws, Command(action))
        async for message in ws:
            if isinstance(message, bytes):
                if not await self._frame(ws, AudioFrame.from_bytes(message)):
                    return
                continue
            try:
                body = parse_event(message)
            except ProtocolError as err:
                await self._send(ws, ErrorEvent(err.code, err.message))
                continue
            self.events.append(body)
            if isinstance(body, EncounterStart):
                enc = self.encounters.setdefault(body.encounter_id,
                                                 Encounter(body.started_at_us))
                await self._ack(ws, body.encounter_id, enc)
            elif isinstance(body, EncounterEnd):
                enc = self.encounters[body.encounter_id]
                if enc.last_seq not in (None, body.last_seq):
                    self.conflicts.append(f"end moved {enc.last_seq} -> {body.last_seq}")
                enc.last_seq = body.last_seq
                await self._ack(ws, body.encounter_id, enc)
            elif isinstance(body, Ping):
                if self.answer_pings:
                    await self._send(ws, Pong(body.id))
            elif isinstance(body, Status):
                self.statuses.append(body)
            self._notify()

    async def _ack(self, ws: ServerConnection, encounter_id: str, enc: Encounter) -> None:
        await self._send(ws, Ack(encounter_id, enc.next_seq - 1, enc.complete))

    async def _frame(self, ws: ServerConnection, frame: AudioFrame) -> bool:
        enc = self.encounters.get(frame.encounter_id)
        if enc is None:
            await self._send(ws, ErrorEvent(ErrorCode.UNKNOWN_ENCOUNTER, "not started",
                                            frame.encounter_id, frame.seq))
            return True
        self.frames_received += 1
        if frame.seq < enc.next_seq:
            self.duplicates += 1
            if enc.frames[frame.seq] != frame:
                self.conflicts.append(f"seq {frame.seq} resent with other content")
        elif frame.seq > enc.next_seq:
            await self._send(ws, ErrorEvent(ErrorCode.OUT_OF_ORDER, "resend",
                                            frame.encounter_id, enc.next_seq))
            return True
        elif (frame.encounter_id, frame.seq) in self.lose:
            self.lose.discard((frame.encounter_id, frame.seq))
            await self._send(ws, ErrorEvent(ErrorCode.STORAGE_UNAVAILABLE, "disk hiccup",
                                            frame.encounter_id, frame.seq))
            return True
        else:
            enc.frames.append(frame)
            self._notify()
            if self.drop_after_frames is not None:
                self._stored_since_drop += 1
                if self._stored_since_drop >= self.drop_after_frames:
                    self.drop_after_frames = None
                    self._stored_since_drop = 0
                    ws.transport.abort()  # stored, never acked: the device must resend
                    return False
        if not self.hold_acks:
            await self._ack(ws, frame.encounter_id, enc)
        return True


async def eventually(predicate: Callable[[], bool], within: float = WAIT) -> None:
    """Poll device-side state (bounded): for conditions no event announces."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"condition not met within {within} s")


def make_settings(tmp_path: Path, url: str, **overrides: Any) -> AgentSettings:
    token_file = tmp_path / "device.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    values: dict[str, Any] = dict(
        server_url=url, device_id=DEVICE_ID, token_file=token_file, token=TOKEN,
        room_id="exam-test", allow_insecure=True, spool_dir=tmp_path / "spool",
        control_socket=tmp_path / "ctl.sock", backoff_base_s=0.02, backoff_cap_s=0.1,
        open_timeout_s=2.0,
    )
    values.update(overrides)
    return AgentSettings(**values)


class FakeMic:
    """A source that yields ``frames`` frames as fast as the loop takes them.

    ``finite`` makes it behave like a file (the visit ends with it); otherwise
    it then idles until cancelled, like a microphone in a quiet room.
    """

    def __init__(self, frames: int, *, finite: bool = True, frame_bytes: int = 3200,
                 name: str = "fake:mic") -> None:
        self.frames = frames
        self.finite = finite
        self.frame_bytes = frame_bytes
        self.name = name
        self.started_at: list[int] = []

    def describe(self) -> str:
        return self.name

    def prepare(self) -> None:
        pass

    async def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        self.started_at.append(position.next_seq)
        for seq in range(position.next_seq, self.frames):
            await asyncio.sleep(0)
            yield AudioChunk(pcm_for(seq, self.frame_bytes),
                             position.started_at_us + seq * 100_000)
        if not self.finite:
            await asyncio.Event().wait()


def write_wav(path: Path, seconds: float, *, rate: int = 16000, channels: int = 1,
              width: int = 2) -> bytes:
    """A tone with a per-sample ramp (no two frames equal); returns the PCM written."""
    n = int(seconds * rate)
    samples = bytearray()
    for i in range(n):
        value = int(8000 * math.sin(i * 0.05)) + (i % 997)
        for _c in range(channels):
            samples += value.to_bytes(2, "little", signed=True)[:width] if width == 2 \
                else bytes([(value >> 8) & 0xFF])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(samples))
    return bytes(samples)
