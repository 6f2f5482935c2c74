"""Real processes on loopback, on PostgreSQL: ``roomscribe serve`` with no stages of its
own (ingest only), two workers, a device agent streaming a visit in real time. The
worker holding the visit is killed (-9) mid-visit; the other takes the visit over once
the lease lapses and continues the transcript: the same segments as one uninterrupted
run, none twice.

Workers are ``roomscribe worker`` with the tone engine (tests/cluster/test_worker_tones.py:
``python -m tests.cluster.test_worker_tones worker``), so the transcript can be compared
exactly. Skipped unless ROOMSCRIBE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from server.db import Database
from server.lab.processes import RoomLab
from server.models import StageJob
from server.transcripts.store import TranscriptStore
from server.transcripts.tables import TranscriptionStatus, TranscriptSegmentRow
from tests.cluster.test_worker_tones import expected_segments, tone_visit, write_wav
from tests.support import TEST_DATABASE_URL, reset_database

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Workers:
    def __init__(self, lab: RoomLab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str) -> None:
        env = {**self.lab.env, "ROOMSCRIBE_NODE_ID": name,
               "ROOMSCRIBE_DATA_DIR": str(self.workdir / name),
               "ROOMSCRIBE_STAGE_LEASE_S": "2.5", "ROOMSCRIBE_STAGE_HEARTBEAT_S": "0.5",
               "ROOMSCRIBE_STAGE_POLL_S": "0.2", "ROOMSCRIBE_CONSENT_POLL_S": "0.5"}
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.test_worker_tones", "worker", "--stages",
             "transcription"], cwd=REPO, env=env, stdout=self.log(name).open("ab"),
            stderr=subprocess.STDOUT)

    def ready(self, name: str) -> bool:
        if self.procs[name].poll() is not None:
            raise AssertionError(f"worker {name} exited; see {self.log(name)}")
        return "taking transcription jobs" in self.log(name).read_text(errors="replace")

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RoomLab, Workers, Database]]:
    if not TEST_DATABASE_URL:
        pytest.skip("set ROOMSCRIBE_TEST_DATABASE_URL (PostgreSQL) for the worker cluster")
    reset_database(TEST_DATABASE_URL)
    lab = RoomLab(tmp_path / "web", database_url=TEST_DATABASE_URL, extra_env={
        "ROOMSCRIBE_RUN_STAGES": "none", "ROOMSCRIBE_ASR_ENGINE": "none",
        "ROOMSCRIBE_DRAFTING": "false", "ROOMSCRIBE_NODE_ID": "web"})
    workers = Workers(lab, tmp_path)
    db = Database(TEST_DATABASE_URL)
    try:
        lab.start_server(timeout=60)  # migrates the schema before the workers start
        for name in ("worker-1", "worker-2"):
            workers.start(name)
        for name in ("worker-1", "worker-2"):
            wait_for(f"{name} to start", lambda n=name: workers.ready(n), 60)  # type: ignore[misc]
        yield lab, workers, db
    finally:
        workers.close()
        lab.close()
        db.dispose()


def _job(db: Database) -> StageJob | None:
    with db.session() as s:
        return s.scalars(select(StageJob).where(StageJob.kind == "transcription")).first()


def _segments(db: Database, encounter_id: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(TranscriptSegmentRow)
                            .where(TranscriptSegmentRow.encounter_id == encounter_id)) or 0)


def _stored_pcm(db: Database, encounter_id: str) -> bytes:
    from server.ingest.store import AudioStore

    store, pcm, seq = AudioStore(db), bytearray(), 0
    while rows := store.read_frames(encounter_id, seq):
        for row in rows:
            pcm += row.pcm
            seq = row.seq + 1
    return bytes(pcm)


def test_a_worker_killed_mid_visit_is_replaced_and_the_transcript_continues(
        cluster: tuple[RoomLab, Workers, Database], tmp_path: Path) -> None:
    lab, workers, db = cluster
    clinic = lab.roomscribe("admin", "clinic", "add", "Tone Clinic")["id"]
    lab.roomscribe("retention", "policy", clinic, "--consent-required", "off")
    room = lab.add_room("exam-tones", clinic="Tone Clinic")
    pcm = tone_visit(10)  # about 12 s, streamed in real time
    agent = lab.start_agent(room, write_wav(pcm, tmp_path / "visit.wav"), speed=1.0)
    try:
        job: Any = wait_for("a worker to take the visit",
                            lambda: (j := _job(db)) is not None and j.owner and j, 30)
        eid, holder = job.encounter_id, job.owner
        wait_for("three stored segments", lambda: _segments(db, eid) >= 3, 30)
        workers.kill(holder)  # mid-visit, without a word
        killed_at = _segments(db, eid)
        assert agent.wait(timeout=60) == 0, "the agent did not finish its visit"
        done: Any = wait_for("the transcript to complete", lambda: (
            (t := TranscriptStore(db).load(eid)) is not None
            and t.status == TranscriptionStatus.COMPLETE and t), 60)
    finally:
        if agent.poll() is None:
            agent.kill()
    survivor = ({"worker-1", "worker-2"} - {holder}).pop()
    final_job = _job(db)
    assert final_job is not None
    assert (final_job.owner, final_job.attempts, final_job.state) == (survivor, 2, "done")
    assert killed_at < len(done.segments), "the visit ended before the kill"

    stored = _stored_pcm(db, eid)
    assert stored == pcm  # every frame, once
    got = [(s.text, round(s.start_s, 3), round(s.end_s, 3)) for s in done.segments]
    assert got == expected_segments(stored)  # as one uninterrupted run: none lost
    assert [s.id for s in done.segments] == list(range(len(got)))
    assert len({s.text for s in done.segments}) == len(got)  # none twice
    log = workers.log(survivor).read_text(errors="replace")
    assert "continuing its transcript" in log, log[-3000:]
    assert os.path.exists(lab.server_log or "")
