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

The stage gets what it needs as :class:`DraftPorts` (the composition root,
server/services.py, builds them): it knows nothing of the database, the review queue
or the server. Pipeline events: ``drafting-start`` / ``drafting-end`` / ``error``.

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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nlp.schema import DraftNote, Transcript, TranscriptSegment
from server import metrics
from server.ingest.handoff import EncounterInfo
from server.pipeline.events import OnEvent, PipelineEvent, Stage, log_event

if TYPE_CHECKING:
    from nlp.pipeline import DraftWriter

__all__ = ["DraftPorts", "DraftingStage", "PriorityWorker"]

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


@dataclass(frozen=True, slots=True)
class DraftPorts:
    """What the drafting stage calls out to (server/pipeline/ports.py has the server's)."""

    #: runs a blocking call off the event loop (the database worker pool)
    run_db: Callable[..., Awaitable[Any]]
    #: blocking: the patient's consent still allows a draft of this encounter
    consent_allows: Callable[[str], bool]
    #: blocking: (template, style) of a room's clinic
    note_settings: Callable[[str], tuple[str, str]]
    #: the draft into the review queue; returns the review item (it has an ``id``)
    submit: Callable[[str, DraftNote, Transcript], Awaitable[Any]]


class DraftingStage:
    """Drafts each finished transcript and puts the draft in the review queue."""

    def __init__(self, ports: DraftPorts, models_dir: Path, prepare_every_s: float = 10.0,
                 writer: DraftWriter | None = None, threads: int = 1,
                 prepare_share: float = 0.35, on_event: OnEvent = log_event) -> None:
        """``writer``: loaded models to use (default: loaded from ``models_dir`` on first
        use); ``threads``: CPU threads for the models' inference (torch's, for the process),
        applied when the models load; ``prepare_share``: the most of the NLP worker's time
        preparations may take (one at a time across visits), so speech recognition keeps
        the cores it needs."""
        self.ports = ports
        self.on_event = on_event
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
        eid = encounter.encounter_id
        started = time.monotonic()
        await self.stop_preparing(eid)
        ports = self.ports
        if not await ports.run_db(ports.consent_allows, eid):
            log.warning("encounter %s: no consent (withdrawn or never recorded); no draft",
                        eid)
            return
        self.on_event(PipelineEvent.start(Stage.DRAFTING, eid,
                                          segments=len(transcript.segments)))
        try:
            note = await ports.run_db(ports.note_settings, encounter.room_id)
            draft = await asyncio.wrap_future(
                self._worker.submit(DRAFT, self._draft, encounter, transcript, note))
            item = await ports.submit(eid, draft, transcript)
        except Exception as err:
            log.exception("encounter %s: drafting failed; the transcript is stored", eid)
            self.on_event(PipelineEvent.error(Stage.DRAFTING, eid,
                                              f"{type(err).__name__}: {err}"))
            raise
        self.latency_s[eid] = time.monotonic() - started
        metrics.observe_draft_latency(self.latency_s[eid])
        self.on_event(PipelineEvent.end(Stage.DRAFTING, eid, item=item.id,
                                        orders=len(draft.orders)))
        log.info("encounter %s: draft in the queue (item %s, %d sections, %d orders) %.2f s "
                 "after the transcript", encounter.encounter_id, item.id,
                 sum(1 for s in draft.sections if s.sentences), len(draft.orders),
                 self.latency_s[encounter.encounter_id])

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
