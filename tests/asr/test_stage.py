"""TranscriptionStage with a fake engine: event order, storage, end of visit, cancellation,
failure, back-pressure reporting and the speaker-role hook."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from nlp.schema import Transcript, TranscriptSegment
from server.asr.diarization import Window
from server.asr.engine import Final, RecognitionEvent
from server.asr.errors import TranscriptionFailed
from server.asr.stage import StageLimits, TranscriptionStage
from server.db import Database
from server.ingest.handoff import AudioChunk, EncounterInfo
from server.ingest.store import AudioStore, DeviceIdentity
from server.transcripts.store import TranscriptStore
from server.transcripts.tables import TranscriptionStatus
from tests.asr.fakes import FakeEngine, words
from tests.support import enrol_device

CHUNK = 3200  # 100 ms
WAIT = 10


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, encounter_id: str, type_: str, data: dict[str, Any]) -> None:
        self.events.append((type_, data))

    def summary(self) -> list[tuple[str, str]]:
        out = []
        for type_, data in self.events:
            detail = data.get("text", "") if type_ in ("partial", "final") else ""
            if type_ == "transcript-complete":
                detail = f"{data['segments']} segments"
            out.append((type_, detail))
        return out


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as p:
        yield p


@pytest.fixture
def encounter(db: Database) -> EncounterInfo:
    e = enrol_device(db)
    eid = str(uuid.uuid4())
    AudioStore(db).open_encounter(DeviceIdentity(e.device_id, e.room_id), eid, 0)
    return EncounterInfo(eid, e.device_id, e.room_id, 0)


async def feed(seconds: float, gate: asyncio.Event | None = None,
               pause_after_s: float | None = None) -> AsyncIterator[AudioChunk]:
    for seq in range(int(seconds * 10)):
        if pause_after_s is not None and gate is not None and seq == int(pause_after_s * 10):
            await gate.wait()
        yield AudioChunk(seq, seq * 100_000, bytes(CHUNK))


def make_stage(engine: FakeEngine, pool: ThreadPoolExecutor, db: Database, rec: Recorder,
               **kw: Any) -> tuple[TranscriptionStage, list[Transcript]]:
    handed: list[Transcript] = []

    async def next_stage(_: EncounterInfo, transcript: Transcript) -> None:
        handed.append(transcript)

    kw.setdefault("limits", StageLimits(behind_threshold_s=1000))
    stage = TranscriptionStage(engine, pool, TranscriptStore(db), rec, next_stage=next_stage,
                               **kw)
    return stage, handed


async def test_events_in_order_stored_and_handed_on(db: Database, pool: ThreadPoolExecutor,
                                                    encounter: EncounterInfo) -> None:
    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec)
    await asyncio.wait_for(stage.run(encounter, feed(3.5)), WAIT)
    assert rec.summary() == [
        ("transcription-start", ""),
        ("partial", "good"),
        ("partial", "good morning"),
        ("final", "good morning"),
        ("partial", "start lisinopril"),
        ("partial", ""),  # the engine judged it non-speech: nothing stored, partial cleared
        ("partial", "ten milligrams"),
        ("final", "ten milligrams daily"),
        ("transcript-complete", "2 segments"),
    ]
    finals = [d for t, d in rec.events if t == "final"]
    assert [f["id"] for f in finals] == [0, 1]
    assert finals[1]["words"][0] == {"text": "ten", "start_s": 2.6, "end_s": 2.8,
                                     "confidence": 0.9}
    # The engine saw every byte, in order, and was flushed at the end of the visit.
    (r,) = engine.recognizers
    assert len(r.fed) == 35 * CHUNK and r.finished
    # Stored transcript == the one handed to the next stage.
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and stored.status == TranscriptionStatus.COMPLETE
    assert [s.text for s in stored.segments] == ["good morning", "ten milligrams daily"]
    assert handed == [stored.transcript()]
    assert stored.progress.audio_s == pytest.approx(3.5)
    assert stored.end_to_transcript_ms is not None and stored.end_to_transcript_ms >= 0
    assert stage.monitor.snapshot()["active"] == 0


async def test_already_transcribed_encounter_is_not_decoded_again(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec)
    await asyncio.wait_for(stage.run(encounter, feed(2)), WAIT)
    await asyncio.wait_for(stage.run(encounter, feed(2)), WAIT)  # a device reconnect
    assert len(engine.recognizers) == 1 and len(handed) == 1


async def test_cancellation_mid_visit_leaves_it_resumable(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec)
    never = asyncio.Event()
    task = asyncio.create_task(stage.run(encounter, feed(5, never, pause_after_s=1.6)))
    for _ in range(200):
        if any(t == "final" for t, _ in rec.events):
            break
        await asyncio.sleep(0.01)
    assert stage.monitor.get(encounter.encounter_id) is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    assert handed == [] and stage.monitor.get(encounter.encounter_id) is None
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and stored.status == TranscriptionStatus.RUNNING
    assert [s.text for s in stored.segments] == ["good morning"]
    # Run again (as after a restart): starts over from the first frame, no duplicates.
    await asyncio.wait_for(stage.run(encounter, feed(3.5)), WAIT)
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and [s.id for s in stored.segments] == [0, 1]
    assert len(handed) == 1


async def test_engine_failure_is_stored_published_and_raised(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    engine, rec = FakeEngine(), Recorder()
    engine.fail_at_s = 2.0
    stage, handed = make_stage(engine, pool, db, rec)
    with pytest.raises(TranscriptionFailed, match="decoder exploded"):
        await asyncio.wait_for(stage.run(encounter, feed(3.5)), WAIT)
    assert rec.events[-1][0] == "error"
    assert rec.events[-1][1]["code"] == "transcription-failed"
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and stored.status == TranscriptionStatus.FAILED
    assert "decoder exploded" in stored.error and handed == []


async def test_a_room_that_falls_behind_is_reported_not_dropped(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo,
        caplog: pytest.LogCaptureFixture) -> None:
    engine, rec = FakeEngine(script=[], at_finish=[]), Recorder()
    gate = threading.Event()
    engine.gate = gate  # the engine is stuck while 8 s of audio arrive
    stage, _handed = make_stage(engine, pool, db, rec,
                               limits=StageLimits(behind_threshold_s=2.0, max_batch_s=1.0))
    task = asyncio.create_task(stage.run(encounter, feed(8)))
    for _ in range(500):
        progress = stage.monitor.get(encounter.encounter_id)
        if progress is not None and progress.received_s >= 8:
            break
        await asyncio.sleep(0.01)
    gate.set()
    await asyncio.wait_for(task, WAIT)
    lagging = [d for t, d in rec.events if t == "lagging"]
    assert lagging and lagging[0]["backlog_s"] > 2.0
    assert lagging[-1]["backlog_s"] <= 1.0  # caught up again (below half the threshold)
    assert "behind the audio" in caplog.text
    assert len(engine.recognizers[0].fed) == 80 * CHUNK  # nothing dropped
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and stored.progress.behind_events == 1
    assert stored.progress.max_backlog_s > 2.0
    assert stage.monitor.behind_events_total == 1


async def test_speaker_labeler_hook_labels_live_and_at_the_end(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    calls: list[int] = []

    def alternate(segments: Sequence[TranscriptSegment]) -> list[str]:
        calls.append(len(segments))
        return ["doctor" if s.id % 2 == 0 else "patient" for s in segments]

    grown: list[Transcript] = []
    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec, labeler=alternate,
                               watcher=lambda _, transcript: grown.append(transcript))
    await asyncio.wait_for(stage.run(encounter, feed(3.5)), WAIT)
    assert calls == [1, 2, 2]  # after each final, then the whole transcript
    assert [d["speaker"] for t, d in rec.events if t == "final"] == ["doctor", "patient"]
    assert [s.speaker for s in handed[0].segments] == ["doctor", "patient"]
    # the watcher saw the transcript so far after each stored final
    assert [[s.text for s in t.segments] for t in grown] == [
        ["good morning"], ["good morning", "ten milligrams daily"]]
    assert {t.encounter_id for t in grown} == {encounter.encounter_id}


async def test_a_coroutine_labeler_is_awaited_on_the_loop_not_in_the_speech_pool(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    threads: list[str] = []

    async def by_turn(segments: Sequence[TranscriptSegment]) -> list[str]:
        threads.append(threading.current_thread().name)
        await asyncio.sleep(0)
        return ["patient" if s.id % 2 == 0 else "doctor" for s in segments]

    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec, labeler=by_turn)
    await asyncio.wait_for(stage.run(encounter, feed(3.5)), WAIT)
    assert threads == [threading.main_thread().name] * 3
    assert [s.speaker for s in handed[0].segments] == ["patient", "doctor"]


async def test_a_storage_error_in_the_feed_fails_the_transcription(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    async def broken() -> AsyncIterator[AudioChunk]:
        yield AudioChunk(0, 0, bytes(CHUNK))
        raise OSError("database went away")

    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec)
    with pytest.raises(TranscriptionFailed, match="database went away"):
        await asyncio.wait_for(stage.run(encounter, broken()), WAIT)
    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None and stored.status == TranscriptionStatus.FAILED and handed == []


# --- diarization: voices (a fake embedder at the seam) decide who said what

class FakeVoices:
    """A voice per sample value: audio filled with value k sounds like voice k (a one-hot
    vector); windows mix the voices by how much of the window each holds."""

    def __init__(self) -> None:
        self.embedded: list[float] = []  # seconds of audio embedded, per call

    @staticmethod
    def _vector(pcm: bytes) -> np.ndarray:
        values = np.frombuffer(pcm, dtype="<i2")
        return np.bincount(np.clip(values, 0, 7), minlength=8).astype(np.float64)

    def embed(self, pcm16k: bytes) -> np.ndarray | None:
        self.embedded.append(len(pcm16k) / 32000)
        if len(pcm16k) < 16000:
            return None
        v = self._vector(pcm16k)
        v[0] = 0.0  # silence has no voice
        return v / np.linalg.norm(v) if v.any() else None

    def windows(self, pcm16k: bytes, start_s: float) -> list[Window]:
        out, step, width = [], 16000, 51200  # 0.5 s apart, 1.6 s long (in bytes)
        for a in range(0, len(pcm16k) - width + 1, step):
            v = self._vector(pcm16k[a:a + width])
            v[0] = 0.0
            if v.any():
                out.append(Window(start_s + a / 32000, start_s + (a + width) / 32000,
                                  v / np.linalg.norm(v)))
        return out


async def voiced_feed(spans: list[tuple[float, float, int]],
                      seconds: float) -> AsyncIterator[AudioChunk]:
    """Audio whose samples are the speaking voice's number (0 = silence)."""
    for seq in range(int(seconds * 10)):
        t = seq / 10 + 0.05
        value = next((v for a, b, v in spans if a <= t < b), 0)
        yield AudioChunk(seq, seq * 100_000, np.full(CHUNK // 2, value, "<i2").tobytes())


async def test_voices_decide_the_stored_speakers_and_split_a_two_voice_segment(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    # voice 1 (the clinician) and voice 2 (the patient); the last final holds both
    script: list[tuple[float, RecognitionEvent]] = [
        (2.5, Final(0.0, 2.0, "good morning what brings you in",
                    words("good morning what brings you in", 0.0, 2.0))),
        (4.5, Final(2.2, 4.0, "my knee hurts", words("my knee hurts", 2.2, 4.0))),
        (6.5, Final(4.2, 6.0, "let us get an x ray", words("let us get an x ray", 4.2, 6.0))),
    ]
    tail = words("does that sound ok", 6.2, 8.0) + words("yes that is fine thanks", 8.2, 10.0)
    at_finish: list[RecognitionEvent] = [
        Final(6.2, 10.0, "does that sound ok yes that is fine thanks", tail)]
    spans = [(0.0, 2.0, 1), (2.2, 4.0, 2), (4.2, 6.0, 1), (6.2, 8.0, 1), (8.2, 10.0, 2)]

    seen: list[list[str]] = []

    def by_words(segments: Sequence[TranscriptSegment]) -> list[str]:
        # a labeler by words, wrong about "let us get an x ray": the voices outvote it
        seen.append([s.speaker for s in segments])
        return ["doctor" if ("morning" in s.text or "sound" in s.text) else "patient"
                for s in segments]

    voices = FakeVoices()
    engine, rec = FakeEngine(script, at_finish), Recorder()
    stage, handed = make_stage(engine, pool, db, rec, labeler=by_words, voices=voices)
    await asyncio.wait_for(stage.run(encounter, voiced_feed(spans, 10.5)), WAIT)

    stored = TranscriptStore(db).load(encounter.encounter_id)
    assert stored is not None
    assert [(s.id, s.text, s.speaker) for s in stored.transcript().segments] == [
        (0, "good morning what brings you in", "doctor"),
        (1, "my knee hurts", "patient"),
        (2, "let us get an x ray", "doctor"),  # text said patient; its voice is the doctor's
        (3, "does that sound ok", "doctor"),
        (4, "yes that is fine thanks", "patient"),
    ]
    assert handed == [stored.transcript()]
    # the live finals carried the voted role as they came
    finals = [d for t, d in rec.events if t == "final"]
    assert [(f["id"], f["speaker"]) for f in finals] == [
        (0, "doctor"), (1, "patient"), (2, "doctor"), (3, "doctor"), (4, "patient")]
    assert [w["text"] for w in finals[4]["words"]] == ["yes", "that", "is", "fine", "thanks"]
    assert finals[3]["end_s"] == finals[4]["start_s"] == pytest.approx(8.1)
    # the labeler saw the words alone, before and after a second voice was heard
    assert seen[0] == ["unknown"]
    assert seen[-1] == ["unknown"] * 5
    # each final's own audio was embedded (the split one's halves separately)
    assert voices.embedded == pytest.approx([2.0, 1.8, 1.8, 1.9, 1.9])


async def test_without_voices_or_with_one_voice_the_text_labels_stand(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    def by_words(segments: Sequence[TranscriptSegment]) -> list[str]:
        return ["doctor" if "morning" in s.text else "patient" for s in segments]

    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec, labeler=by_words, voices=FakeVoices())
    one_voice = [(0.0, 4.0, 3)]
    await asyncio.wait_for(stage.run(encounter, voiced_feed(one_voice, 3.5)), WAIT)
    assert [s.speaker for s in handed[0].segments] == ["doctor", "patient"]


async def test_a_failing_embedder_falls_back_to_text_roles(
        db: Database, pool: ThreadPoolExecutor, encounter: EncounterInfo) -> None:
    class Broken(FakeVoices):
        def windows(self, pcm16k: bytes, start_s: float) -> list[Window]:
            raise RuntimeError("no voice model")

    engine, rec = FakeEngine(), Recorder()
    stage, handed = make_stage(engine, pool, db, rec,
                               labeler=lambda segs: ["other"] * len(segs), voices=Broken())
    await asyncio.wait_for(stage.run(encounter, voiced_feed([(0, 4, 1)], 3.5)), WAIT)
    assert [s.speaker for s in handed[0].segments] == ["other", "other"]
