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
from server.pipeline.events import Stage
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


async def test_a_worker_feed_polls_for_audio_another_process_stores(
        db: Database, device: DeviceIdentity) -> None:
    """A worker's hand-off is never told what ingest stored (another process): its feed
    asks the database every ``poll_s`` and still gets every frame, in order, once."""
    store, stage, pool = Counting(db), Collect(), ThreadPoolExecutor(2)
    ingest = AudioStore(db)  # "the other process": nothing tells the worker's feed
    handoff = Handoff(store, stage, pool, poll_s=0.05)
    enc = str(uuid.uuid4())
    try:
        ingest.open_encounter(device, enc, T0)
        run = asyncio.create_task(handoff.run_claimed(
            EncounterInfo(enc, device.device_id, device.room_id, T0)))
        for seq in range(0, 20, 4):
            ingest.store_frames(device, [frame(enc, s) for s in range(seq, seq + 4)])
            await asyncio.sleep(0.08)
        ingest.end_encounter(device, enc, 19, T0 + 2_000_000)
        assert await asyncio.wait_for(run, 10) is True
        assert stage.seqs == list(range(20))
    finally:
        await handoff.aclose()
        pool.shutdown()


async def test_with_a_job_board_opening_a_visit_posts_it_instead_of_running_it(
        db: Database, device: DeviceIdentity) -> None:
    posted: list[tuple[str, str]] = []

    class Board:
        async def submit(self, kind: Stage, encounter_id: str) -> None:
            posted.append((kind.value, encounter_id))

        async def cancel(self, encounter_id: str) -> None:
            posted.append(("cancel", encounter_id))

        async def wait_stopped(self, encounter_id: str, within_s: float) -> bool:
            posted.append(("stopped", encounter_id))
            return True

    stage, pool = Collect(), ThreadPoolExecutor(2)
    handoff = Handoff(AudioStore(db), stage, pool, jobs=Board())
    enc = str(uuid.uuid4())
    try:
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await asyncio.sleep(0.05)
        assert not await handoff.discard(enc)  # nothing ran here, the job is cancelled
        assert posted == [("transcription", enc), ("transcription", enc), ("cancel", enc),
                          ("stopped", enc)]
        assert stage.seqs == []
    finally:
        await handoff.aclose()
        pool.shutdown()


async def test_with_a_bus_the_node_that_stored_the_audio_wakes_the_workers_feed(
        db: Database, device: DeviceIdentity) -> None:
    """Two nodes on one broker (Redis's semantics, in one process): the worker's feed
    polls only every 30 s, yet follows the visit as the ingest node stores it."""
    from server.bus import InProcessBus, LocalBroker

    class Board:
        async def submit(self, kind: Stage, encounter_id: str) -> None:
            pass

        async def cancel(self, encounter_id: str) -> None:
            pass

        async def wait_stopped(self, encounter_id: str, within_s: float) -> bool:
            return True

    broker = LocalBroker()
    ingest_bus, worker_bus = InProcessBus("web", broker), InProcessBus("worker", broker)
    await ingest_bus.start()
    await worker_bus.start()
    store, stage, pool = AudioStore(db), Collect(), ThreadPoolExecutor(2)
    ingest = Handoff(store, Collect(), pool, jobs=Board(), bus=ingest_bus)
    worker = Handoff(Counting(db), stage, pool, jobs=Board(), poll_s=30.0, bus=worker_bus)
    enc = str(uuid.uuid4())
    try:
        store.open_encounter(device, enc, T0)
        run = asyncio.create_task(worker.run_claimed(
            EncounterInfo(enc, device.device_id, device.room_id, T0)))
        await asyncio.sleep(0.1)
        for seq in range(10):
            ingest.audio_stored(store.store_frames(device, [frame(enc, seq)]).acks[enc])
            await asyncio.sleep(0.01)
        ingest.audio_stored(store.end_encounter(device, enc, 9, T0 + 1_000_000))
        assert await asyncio.wait_for(run, 5) is True
        assert stage.seqs == list(range(10))
    finally:
        await ingest.aclose()
        await worker.aclose()
        await ingest_bus.aclose()
        await worker_bus.aclose()
        pool.shutdown()
