"""Consent withdrawn on the server reaches the room's device: the visit's audio still in
the device's spool is deleted there and never uploaded (``consent-withdrawn``).

The real server (a thread on a loopback port) and the real agent (in this event loop)
with a microphone the test feeds frame by frame. Every frame the server receives is
recorded (a spy on the audio store), so "never uploaded" is checked on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from device.agent import Agent
from device.audio import AudioChunk, StreamPosition
from device.room import RoomState
from device.spool import Spool
from device.spoolreader import PLACEHOLDER_PCM
from protocol import AudioFrame, ConsentWithdrawn, ProtocolError, encode_event, parse_event
from server.db import Database
from server.ingest.store import AudioStore, DeviceIdentity, StoreResult
from server.models import AudioFrameRow, Encounter
from server.review.models import AuditEvent
from server.settings import Settings
from tests.device.fakes import eventually, make_settings, pcm_for
from tests.review.world import UserClient, World
from tests.support import Enrolled, ServerThread, enrol_device

WAIT = 20.0


class GatedMic:
    """A microphone that yields a frame only when the test lets it (:meth:`release`)."""

    def __init__(self) -> None:
        self._allowed = asyncio.Semaphore(0)

    def describe(self) -> str:
        return "fake:gated"

    def prepare(self) -> None:
        pass

    finite = False

    def release(self, frames: int) -> None:
        for _ in range(frames):
            self._allowed.release()

    async def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        seq = position.next_seq
        while True:
            await self._allowed.acquire()
            yield AudioChunk(pcm_for(seq), position.started_at_us + seq * 100_000)
            seq += 1


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AudioFrame]]:
    """Every audio frame any server of this test is handed, in order."""
    frames: list[AudioFrame] = []
    real = AudioStore.store_frames

    def spy(self: AudioStore, device: DeviceIdentity,
            batch: Sequence[AudioFrame]) -> StoreResult:
        frames.extend(batch)
        return real(self, device, batch)

    monkeypatch.setattr(AudioStore, "store_frames", spy)
    yield frames


def _agent(tmp_path: Path, url: str, dev: Enrolled, mic: GatedMic) -> tuple[Agent, Spool]:
    settings = make_settings(tmp_path, url, device_id=dev.device_id, token=dev.token,
                             room_id=dev.room_id)
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    return Agent(settings, spool, mic, capture_retry_s=0.05), spool


def _stored(db: Database, enc: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AudioFrameRow)
                        .where(AudioFrameRow.encounter_id == enc)) or 0


def _next_seq(db: Database, enc: str) -> int:
    with db.session() as s:
        row = s.get(Encounter, enc)
        return -1 if row is None else row.next_seq


async def _withdraw(server: ServerThread, enc: str) -> dict[str, object]:
    def post() -> dict[str, object]:
        doc = UserClient(server.http_url, "dr_north")
        try:
            r = doc.post(f"/api/v1/encounters/{enc}/consent/withdraw",
                         json={"reason": "patient asked"})
            assert r.status_code == 200, r.text
            return r.json()
        finally:
            doc.close()

    return await asyncio.to_thread(post)


def test_consent_withdrawn_round_trips_and_is_checked() -> None:
    enc = "5b0e8c1e-3c1a-4f5e-9a55-0f6f1e0b7d21"
    body = ConsentWithdrawn(enc, "Dr North", 1_700_000_000_000_000)
    assert parse_event(encode_event(body.to_event())) == body
    with pytest.raises(ProtocolError, match="UUID"):
        parse_event('{"type": "consent-withdrawn", "data": {"encounter_id": "x"}}')


async def test_withdrawn_while_the_device_is_offline_its_backlog_is_never_uploaded(
        tmp_path: Path, settings: Settings, db: Database, world: World,
        received: list[AudioFrame]) -> None:
    dev = enrol_device(db, "exam-1")
    first = ServerThread(settings).start()
    mic = GatedMic()
    agent, spool = _agent(tmp_path, first.ws_url, dev, mic)
    task = asyncio.create_task(agent.run())
    later: ServerThread | None = None
    try:
        enc = agent.command("start")["encounter_id"]
        mic.release(5)
        await eventually(lambda: _next_seq(db, enc) == 5, WAIT)
        await asyncio.to_thread(first.stop)  # the device is offline from here
        mic.release(20)
        await eventually(lambda: agent.counters.frames_spooled == 25, WAIT)
        real_audio_before = len(received)

        elsewhere = await asyncio.to_thread(ServerThread(settings).start)  # another node
        try:
            body = await _withdraw(elsewhere, enc)
        finally:
            await asyncio.to_thread(elsewhere.stop)
        assert (body["consent"], body["device_told"]) == ("withdrawn", False)
        assert agent.room.state is RoomState.LISTENING  # the device does not know yet

        later = await asyncio.to_thread(ServerThread(settings, port=first.port).start)
        await eventually(lambda: spool.get(enc) is None, WAIT)  # told, emptied, delivered
        assert agent.room.state is RoomState.IDLE  # capture stopped by the withdrawal
        after = [f for f in received[real_audio_before:] if f.encounter_id == enc]
        assert [f.seq for f in after] == list(range(5, 25))
        assert {f.pcm for f in after} == {PLACEHOLDER_PCM}  # not a byte of the backlog
        assert _stored(db, enc) == 0
        with db.session() as s:
            assert s.get(Encounter, enc).consent_state == "withdrawn"
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, WAIT)
        spool.close()
        if later is not None:
            await asyncio.to_thread(later.stop)


async def test_withdrawn_while_connected_the_device_deletes_and_says_so(
        tmp_path: Path, db: Database, world: World, server: ServerThread,
        received: list[AudioFrame]) -> None:
    dev = enrol_device(db, "exam-1")
    mic = GatedMic()
    agent, spool = _agent(tmp_path, server.ws_url, dev, mic)
    task = asyncio.create_task(agent.run())
    try:
        enc = agent.command("start")["encounter_id"]
        mic.release(5)
        await eventually(lambda: _next_seq(db, enc) == 5, WAIT)
        body = await _withdraw(server, enc)
        assert (body["consent"], body["device_told"]) == ("withdrawn", True)
        await eventually(lambda: spool.get(enc) is None, WAIT)
        assert agent.room.state is RoomState.IDLE
        mic.release(5)  # capture has stopped: nothing more of this visit
        await asyncio.sleep(0.2)
        assert agent.counters.frames_spooled == 5
        assert all(f.pcm == PLACEHOLDER_PCM for f in received[5:])
        assert _stored(db, enc) == 0
        with db.session() as s:  # the device recorded the withdrawal and echoed it
            actors = set(s.scalars(select(AuditEvent.actor).where(
                AuditEvent.action == "consent_withdrawn", AuditEvent.encounter_id == enc)))
        assert actors == {"dr_north", "Dr North"}
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, WAIT)
        spool.close()
