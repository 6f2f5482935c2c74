"""The composition root: the long-lived objects of one process, built once from Settings.

This is the only module that knows the concrete stages. Each gets, in its
constructor, only the callables and ports it needs; none receives ``Services``::

    ingest          Handoff(audio store, stage | job board, consent gate)
    transcription   TranscriptionStage(engine, store (fenced), live events,
                    labeler = drafting.label_speakers, watcher = drafting.transcript_grew,
                    resume_from = resume_point)
    drafting        DraftingStage(DraftPorts(run_db, consent_allows, note_settings,
                    submit = submit_draft → review queue + review hub))
    review          review-start from the intake (submit_draft); review-end when a draft
                    is signed, from the review routes to ``Services.on_event``
    hand-offs       the durable queue (server/work): a StageRunner takes this process's
                    stages' jobs, a JobBoard posts them

Which stages run here is ``settings.run_stages`` (``roomscribe serve``) or the
``--stages`` of ``roomscribe worker``: all of them by default (one process, SQLite),
none on an ingest/web node whose visits go to workers. A test may hand in its own
``stage`` (it then gets the visits directly, no queue) or ``engine`` (the real stages
around a fake engine).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from nlp.schema import DraftNote, Transcript
from server.asr.engine import SpeechEngine
from server.asr.factory import build_stage
from server.asr.roles import unknown_speakers
from server.asr.stage import TranscriptionStage
from server.bus import Bus, make_bus
from server.bus.devices import ConnectedDevices
from server.datadir import lock_down
from server.db import Database
from server.drafting import DraftingStage, DraftPorts
from server.ingest.handoff import EncounterInfo, EncounterStage, Handoff, LoggingStage
from server.ingest.store import AudioStore
from server.pipeline import jobs, ports
from server.pipeline.events import OnEvent, Stage, log_event, parse_stages
from server.privacy.consent import ConsentGate
from server.review.intake import submit_draft
from server.review.live import LiveHub as ReviewHub
from server.review.models import ReviewItem
from server.review.tickets import TicketBook
from server.settings import Settings
from server.transcripts.live import LiveHub
from server.transcripts.resume import resume_point, resume_unfinished
from server.transcripts.store import TranscriptStore
from server.work.fence import FencedTranscripts
from server.work.queue import WorkQueue
from server.work.runner import HeldJobs, JobBoard, JobHandler, RunnerLimits, StageRunner

__all__ = ["Services"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    store: AudioStore
    handoff: Handoff
    devices: ConnectedDevices
    executor: ThreadPoolExecutor
    #: Live transcript events for viewers, and review item changes for browsers.
    live: LiveHub
    review_hub: ReviewHub
    bus: Bus
    #: Single-use ``?ticket=`` grants for sockets and ``<audio>`` (server/review/tickets.py).
    tickets: TicketBook
    #: The stages this process runs itself.
    stages: frozenset[Stage] = frozenset()
    #: The transcription and drafting stages (None: not configured, or run elsewhere).
    transcription: TranscriptionStage | None = None
    drafting: DraftingStage | None = None
    #: The durable queue: posting hand-offs (None: a given test stage, no queue) and
    #: taking this process's stages' jobs (None: no stage runs here).
    jobs: JobBoard | None = None
    runner: StageRunner | None = None
    #: Where the stages' pipeline events go (``Services.build``'s ``on_event``); the
    #: review routes report ``review-end`` (a draft signed) to it.
    on_event: OnEvent = log_event

    @classmethod
    def build(cls, settings: Settings, stage: EncounterStage | None = None, *,
              engine: SpeechEngine | None = None, stages: frozenset[Stage] | None = None,
              on_event: OnEvent = log_event) -> Services:
        """``stage``: visits go straight to it (tests); ``engine``: the transcription
        stage around it instead of the configured one; ``stages``: those to run here
        (default: ``settings.run_stages``)."""
        lock_down(settings.data_dir, settings.fhir_outbox)  # PHI: the server's user only
        db = Database(settings.resolved_database_url)
        store = AudioStore(db, capture_gap_tolerance_ms=settings.capture_gap_tolerance_ms)
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db")
        run_db = partial(_run_in, executor)
        bus = make_bus(settings)
        live = LiveHub(bus=bus)
        review_hub = ReviewHub(bus=bus)
        gate = ConsentGate(db, grace=timedelta(minutes=settings.consent_grace_min),
                           poll_s=settings.consent_poll_s,
                           max_hold=timedelta(minutes=settings.consent_hold_max_min))
        devices = ConnectedDevices(bus)
        tickets = TicketBook(settings.secret_key)

        def made(handoff: Handoff, **stages_: Any) -> Services:
            return cls(settings, db, store, handoff, devices, executor, live, review_hub,
                       bus, tickets, on_event=on_event, **stages_)

        if stage is not None:  # a test's stage: each visit straight to it
            return made(Handoff(store, stage, executor, gate=gate, on_event=on_event))

        here = parse_stages(settings.run_stages) if stages is None else stages
        intake = _Intake(db, review_hub, run_db)
        held = HeldJobs()
        wake = asyncio.Event()
        queue = WorkQueue(db)
        board = JobBoard(queue, run_db, wake if here else None, bus)

        # --- drafting (server/drafting.py): its models also label live speakers
        drafting = None
        drafting_only = here == {Stage.DRAFTING}
        wants_transcription = Stage.TRANSCRIPTION in here and (
            engine is not None or settings.asr_engine != "none")
        if settings.drafting and (wants_transcription or drafting_only):
            draft_ports = DraftPorts(
                run_db=run_db,
                consent_allows=partial(ports.consent_allows, db,
                                       timedelta(minutes=settings.consent_grace_min)),
                note_settings=partial(ports.note_settings, db, settings.note_templates),
                submit=partial(_submit, intake, on_event))
            drafting = DraftingStage(draft_ports, settings.models_dir,
                                     prepare_every_s=settings.draft_prepare_every_s,
                                     prepare_share=settings.draft_prepare_share,
                                     threads=settings.nlp_threads, on_event=on_event)
        drafts_here = drafting is not None and Stage.DRAFTING in here

        # --- transcription (server/asr): the configured engine, or the one given
        transcription = None
        if wants_transcription:
            watcher = (drafting.transcript_grew if drafts_here and drafting is not None
                       and settings.draft_prepare_every_s > 0 else None)
            transcription = build_stage(
                settings, engine=engine,
                store=FencedTranscripts(TranscriptStore(db),
                                        partial(held.holds, Stage.TRANSCRIPTION)),
                events=live, db_pool=executor, next_stage=_drafting_is_queued,
                labeler=drafting.label_speakers if drafting is not None else unknown_speakers,
                watcher=watcher, voices=_voices(settings) if engine is None else None,
                resume_from=partial(resume_point, db), on_event=on_event)

        # --- ingest: visits are posted to the queue; a LoggingStage when nothing
        # transcribes anywhere (asr_engine = none in a one-process server)
        if here and transcription is None and not drafting_only:
            return made(Handoff(store, LoggingStage(), executor, gate=gate,
                                on_event=on_event), stages=here)
        handoff = Handoff(store, transcription or LoggingStage(), executor, gate=gate,
                          jobs=board, poll_s=settings.stage_poll_s, on_event=on_event,
                          bus=bus, stop_wait_s=settings.stage_lease_s + 1)

        handlers: dict[Stage, JobHandler] = {}
        if transcription is not None:
            handlers[Stage.TRANSCRIPTION] = jobs.TranscriptionJobs(
                handoff, db, run_db, board if settings.drafting else None)
        if drafts_here and drafting is not None:
            handlers[Stage.DRAFTING] = jobs.DraftingJobs(drafting, db, run_db)
        runner = None
        if handlers:
            limits = RunnerLimits(capacity=settings.stage_capacity,
                                  lease_s=settings.stage_lease_s,
                                  heartbeat_s=settings.stage_heartbeat_s,
                                  poll_s=settings.stage_poll_s)
            runner = StageRunner(queue, settings.resolved_node_id, handlers, run_db, limits,
                                 held=held, wake=wake)
        return made(handoff, stages=here, transcription=transcription, drafting=drafting,
                    jobs=board, runner=runner)

    @property
    def transcripts(self) -> TranscriptStore:
        return TranscriptStore(self.db)

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await _run_in(self.executor, fn, *args)

    async def start(self) -> None:
        """On the event loop, once the schema is current: connect the bus, take up
        interrupted visits, start taking jobs."""
        await self.bus.start()
        if self.transcription is not None or self.jobs is not None:
            await resume_unfinished(self.handoff, self.db, self.run_db)
        if self.runner is not None:
            self.runner.start()

    async def aclose(self) -> None:
        if self.runner is not None:
            await self.runner.aclose()
        await self.handoff.aclose()
        if self.transcription is not None:
            self.transcription.close()
        if self.drafting is not None:
            self.drafting.close()
        await self.devices.aclose()
        await self.bus.aclose()
        self.executor.shutdown(wait=True)
        self.db.dispose()


async def _run_in(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


@dataclass(frozen=True, slots=True)
class _Intake:
    """What the review intake needs (server.review.intake.IntakeContext)."""

    db: Database
    review_hub: ReviewHub
    run_db: Callable[..., Any]


async def _submit(intake: _Intake, on_event: OnEvent, encounter_id: str, draft: DraftNote,
                  transcript: Transcript) -> ReviewItem:
    return await submit_draft(intake, encounter_id, draft, transcript, on_event=on_event)


async def _drafting_is_queued(encounter: EncounterInfo, transcript: Transcript) -> None:
    """The transcription stage's next stage under the queue: its job's handler posts the
    drafting job once the transcript is stored (server/pipeline/jobs.py)."""
    log.debug("encounter %s: transcript of %d segments stored", encounter.encounter_id,
              len(transcript.segments))


def _voices(settings: Settings) -> Any:
    """Diarize by voice when asked for and resemblyzer is installed; its encoder warms up
    in a thread of its own now (about 20 s of CPU), so the first visit's finals do not
    wait for it."""
    if not settings.asr_diarization:
        return None
    from server.asr import voiceprint

    if not voiceprint.available():
        log.warning("asr_diarization is on but resemblyzer is not installed: speaker roles "
                    "from the words alone (pip install resemblyzer)")
        return None
    voices = voiceprint.Resemblyzer()
    threading.Thread(target=_warm_up, args=(voices,), name="voices-warm-up",
                     daemon=True).start()
    return voices


def _warm_up(voices: Any) -> None:
    try:
        voices.warm_up()
    except Exception:  # the first visit then loads it, and reports a failure itself
        log.exception("warming up the voice encoder failed")
