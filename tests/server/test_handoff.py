"""The handoff's feed on the real database: every stored frame reaches the stage in
order, the database is read when the ingest side says there is something new, and a
stage started after a restart replays the stored visit by itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from protocol import AudioFrame
from server.db import Database
from server.ingest.handoff import AudioChunk, EncounterInfo, Handoff
from server.ingest.store import AudioStore, DeviceIdentity
from tests.support import enrol_device

T0 = 1_700_000_000_000_000


class Counting(AudioStore):
    """The real store, counting the reads the feed makes."""

    reads = 0
    checks = 0

    def read_frames(self, encounter_id: str, from_seq: int, limit: int = 200) -> Any:
        self.reads += 1
        return super().read_frames(encounter_id, from_seq, limit)

    def encounter(self, encounter_id: str) -> Any:
        self.checks += 1
        return super().encounter(encounter_id)


class Collect:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.done = asyncio.Event()

    async def run(self, encounter: EncounterInfo, audio: AsyncIterator[AudioChunk]) -> None:
        async for chunk in audio:
            self.seqs.append(chunk.seq)
        self.done.set()


def frame(enc: str, seq: int) -> AudioFrame:
    return AudioFrame(enc, seq, T0 + seq * 100_000, bytes([seq % 251]) * 3200)


@pytest.fixture
def device(db: Database) -> DeviceIdentity:
    e = enrol_device(db)
    return DeviceIdentity(e.device_id, e.room_id)


async def test_live_frames_reach_the_stage_with_one_read_per_commit(
        db: Database, device: DeviceIdentity) -> None:
    store, stage, pool = Counting(db), Collect(), ThreadPoolExecutor(2)
    handoff = Handoff(store, stage, pool)
    enc = str(uuid.uuid4())
    try:
        store.open_encounter(device, enc, T0)
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await asyncio.sleep(0.1)  # the feed asked the database once: nothing yet
        for seq in range(20):
            handoff.audio_stored(store.store_frames(device, [frame(enc, seq)]).acks[enc])
            await asyncio.sleep(0.01)
        handoff.audio_stored(store.end_encounter(device, enc, 19, T0 + 2_000_000))
        await asyncio.wait_for(stage.done.wait(), 10)
        assert stage.seqs == list(range(20))
        assert store.reads <= 21 and store.checks == 1
    finally:
        await handoff.aclose()
        pool.shutdown()


async def test_a_stage_started_after_a_restart_replays_the_stored_visit(
        db: Database, device: DeviceIdentity) -> None:
    store, stage, pool = Counting(db), Collect(), ThreadPoolExecutor(2)
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, T0)
    store.store_frames(device, [frame(enc, s) for s in range(250)])  # more than one read
    store.end_encounter(device, enc, 249, T0 + 25_000_000)
    handoff = Handoff(store, stage, pool)  # nobody will say anything about this visit
    try:
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await asyncio.wait_for(stage.done.wait(), 10)
        assert stage.seqs == list(range(250))
    finally:
        await handoff.aclose()
        pool.shutdown()
