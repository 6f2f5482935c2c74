"""The drafting stage's scheduling: the NLP worker's priorities, and a visit's note
prepared while its transcript grows (a fake writer at the models' seam)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from nlp.pipeline import DraftWriter
from nlp.schema import Transcript, TranscriptSegment
from server.drafting import DRAFT, LABEL, PREPARE, DraftingStage, DraftPorts, PriorityWorker
from server.ingest.handoff import EncounterInfo
from server.pipeline.ports import note_settings


def test_worker_runs_the_most_urgent_job_first_and_skips_cancelled_ones() -> None:
    worker = PriorityWorker("test-nlp")
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = worker.submit(PREPARE, gate.wait, 5)
        later = [worker.submit(PREPARE, ran.append, "prepare-1"),
                 worker.submit(PREPARE, ran.append, "prepare-2")]
        dropped = worker.submit(PREPARE, ran.append, "cancelled")
        label = worker.submit(LABEL, ran.append, "label")
        urgent = worker.submit(DRAFT, ran.append, "draft")
        assert dropped.cancel()
        gate.set()
        for f in [blocker, *later, label, urgent]:
            f.result(timeout=5)
        assert ran == ["draft", "label", "prepare-1", "prepare-2"]
        with pytest.raises(ZeroDivisionError):
            worker.submit(DRAFT, lambda: 1 / 0).result(timeout=5)
    finally:
        worker.close()


class SlowWriter:
    """Records the length of every transcript it drafts; each draft takes ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.drafted: list[int] = []
        self.spans: list[tuple[float, float]] = []

    def draft(self, transcript: Transcript) -> None:
        t0 = time.monotonic()
        threading.Event().wait(self.delay_s)
        self.drafted.append(len(transcript.segments))
        self.spans.append((t0, time.monotonic()))


def transcript(n: int) -> Transcript:
    return Transcript("enc-1", tuple(TranscriptSegment(i, i, i + 1, f"utterance {i}")
                                     for i in range(n)), "whisper:test", "en")


ENCOUNTER = EncounterInfo("enc-1", "dev-1", "room-1", 0)


async def test_a_growing_transcript_is_prepared_newest_first_and_not_piling_up() -> None:
    writer = SlowWriter(0.2)
    stage = DraftingStage(cast(DraftPorts, None), Path("unused"), prepare_every_s=0.0,
                          writer=cast(DraftWriter, writer))
    try:
        for n in range(1, 6):  # five finals while the first preparation runs
            stage.transcript_grew(ENCOUNTER, transcript(n))
            await asyncio.sleep(0.01)
        for _ in range(200):
            if stage.prepared == 2 and not stage.preparing:
                break
            await asyncio.sleep(0.02)
        assert writer.drafted == [1, 5]  # the first, then only the newest
        assert not stage.preparing  # nothing left running for the visit
    finally:
        stage.close()


async def test_preparations_wait_out_the_interval_and_stop_with_the_visit() -> None:
    writer = SlowWriter(0.0)
    stage = DraftingStage(cast(DraftPorts, None), Path("unused"), prepare_every_s=30.0,
                          writer=cast(DraftWriter, writer))
    try:
        stage.transcript_grew(ENCOUNTER, transcript(1))
        await asyncio.sleep(0.2)
        stage.transcript_grew(ENCOUNTER, transcript(2))  # within the interval: waits
        await asyncio.sleep(0.2)
        assert writer.drafted == [1]
        await stage.stop_preparing("enc-1")  # the visit ended: its draft comes next
        assert not stage.preparing
        await asyncio.sleep(0.1)
        assert writer.drafted == [1]
    finally:
        stage.close()


async def test_live_speaker_labels_come_from_the_nlp_worker() -> None:
    class Labels:
        thread = ""

        def label_speakers(self, segments: tuple[TranscriptSegment, ...]) -> list[str]:
            Labels.thread = threading.current_thread().name
            return ["doctor"] * len(segments)

    stage = DraftingStage(cast(DraftPorts, None), Path("unused"),
                          writer=cast(DraftWriter, Labels()))
    try:
        assert await stage.label_speakers(transcript(3).segments) == ["doctor"] * 3
        assert Labels.thread == "nlp-labels"  # not behind drafts and preparations
    finally:
        stage.close()


async def test_preparations_of_many_visits_take_turns_within_their_share() -> None:
    writer = SlowWriter(0.1)
    stage = DraftingStage(cast(DraftPorts, None), Path("unused"), prepare_every_s=0.0,
                          writer=cast(DraftWriter, writer), prepare_share=0.5)
    try:
        for room in range(3):
            stage.transcript_grew(EncounterInfo(f"enc-{room}", "dev", f"room-{room}", 0),
                                  transcript(room + 1))
        for _ in range(200):
            if stage.prepared == 3:
                break
            await asyncio.sleep(0.02)
        assert sorted(writer.drafted) == [1, 2, 3]
        # one at a time, and after each as much idle time as it took (share 0.5)
        for (_, end), (start, _) in itertools.pairwise(sorted(writer.spans)):
            assert start - end >= 0.09
    finally:
        stage.close()


class RecordingWriter:
    """Drafts nothing; records the template and style each draft asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def draft(self, transcript: Transcript, template: str | None = None,
              style: str | None = None) -> object:
        from nlp.schema import DraftNote

        self.asked.append((template or "", style or ""))
        return DraftNote(transcript.encounter_id, "x", ())


def test_each_clinic_drafts_with_its_own_template_and_style(settings, db) -> None:  # type: ignore[no-untyped-def]
    from server import registry
    from server.review.notesettings import set_note_settings

    with db.session() as s:
        for clinic, room in (("North", "n-1"), ("South", "s-1")):
            registry.create_clinic(s, clinic)
            registry.create_room(s, clinic.lower(), room, room)
        settings.note_templates.mkdir(parents=True, exist_ok=True)
        (settings.note_templates / "ortho.toml").write_text(
            '[[section]]\nkey = "plan"\ntitle = "PLAN"\n')
        set_note_settings(s, "north", templates_dir=settings.note_templates,
                          template="ortho", style="detailed")
    writer = RecordingWriter()
    stage = DraftingStage(cast(DraftPorts, None), Path("unused"),
                          writer=cast(DraftWriter, writer))
    try:
        for room in ("n-1", "s-1", "no-such-room"):
            note = note_settings(db, settings.note_templates, room)
            stage._draft(EncounterInfo("enc", "dev", room, 0), transcript(1), note)
        assert writer.asked == [(str(settings.note_templates / "ortho.toml"), "detailed"),
                                ("soap", "concise"), ("soap", "concise")]
        (settings.note_templates / "ortho.toml").unlink()  # gone since it was chosen
        assert note_settings(db, settings.note_templates, "n-1") == ("soap", "detailed")
    finally:
        stage.close()
