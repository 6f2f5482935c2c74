"""Consent gates transcription: held audio waits, is deleted after its grace period, and
goes on once consent is recorded; a withdrawal mid-visit deletes what was stored.

The gate's clock is injected and woken by hand (``changed``): no test sleeps for time to
pass."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from protocol import AudioFrame, Consent, EncounterEnd, EncounterStart, Hello
from server.db import Database
from server.ingest.handoff import AudioChunk, EncounterInfo, Handoff
from server.ingest.store import AudioStore, DeviceIdentity
from server.models import AudioFrameRow, Clinic, ConsentState, Encounter, PrivacyDeletion
from server.privacy.consent import ConsentGate, Verdict, record_consent, verdict
from server.review.errors import Conflict, InvalidInput
from server.review.models import AuditEvent
from server.settings import Settings
from server.transcripts.tables import TranscriptSegmentRow
from tests.server.test_session import ScriptedTransport, event, run_session
from tests.support import enrol_device

T0 = 1_700_000_000_000_000
ENDED = datetime.fromtimestamp((T0 + 2_000_000) / 1e6, UTC)
GRACE = timedelta(minutes=10)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Collect:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    async def run(self, encounter: EncounterInfo, audio: AsyncIterator[AudioChunk]) -> None:
        self.started.set()
        async for chunk in audio:
            self.seqs.append(chunk.seq)
        self.done.set()


@pytest.fixture
def device(db: Database) -> DeviceIdentity:
    e = enrol_device(db)
    return DeviceIdentity(e.device_id, e.room_id)


def _visit(store: AudioStore, device: DeviceIdentity, frames: int = 5) -> str:
    enc = str(uuid.uuid4())
    store.open_encounter(device, enc, T0)
    store.store_frames(device, [AudioFrame(enc, s, T0 + s * 100_000, b"\x01\x00" * 1600)
                                for s in range(frames)])
    store.end_encounter(device, enc, frames - 1, T0 + 2_000_000)
    return enc


def _count(db: Database, model: type, encounter_id: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)
                        .where(model.encounter_id == encounter_id)) or 0  # type: ignore[attr-defined]


def _actions(db: Database, encounter_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action)
                              .where(AuditEvent.encounter_id == encounter_id)
                              .order_by(AuditEvent.id)))


async def _gated(db: Database, clock: Clock) -> tuple[Handoff, ConsentGate, Collect,
                                                      ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2)
    gate = ConsentGate(db, grace=GRACE, poll_s=60, clock=clock)
    stage = Collect()
    return Handoff(AudioStore(db), stage, pool, gate=gate), gate, stage, pool


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll (bounded) for conditions no event announces."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"condition not met within {within} s")


async def test_without_consent_audio_is_held_then_deleted_after_the_grace_period(
        db: Database, device: DeviceIdentity) -> None:
    store = AudioStore(db)
    enc = _visit(store, device)
    clock = Clock(ENDED + timedelta(minutes=1))
    handoff, gate, stage, pool = await _gated(db, clock)
    try:
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await _until(lambda: enc in gate.waiting)
        assert not stage.started.is_set()  # held: stored, nothing transcribed
        assert _count(db, AudioFrameRow, enc) == 5
        clock.now = ENDED + GRACE - timedelta(seconds=1)
        gate.changed(enc)
        await asyncio.sleep(0.05)
        assert enc in gate.waiting and _count(db, AudioFrameRow, enc) == 5
        clock.now = ENDED + GRACE
        gate.changed(enc)
        await _until(lambda: enc not in gate.waiting)
        assert not stage.started.is_set()
        assert _count(db, AudioFrameRow, enc) == 0
        with db.session() as s:
            row = s.scalars(select(PrivacyDeletion)).one()
            assert (row.reason, row.audio_frames, row.audio_bytes) == ("held_expired", 5, 16000)
            assert s.get(Encounter, enc).audio_deleted_at is not None  # type: ignore[union-attr]
        assert _actions(db, enc) == ["delete"]
        # consent arriving too late is refused: the audio is gone
        with db.session() as s, pytest.raises(Conflict, match="deleted"):
            record_consent(s, enc, method="verbal", obtained_by="Dr Lee", source="api",
                           now=clock.now)
        # frames resent afterwards are acked, never stored again
        late = store.store_frames(device, [AudioFrame(enc, 5, T0, b"\x00\x00" * 10)])
        assert late.stored == 0 and _count(db, AudioFrameRow, enc) == 0
    finally:
        await handoff.aclose()
        pool.shutdown()


async def test_consent_recorded_in_time_lets_the_visit_be_transcribed(
        db: Database, device: DeviceIdentity) -> None:
    enc = _visit(AudioStore(db), device)
    clock = Clock(ENDED + timedelta(minutes=5))
    handoff, gate, stage, pool = await _gated(db, clock)
    try:
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await _until(lambda: enc in gate.waiting)
        with db.session() as s:
            record_consent(s, enc, method="written", obtained_by="Dr Lee", source="api",
                           now=clock.now)
        handoff.consent_changed(enc)
        await asyncio.wait_for(stage.done.wait(), 5)
        assert stage.seqs == [0, 1, 2, 3, 4]
        clock.now = ENDED + GRACE * 10  # consent given: the grace period no longer applies
        with db.session() as s:
            assert verdict(s, enc, clock.now, GRACE) is Verdict.PROCEED
            e = s.get(Encounter, enc)
            assert e is not None
            assert (e.consent_state, e.consent_method, e.consent_by, e.consent_source) == (
                "given", "written", "Dr Lee", "api")
        assert _actions(db, enc) == ["consent"]
    finally:
        await handoff.aclose()
        pool.shutdown()


async def test_a_clinic_that_does_not_require_consent_is_not_held(
        db: Database, device: DeviceIdentity) -> None:
    with db.session() as s:
        for clinic in s.scalars(select(Clinic)):
            assert clinic.consent_required  # the default
            clinic.consent_required = False
    enc = _visit(AudioStore(db), device)
    handoff, _gate, stage, pool = await _gated(db, Clock(ENDED + GRACE * 10))
    try:
        handoff.encounter_opened(EncounterInfo(enc, device.device_id, device.room_id, T0))
        await asyncio.wait_for(stage.done.wait(), 5)
        assert stage.seqs == [0, 1, 2, 3, 4]
        assert _count(db, AudioFrameRow, enc) == 5
    finally:
        await handoff.aclose()
        pool.shutdown()


def test_consent_input_is_checked(db: Database, device: DeviceIdentity) -> None:
    enc = _visit(AudioStore(db), device)
    with db.session() as s:
        with pytest.raises(InvalidInput, match="verbal or written"):
            record_consent(s, enc, method="nodded", obtained_by="x", source="api",
                           now=ENDED)
        with pytest.raises(InvalidInput, match="who obtained"):
            record_consent(s, enc, method="verbal", obtained_by=" ", source="api", now=ENDED)


async def test_device_consent_then_withdrawal_mid_visit_deletes_what_was_stored(
        settings: Settings, db: Database) -> None:
    """Over the protocol: consent given, audio transcribed into segments, then withdrawn:
    the stage is stopped, frames and transcript deleted, later frames acked not stored."""
    dev = enrol_device(db)
    enc = str(uuid.uuid4())

    def frames(seqs: range) -> list[str | bytes]:
        return [AudioFrame(enc, s, T0 + s * 100_000, b"\x01\x00" * 1600).to_bytes()
                for s in seqs]

    class Transcribing(Collect):
        async def run(self, encounter: EncounterInfo,
                      audio: AsyncIterator[AudioChunk]) -> None:
            self.started.set()
            async for chunk in audio:  # a stand-in ASR: one stored segment per frame
                self.seqs.append(chunk.seq)
                with db.session() as s:
                    s.add(TranscriptSegmentRow(encounter_id=encounter.encounter_id,
                                               segment_id=chunk.seq, start_s=0, end_s=0.1,
                                               text="hello", speaker="doctor", words=[]))
            self.done.set()

    stage = Transcribing()
    gate = ConsentGate(db, grace=GRACE, poll_s=0.05)
    transport = ScriptedTransport([
        event(Hello(dev.device_id, dev.token, "exam-1", "t")), event(EncounterStart(enc, T0)),
        event(Consent(enc, "given", "verbal", "Dr Lee", T0)), *frames(range(3))])
    executor = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()

    async def run_db(fn, *args):  # type: ignore[no-untyped-def]
        return await loop.run_in_executor(executor, fn, *args)

    from server.ingest.session import ConnectedDevices, DeviceSession

    handoff = Handoff(AudioStore(db), stage, executor, gate=gate)
    session = DeviceSession(transport, settings=settings, store=AudioStore(db),
                            handoff=handoff, devices=ConnectedDevices(), run_db=run_db,
                            server_version="t")
    task = asyncio.create_task(session.run())
    try:
        await _until(lambda: len(stage.seqs) == 3)
        assert _count(db, TranscriptSegmentRow, enc) == 3
        for message in [event(Consent(enc, "withdrawn", "", "Dr Lee", T0 + 400_000)),
                        *frames(range(3, 6)), event(EncounterEnd(enc, 5, T0 + 600_000))]:
            transport.incoming.put_nowait(message)
        await _until(lambda: any(e["type"] == "ack" and e["data"].get("complete")
                                 for e in transport.sent))
        assert not stage.done.is_set()  # stopped, not finished
        assert _count(db, AudioFrameRow, enc) == 0
        assert _count(db, TranscriptSegmentRow, enc) == 0
        assert not [e for e in transport.sent if e["type"] == "error"]
        with db.session() as s:
            e = s.get(Encounter, enc)
            assert e is not None and e.consent_state == ConsentState.WITHDRAWN
            row = s.scalars(select(PrivacyDeletion)).one()
            assert (row.reason, row.audio_frames, row.transcript_segments) == (
                "withdrawal", 3, 3)
        assert _actions(db, enc) == ["consent", "consent_withdrawn"]
    finally:
        transport.incoming.put_nowait(None)
        await asyncio.wait_for(task, 10)
        await handoff.aclose()
        executor.shutdown()


async def test_consent_for_another_devices_encounter_is_refused(
        settings: Settings, db: Database) -> None:
    dev = enrol_device(db)
    other = str(uuid.uuid4())
    transport = ScriptedTransport([event(Hello(dev.device_id, dev.token, "exam-1", "t")),
                                   event(Consent(other, "given", "verbal", "Dr Lee", T0))])
    await run_session(settings, AudioStore(db), transport)
    assert [(e["type"], e["data"].get("code")) for e in transport.sent] == [
        ("ready", None), ("error", "unknown-encounter")]
