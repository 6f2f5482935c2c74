"""The composition root builds the stages from settings, and only from settings: each
stage gets its ports in its constructor; which stages run here decides the rest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest

from nlp.pipeline import DraftWriter
from nlp.schema import DraftNote, Transcript, TranscriptSegment
from protocol import AudioFrame
from server.db import Database
from server.drafting import DraftingStage
from server.ingest.handoff import EncounterInfo, LoggingStage
from server.ingest.store import DeviceIdentity
from server.models import Clinic, Room, StageJob
from server.pipeline.events import EventType, PipelineEvent, Stage
from server.services import Services
from server.settings import Settings
from server.work.fence import FencedTranscripts
from server.work.lease import JobState
from server.work.queue import WorkQueue
from tests.asr.fakes import FakeEngine
from tests.review.world import make_draft
from tests.support import enrol_device


@pytest.fixture
def whisper_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"asr_engine": "whisper",
                                       "models_dir": Path("models").resolve()})


async def test_configured_transcription_hands_transcripts_to_drafting(
        whisper_settings: Settings) -> None:
    services = Services.build(whisper_settings)
    try:
        transcription, drafting = services.transcription, services.drafting
        assert transcription is not None
        assert isinstance(drafting, DraftingStage)
        assert transcription.labeler == drafting.label_speakers
        assert transcription.watcher == drafting.transcript_grew
        assert isinstance(transcription.store, FencedTranscripts)  # writes only under lease
        assert transcription.events is services.live
        assert drafting.threads == 1
        assert services.runner is not None and services.jobs is not None
        assert services.runner.kinds == ["drafting", "transcription"]
        assert services.handoff.jobs is services.jobs  # visits go through the queue
    finally:
        await services.aclose()
    no_prepare = Services.build(whisper_settings.model_copy(update={"draft_prepare_every_s": 0}))
    try:
        assert no_prepare.drafting is not None and no_prepare.transcription is not None
        assert no_prepare.transcription.watcher is None
    finally:
        await no_prepare.aclose()


async def test_drafting_off_or_a_given_stage_leaves_the_chain_alone(
        whisper_settings: Settings) -> None:
    off = Services.build(whisper_settings.model_copy(update={"drafting": False}))
    given = Services.build(whisper_settings, stage=LoggingStage())
    try:
        assert off.transcription is not None and off.drafting is None
        assert off.runner is not None and off.runner.kinds == ["transcription"]
        assert given.transcription is None and given.drafting is None
        assert given.runner is None and given.handoff.jobs is None  # straight to the stage
    finally:
        await off.aclose()
        await given.aclose()


async def test_an_ingest_node_loads_no_engine_and_only_posts(settings: Settings,
                                                             tmp_path: Path) -> None:
    # no model anywhere: building the engine would fail, and must not be tried
    node = Services.build(settings.model_copy(update={
        "asr_engine": "whisper", "models_dir": tmp_path / "no-models", "run_stages": "none"}))
    try:
        assert node.stages == frozenset()
        assert node.transcription is None and node.drafting is None and node.runner is None
        assert node.jobs is not None and node.handoff.jobs is node.jobs
        assert node.jobs.wake is None  # nobody here to wake
    finally:
        await node.aclose()


async def test_a_transcription_worker_labels_speakers_but_leaves_drafts_to_others(
        settings: Settings) -> None:
    worker = Services.build(settings, engine=FakeEngine(),
                            stages=frozenset({Stage.TRANSCRIPTION}))
    try:
        assert worker.transcription is not None and worker.drafting is not None
        assert worker.transcription.labeler == worker.drafting.label_speakers
        assert worker.transcription.watcher is None  # the draft is prepared elsewhere
        assert worker.runner is not None and worker.runner.kinds == ["transcription"]
    finally:
        await worker.aclose()
    drafter = Services.build(settings, stages=frozenset({Stage.DRAFTING}))
    try:
        assert drafter.transcription is None and drafter.drafting is not None
        assert drafter.runner is not None and drafter.runner.kinds == ["drafting"]
    finally:
        await drafter.aclose()


@pytest.mark.parametrize("module", ["server.drafting", "server.review.intake",
                                    "server.services", "server.asr.stage",
                                    "server.ingest.handoff", "server.work.worker",
                                    "server.transcripts.resume", "server.pipeline.jobs"])
def test_each_module_imports_alone(module: str) -> None:
    """No import circle: each of them can be the first one a process imports."""
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


class Writer:
    """The NLP models' seam: a fixed draft, everyone a doctor."""

    def draft(self, transcript: Transcript, template: str | None = None,
              style: str | None = None) -> DraftNote:
        return make_draft(transcript.encounter_id)

    def label_speakers(self, segments: Sequence[TranscriptSegment]) -> list[str]:
        return ["doctor"] * len(segments)


async def test_one_visit_emits_each_stages_events_in_order(settings: Settings,
                                                           db: Database) -> None:
    """The snapshot of a visit's pipeline events, through the queue in one process."""
    dev = enrol_device(db)
    with db.session() as s:
        room = s.get(Room, dev.room_id)
        assert room is not None
        clinic = s.get(Clinic, room.clinic_id)
        assert clinic is not None
        clinic.consent_required = False
    events: list[PipelineEvent] = []
    services = Services.build(settings.model_copy(update={"draft_prepare_every_s": 0}),
                              engine=FakeEngine(), on_event=events.append)
    assert services.drafting is not None
    services.drafting._writer = cast(DraftWriter, Writer())
    device = DeviceIdentity(dev.device_id, dev.room_id)
    eid = str(uuid.uuid4())

    async def until(what: EventType) -> None:
        for _ in range(400):
            if any(e.type is what for e in events):
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"no {what} in {[e.type.value for e in events]}")

    try:
        await services.start()
        await services.run_db(services.store.open_encounter, device, eid, 0)
        services.handoff.encounter_opened(EncounterInfo(eid, dev.device_id, dev.room_id, 0))
        await until(EventType.TRANSCRIPTION_START)
        frames = [AudioFrame(eid, seq, seq * 100_000, bytes(3200)) for seq in range(35)]
        stored = await services.run_db(services.store.store_frames, device, frames)
        services.handoff.audio_stored(stored.acks[eid])
        ended = await services.run_db(services.store.end_encounter, device, eid, 34, 3_500_000)
        services.handoff.audio_stored(ended)
        await until(EventType.DRAFTING_END)
    finally:
        await services.aclose()
    assert [(e.type.value, e.stage.value) for e in events if e.encounter_id == eid] == [
        ("ingest-start", "ingest"),
        ("transcription-start", "transcription"),
        ("ingest-end", "ingest"),
        ("transcription-end", "transcription"),
        ("drafting-start", "drafting"),
        ("review-start", "review"),
        ("drafting-end", "drafting"),
    ]
    jobs = WorkQueue(db)
    for kind in ("transcription", "drafting"):
        job = jobs.get(kind, eid)
        assert job is not None and (job.state, job.attempts) == (JobState.DONE, 1)


async def test_discarding_a_queued_visit_stops_its_holder_before_returning(
        settings: Settings, db: Database) -> None:
    """Consent withdrawn mid-visit: the visit's jobs are cancelled and ``discard`` returns
    once the holder has stopped, so nothing of the visit is written after it."""
    dev = enrol_device(db)
    with db.session() as s:
        room = s.get(Room, dev.room_id)
        assert room is not None
        clinic = s.get(Clinic, room.clinic_id)
        assert clinic is not None
        clinic.consent_required = False
    events: list[PipelineEvent] = []
    services = Services.build(settings.model_copy(update={"drafting": False}),
                              engine=FakeEngine(), on_event=events.append)
    device = DeviceIdentity(dev.device_id, dev.room_id)
    eid = str(uuid.uuid4())
    try:
        await services.start()
        await services.run_db(services.store.open_encounter, device, eid, 0)
        services.handoff.encounter_opened(EncounterInfo(eid, dev.device_id, dev.room_id, 0))
        for _ in range(400):
            if any(e.type is EventType.TRANSCRIPTION_START for e in events):
                break
            await asyncio.sleep(0.025)
        assert await asyncio.wait_for(services.handoff.discard(eid), 10) is True
        assert services.runner is not None and services.runner.held == []
        with db.session() as s:
            job = s.query(StageJob).filter_by(encounter_id=eid).one()
            assert (job.state, job.owner) == ("cancelled", "")
    finally:
        await services.aclose()
