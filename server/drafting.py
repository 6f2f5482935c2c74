"""The stages after transcription: transcript → draft note (NLP) → review queue.

    transcript grows        (server/asr) after each stored final: the note is prepared
                            from the transcript so far, at most every ``prepare_every_s``,
                            one visit at a time, within ``prepare_share`` of the NLP
                            worker's time and only when it has nothing more urgent; the
                            classifiers remember what they answered (nlp.encoder)
    speaker labels          for each live final, in a thread of their own (the room's
                            transcription waits for them)
    transcription-complete  (server/asr) calls DraftingStage(encounter, transcript)
    consent                 checked again (server/privacy): withdrawn meanwhile = no draft
    draft-start             the NLP models draft the note in the NLP worker (off the loop)
    draft-end               the draft enters the queue: version 1 of a review item,
                            routed to a pool, pushed to open browsers (server/review)
    error                   logged with the encounter; the transcript stays stored, and
                            `roomscribe review draft import` can queue a draft by hand

So at the end of a visit only the last utterances and the sentences whose context
changed go through the models, not the whole visit. The NLP models load once,
lazily, on the first visit (or at start with ``preload``); a missing model is a
clear error naming ``roomscribe models build``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nlp.schema import DraftNote, Transcript, TranscriptSegment
from server.ingest.handoff import EncounterInfo

if TYPE_CHECKING:
    from nlp.pipeline import DraftWriter
    from server.services import Services

__all__ = ["DraftingStage", "PriorityWorker"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: PriorityWorker priorities: a finished visit's draft first, then the speaker labels
#: a room's transcription waits for, then preparing the notes of open visits.
DRAFT, LABEL, PREPARE = 0, 1, 2


class PriorityWorker:
    """One thread running blocking jobs, the most urgent first (lowest priority number,
    then first come). A job cancelled before it starts is skipped."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((priority, next(self._order), (future, fn, args)))
        return future

    def _run(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as err:  # handed to whoever awaits the future
                future.set_exception(err)

    def close(self) -> None:
        """Stop after the job running now; the queued ones are cancelled."""
        while True:
            try:
                _, _, job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].cancel()
        self._jobs.put((-1, -1, None))


class DraftingStage:
    """Drafts each finished transcript and puts the draft in the review queue."""

    def __init__(self, services: Services, models_dir: Path, prepare_every_s: float = 10.0,
                 writer: DraftWriter | None = None, threads: int = 1,
                 prepare_share: float = 0.35) -> None:
        """``writer``: loaded models to use (default: loaded from ``models_dir`` on first
        use); ``threads``: CPU threads for the models' inference (torch's, for the process),
        applied when the models load; ``prepare_share``: the most of the NLP worker's time
        preparations may take (one at a time across visits), so speech recognition keeps
        the cores it needs."""
        self.services = services
        self.models_dir = models_dir
        self.prepare_every_s = prepare_every_s
        self.prepare_share = min(1.0, max(0.01, prepare_share))
        self.threads = threads
        self._worker = PriorityWorker("nlp")
        # live speaker labels have their own thread: a room's transcription waits for them
        self._labels = PriorityWorker("nlp-labels")
        self._prepare_turn = asyncio.Lock()
        self._prepare_free_at = 0.0
        self._writer = writer
        self._lock = threading.Lock()
        #: encounter id → seconds from transcript complete to draft in the queue
        self.latency_s: dict[str, float] = {}
        #: open visits: the newest transcript not yet prepared, and the task preparing
        self._newest: dict[str, Transcript] = {}
        self._preparing: dict[str, asyncio.Task[None]] = {}
        self.prepared = 0  # times a growing transcript was prepared

    def writer(self) -> DraftWriter:
        """The loaded models (blocking; thread-safe)."""
        with self._lock:
            if self._writer is None:
                from nlp.encoder import set_inference_threads
                from nlp.pipeline import DraftWriter

                set_inference_threads(self.threads)
                self._writer = DraftWriter.load(self.models_dir)
            return self._writer

    def preload(self) -> None:
        self.writer()

    async def label_speakers(self, segments: Sequence[TranscriptSegment]) -> list[str]:
        """Speaker roles for the ASR stage's live segments (doctor / patient / other), in
        the labels' own thread: never behind drafts or preparations, and speech workers
        never wait on the models."""
        return await asyncio.wrap_future(
            self._labels.submit(LABEL, self._label, tuple(segments)))

    def _label(self, segments: tuple[TranscriptSegment, ...]) -> list[str]:
        return self.writer().label_speakers(segments)

    def transcript_grew(self, encounter: EncounterInfo, transcript: Transcript) -> None:
        """The ASR stage's watcher: prepare the note from the transcript so far (on the
        event loop; returns at once)."""
        eid = encounter.encounter_id
        self._newest[eid] = transcript
        if eid not in self._preparing:
            self._preparing[eid] = asyncio.create_task(self._prepare_while_growing(eid),
                                                       name=f"nlp-prepare-{eid}")

    async def _prepare_while_growing(self, eid: str) -> None:
        try:
            while True:
                started = time.monotonic()
                async with self._prepare_turn:  # visits take turns
                    await asyncio.sleep(max(0.0, self._prepare_free_at - time.monotonic()))
                    transcript = self._newest.pop(eid, None)
                    if transcript is None:
                        break
                    future = self._worker.submit(PREPARE, self._prepare, transcript)
                    t0 = time.monotonic()
                    try:
                        await asyncio.wrap_future(future)
                    except asyncio.CancelledError:
                        future.cancel()
                        raise
                    except Exception:  # the draft at the end reports errors; a warm-up
                        log.exception("encounter %s: preparing the draft failed", eid)
                    took = time.monotonic() - t0
                    share = self.prepare_share
                    self._prepare_free_at = time.monotonic() + took * (1 - share) / share
                await asyncio.sleep(max(0.0, self.prepare_every_s - (time.monotonic() - started)))
        finally:
            if self._preparing.get(eid) is asyncio.current_task():
                del self._preparing[eid]

    def _prepare(self, transcript: Transcript) -> None:
        self.writer().draft(transcript)
        self.prepared += 1

    @property
    def preparing(self) -> list[str]:
        """Encounters whose note is being prepared or waits for its next preparation."""
        return sorted({*self._preparing, *self._newest})

    async def stop_preparing(self, eid: str) -> None:
        """No more preparations for this visit (it ended, or was abandoned)."""
        self._newest.pop(eid, None)
        task = self._preparing.pop(eid, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __call__(self, encounter: EncounterInfo, transcript: Transcript) -> None:
        from server.review.intake import submit_draft

        started = time.monotonic()
        await self.stop_preparing(encounter.encounter_id)
        if not await self.services.run_db(self._consent_allows, encounter.encounter_id):
            log.warning("encounter %s: no consent (withdrawn or never recorded); no draft",
                        encounter.encounter_id)
            return
        try:
            note = await self.services.run_db(self._note_settings, encounter.room_id)
            draft = await asyncio.wrap_future(
                self._worker.submit(DRAFT, self._draft, encounter, transcript, note))
            item = await submit_draft(self.services, encounter.encounter_id, draft, transcript)
        except Exception:
            log.exception("encounter %s: drafting failed; the transcript is stored",
                          encounter.encounter_id)
            raise
        self.latency_s[encounter.encounter_id] = time.monotonic() - started
        log.info("encounter %s: draft in the queue (item %s, %d sections, %d orders) %.2f s "
                 "after the transcript", encounter.encounter_id, item.id,
                 sum(1 for s in draft.sections if s.sentences), len(draft.orders),
                 self.latency_s[encounter.encounter_id])

    def _consent_allows(self, encounter_id: str) -> bool:
        """The patient's consent (server/privacy) still allows a draft of this visit."""
        from datetime import timedelta

        from server.models import utcnow
        from server.privacy.consent import Verdict, verdict

        grace = timedelta(minutes=self.services.settings.consent_grace_min)
        with self.services.db.session() as s:
            return verdict(s, encounter_id, utcnow(), grace) is Verdict.PROCEED

    def _note_settings(self, room_id: str) -> tuple[str, str]:
        """(template source, style) of the room's clinic (``server.review.notesettings``);
        a template that has gone missing since it was chosen falls back to SOAP, logged."""
        from server.models import Room
        from server.review.errors import InvalidInput
        from server.review.notesettings import NoteSettings, note_settings, template_source

        with self.services.db.session() as s:
            room = s.get(Room, room_id)
            note = note_settings(s, room.clinic_id) if room is not None else NoteSettings()
        try:
            return template_source(note.template, self.services.settings.note_templates), \
                note.style
        except InvalidInput as err:
            log.warning("room %s: note template %r unusable (%s); drafting with soap",
                        room_id, note.template, err)
            return "soap", note.style

    def _draft(self, encounter: EncounterInfo, transcript: Transcript,
               note: tuple[str, str] = ("soap", "concise")) -> DraftNote:
        template, style = note
        draft = self.writer().draft(transcript, template=template, style=style)
        return replace(draft, encounter_id=encounter.encounter_id)

    def close(self) -> None:
        for task in self._preparing.values():
            task.cancel()
        self._preparing.clear()
        self._newest.clear()
        self._worker.close()
        self._labels.close()
