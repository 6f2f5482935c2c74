"""The durable queue of stage jobs on the real databases: SQLite (always) and PostgreSQL
(``ROOMSCRIBE_TEST_DATABASE_URL``; its claims use ``FOR UPDATE SKIP LOCKED``). Times are
passed in: nothing sleeps."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.db import Database
from server.ingest.store import AudioStore, DeviceIdentity
from server.migrate import upgrade
from server.pipeline.events import Stage
from server.work.lease import JobState, Lease
from server.work.queue import ClaimedJob, WorkQueue
from server.work.runner import RunnerLimits, StageRunner
from tests.support import TEST_DATABASE_URL, enrol_device, reset_database

TTL = 10.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("set ROOMSCRIBE_TEST_DATABASE_URL for the PostgreSQL queue")
        reset_database(TEST_DATABASE_URL)
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    db = Database(url)
    upgrade(db)
    yield db
    db.dispose()


def visits(db: Database, n: int) -> list[str]:
    dev = enrol_device(db)
    store = AudioStore(db)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for eid in ids:
        store.open_encounter(DeviceIdentity(dev.device_id, dev.room_id), eid, 0)
    return ids


def test_oldest_first_once_each_and_taken_over_after_a_lapse(database: Database) -> None:
    q = WorkQueue(database)
    a, b = visits(database, 2)
    assert q.enqueue("transcription", a) and q.enqueue("transcription", b)
    assert not q.enqueue("transcription", a)  # every node may post it: one job
    assert q.enqueue("drafting", a)  # another stage's job for the same visit

    first = q.claim(["transcription"], "w1", now=100.0, ttl=TTL)
    assert first is not None and (first.encounter_id, first.attempts) == (a, 1)
    second = q.claim(["transcription"], "w2", now=100.0, ttl=TTL)
    assert second is not None and second.encounter_id == b
    assert q.claim(["transcription"], "w3", now=105.0, ttl=TTL) is None  # all held

    assert q.renew(first.id, "w1", now=105.0, ttl=TTL) == 115.0
    # w2 dies: its lease lapses at 110 and w3 takes the visit, one attempt more
    taken = q.claim(["transcription"], "w3", now=111.0, ttl=TTL)
    assert taken is not None and (taken.encounter_id, taken.attempts) == (b, 2)
    assert q.renew(second.id, "w2", now=111.0, ttl=TTL) is None  # the old holder stops
    assert not q.finish(second.id, "w2") and not q.fail(second.id, "w2", "late")
    assert q.finish(taken.id, "w3") and q.finish(first.id, "w1")
    assert q.get("transcription", b) is not None
    assert q.get("transcription", b).state is JobState.DONE  # type: ignore[union-attr]
    assert q.claim(["transcription"], "w4", now=1e9, ttl=TTL) is None
    assert q.counts() == {"transcription": {"done": 2}, "drafting": {"queued": 1}}


def test_release_cancel_and_giving_up(database: Database) -> None:
    q = WorkQueue(database, max_attempts=2)
    a, b, c = visits(database, 3)
    for eid in (a, b, c):
        q.enqueue("transcription", eid)
    held = q.claim(["transcription"], "w1", now=0.0, ttl=TTL)
    assert held is not None and held.encounter_id == a
    assert q.release(held.id, "w1")  # shutting down: another takes it at once
    again = q.claim(["transcription"], "w2", now=0.0, ttl=TTL)
    assert again is not None and (again.encounter_id, again.attempts) == (a, 1)

    assert q.cancel(b) == 1  # consent withdrawn before anyone took it
    nxt = q.claim(["transcription"], "w2", now=0.0, ttl=TTL)
    assert nxt is not None and nxt.encounter_id == c
    assert q.cancel(c) == 1  # withdrawn while held: the holder's renewal fails
    assert q.renew(nxt.id, "w2", now=1.0, ttl=TTL) is None
    assert q.holders(c, now=1.0) == 1  # until it says it stopped ...
    assert not q.stopped(nxt.id, "w1") and q.stopped(nxt.id, "w2")
    assert q.holders(c, now=1.0) == 0
    assert q.holders(b, now=1.0) == 0  # never held

    # a visit whose every worker dies is given up after max_attempts
    assert q.claim(["transcription"], "w3", now=10.0, ttl=TTL) is not None  # attempt 2
    assert q.claim(["transcription"], "w4", now=20.0, ttl=TTL) is None
    failed = q.get("transcription", a)
    assert failed is not None and failed.state is JobState.FAILED


def test_workers_claiming_at_once_take_each_job_exactly_once(database: Database) -> None:
    q = WorkQueue(database)
    ids = visits(database, 24)
    for eid in ids:
        q.enqueue("transcription", eid)
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while (job := q.claim(["transcription"], name, now=0.0, ttl=TTL)) is not None:
                taken.setdefault(job.encounter_id, []).append(name)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(taken) == sorted(ids)
    assert all(len(owners) == 1 for owners in taken.values())


def test_a_job_posted_for_later_waits(database: Database) -> None:
    q = WorkQueue(database)
    (a,) = visits(database, 1)
    q.enqueue("drafting", a, not_before=50.0)
    assert q.claim(["drafting"], "w1", now=49.0, ttl=TTL) is None
    assert q.claim(["transcription"], "w1", now=60.0, ttl=TTL) is None  # other stages'
    assert q.claim(["drafting"], "w1", now=50.0, ttl=TTL) is not None


async def test_the_runner_renews_stops_on_a_lost_lease_and_gives_back_on_close(
        database: Database) -> None:
    q = WorkQueue(database)
    a, b, c = visits(database, 3)
    for eid in (a, b):
        q.enqueue("transcription", eid)
    started: dict[str, asyncio.Event] = {a: asyncio.Event(), b: asyncio.Event()}
    stopped: list[str] = []

    async def hold(job: ClaimedJob) -> None:
        started[job.encounter_id].set()
        try:
            await asyncio.Event().wait()  # works until told otherwise
        except asyncio.CancelledError:
            stopped.append(job.encounter_id)
            raise

    async def until(check: Callable[[], bool]) -> None:
        for _ in range(200):
            if check():
                return
            await asyncio.sleep(0.025)
        raise AssertionError("timed out")

    limits = RunnerLimits(capacity=4, lease_s=5.0, heartbeat_s=0.05, poll_s=0.05)
    first = StageRunner(q, "w1", {Stage.TRANSCRIPTION: hold}, asyncio.to_thread, limits)
    first.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 10)
        assert first.holds(Stage.TRANSCRIPTION, a) and first.holds(Stage.TRANSCRIPTION, b)
        q.cancel(a)  # consent withdrawn: the next renewal fails and the handler stops
        await until(lambda: stopped == [a])
        assert not first.holds(Stage.TRANSCRIPTION, a) and first.lost == 1
        await until(lambda: q.holders(a, time.time()) == 0)  # and it said so
    finally:
        await first.aclose()  # b is given back, not counted as an attempt
    back = q.get("transcription", b)
    assert back is not None and (back.state, back.owner, back.attempts) == (
        JobState.QUEUED, "", 0)

    async def quick(job: ClaimedJob) -> None:
        if job.encounter_id == c:
            raise RuntimeError("engine exploded")

    q.enqueue("transcription", c)
    second = StageRunner(q, "w2", {Stage.TRANSCRIPTION: quick}, asyncio.to_thread, limits)
    second.start()
    try:
        await until(lambda: (q.get("transcription", b) or Lease()).state is JobState.DONE
                    and (q.get("transcription", c) or Lease()).state is JobState.FAILED)
    finally:
        await second.aclose()
    cancelled = q.get("transcription", a)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
