"""DeviceSession without a socket: a scripted transport, the real store, snapshots of events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

from protocol import AudioFrame, EncounterEnd, EncounterStart, Hello, Ping, Status, encode_event
from server.db import Database
from server.ingest.handoff import AudioChunk, EncounterInfo, Handoff
from server.ingest.session import ConnectedDevices, DeviceSession, TransportClosed
from server.ingest.store import AudioStore
from server.settings import Settings
from tests.support import enrol_device

T = TypeVar("T")
T0 = 1_700_000_000_000_000


class ScriptedTransport:
    """Feeds the session a fixed list of messages, records what it sends."""

    def __init__(self, script: list[str | bytes]) -> None:
        self.incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        for message in script:
            self.incoming.put_nowait(message)
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.done = asyncio.Event()

    async def receive(self) -> str | bytes:
        if self.incoming.empty():
            self.done.set()
        message = await self.incoming.get()
        if message is None:
            raise TransportClosed()
        return message

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.incoming.put_nowait(None)


class RecordingStage:
    def __init__(self) -> None:
        self.chunks: list[AudioChunk] = []
        self.finished = asyncio.Event()

    async def run(self, encounter: EncounterInfo, audio: Any) -> None:
        async for chunk in audio:
            self.chunks.append(chunk)
        self.finished.set()


def event(body: Any) -> str:
    return encode_event(body.to_event())


async def run_session(settings: Settings, store: AudioStore, transport: ScriptedTransport,
                      stage: RecordingStage | None = None) -> None:
    executor = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()

    async def run_db(fn: Callable[..., T], *args: object) -> T:
        return await loop.run_in_executor(executor, fn, *args)

    handoff = Handoff(store, stage or RecordingStage(), executor)
    session = DeviceSession(transport, settings=settings, store=store, handoff=handoff,
                            devices=ConnectedDevices(), run_db=run_db, server_version="t")
    task = asyncio.create_task(session.run())
    await asyncio.wait_for(transport.done.wait(), 10)
    if stage is not None:
        await asyncio.wait_for(stage.finished.wait(), 10)
    transport.incoming.put_nowait(None)
    await asyncio.wait_for(task, 10)
    await handoff.aclose()
    executor.shutdown()


def script_for(device_id: str, token: str, enc: str) -> list[str | bytes]:
    frames = [AudioFrame(enc, s, T0 + s * 100_000, bytes([s, 0]) * 1600).to_bytes()
              for s in range(3)]
    return [event(Hello(device_id, token, "exam-1", "t")), event(EncounterStart(enc, T0)),
            *frames, frames[1], event(Ping(3)), event(EncounterEnd(enc, 2, T0 + 300_000)),
            event(Status("idle"))]


async def test_event_snapshot_and_handoff(settings: Settings, db: Database) -> None:
    dev = enrol_device(db)
    enc = str(uuid.uuid4())
    transport = ScriptedTransport(script_for(dev.device_id, dev.token, enc))
    stage = RecordingStage()
    await run_session(settings, AudioStore(db), transport, stage)
    # Pong overtakes queued acks; acks arrive in order after each commit.
    kinds = [(e["type"], e["data"].get("seq"), e["data"].get("complete")) for e in transport.sent]
    assert kinds[0] == ("ready", None, None)
    acks = [k for k in kinds if k[0] == "ack"]
    assert acks[0] == ("ack", -1, False)
    assert acks[-1] == ("ack", 2, True)
    assert [a[1] for a in acks] == sorted(a[1] for a in acks)
    assert ("pong", None, None) in kinds
    assert not [k for k in kinds if k[0] == "error"]
    assert [c.seq for c in stage.chunks] == [0, 1, 2]
    assert transport.closed is None


class DownStore(AudioStore):
    """The database goes away after the device has authenticated."""

    def store_frames(self, device: Any, frames: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("connection refused"))


async def test_database_down_reports_error_and_acks_nothing(settings: Settings,
                                                            db: Database) -> None:
    dev = enrol_device(db)
    enc = str(uuid.uuid4())
    transport = ScriptedTransport(script_for(dev.device_id, dev.token, enc)[:3])
    await run_session(settings, DownStore(db), transport)
    types = [(e["type"], e["data"].get("code")) for e in transport.sent]
    assert types == [("ready", None), ("ack", None), ("error", "storage-unavailable")]
    assert transport.sent[1]["data"]["seq"] == -1  # only the encounter-start was acked
    assert transport.closed is not None and transport.closed[0] == 4500
