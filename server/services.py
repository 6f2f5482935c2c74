"""The long-lived objects of one server process, built once from Settings."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from server.asr.factory import build_stage
from server.asr.stage import TranscriptionStage
from server.datadir import lock_down
from server.db import Database
from server.drafting import DraftingStage
from server.ingest.handoff import EncounterStage, Handoff, LoggingStage
from server.ingest.session import ConnectedDevices
from server.ingest.store import AudioStore
from server.settings import Settings
from server.transcripts.live import LiveHub
from server.transcripts.store import TranscriptStore

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
    extras: dict[str, object] = field(default_factory=dict)
    #: Live transcript events for viewers, and the transcription stage (None: not configured).
    live: LiveHub = field(default_factory=LiveHub)
    transcription: TranscriptionStage | None = None
    drafting: DraftingStage | None = None

    @classmethod
    def build(cls, settings: Settings, stage: EncounterStage | None = None) -> Services:
        lock_down(settings.data_dir, settings.fhir_outbox)  # PHI: the server's user only
        db = Database(settings.resolved_database_url)
        store = AudioStore(db, capture_gap_tolerance_ms=settings.capture_gap_tolerance_ms)
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db")
        # --- transcription (server/asr): the configured engine unless a stage is given
        from_settings = stage is None
        if stage is None:
            stage = build_stage(settings)  # None when asr_engine = none
        live = LiveHub()
        transcription = stage if isinstance(stage, TranscriptionStage) else None
        if transcription is not None:
            transcription.attach(TranscriptStore(db), live, executor)
            if from_settings and settings.asr_diarization:
                _add_voices(transcription)
        from server.privacy.consent import ConsentGate  # held audio waits for consent

        gate = ConsentGate(db, grace=timedelta(minutes=settings.consent_grace_min),
                           poll_s=settings.consent_poll_s)
        handoff = Handoff(store, stage or LoggingStage(), executor, gate=gate)
        services = cls(settings, db, store, handoff, ConnectedDevices(), executor, live=live,
                       transcription=transcription)
        # --- drafting (server/drafting.py): transcript → NLP draft → review queue
        if from_settings and transcription is not None and settings.drafting:
            drafting = DraftingStage(services, settings.models_dir,
                                     prepare_every_s=settings.draft_prepare_every_s,
                                     prepare_share=settings.draft_prepare_share,
                                     threads=settings.nlp_threads)
            transcription.next_stage = drafting
            transcription.labeler = drafting.label_speakers
            if settings.draft_prepare_every_s > 0:
                transcription.watcher = drafting.transcript_grew
            services.drafting = drafting
        return services

    @property
    def transcripts(self) -> TranscriptStore:
        return TranscriptStore(self.db)

    async def run_db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def aclose(self) -> None:
        await self.handoff.aclose()
        if self.transcription is not None:
            self.transcription.close()
        if self.drafting is not None:
            self.drafting.close()
        self.executor.shutdown(wait=True)
        self.db.dispose()


def _add_voices(transcription: TranscriptionStage) -> None:
    """Diarize by voice when resemblyzer is installed; its encoder warms up in a thread of
    its own now (about 20 s of CPU), so the first visit's finals do not wait for it."""
    from server.asr import voiceprint

    if not voiceprint.available():
        log.warning("asr_diarization is on but resemblyzer is not installed: speaker roles "
                    "from the words alone (pip install resemblyzer)")
        return
    voices = voiceprint.Resemblyzer()
    transcription.voices = voices
    threading.Thread(target=_warm_up, args=(voices,), name="voices-warm-up",
                     daemon=True).start()


def _warm_up(voices: Any) -> None:
    try:
        voices.warm_up()
    except Exception:  # the first visit then loads it, and reports a failure itself
        log.exception("warming up the voice encoder failed")
