"""The stages after transcription: transcript → draft note (NLP) → review queue.

    transcription-complete  (server/asr) calls DraftingStage(encounter, transcript)
    draft-start             the NLP models draft the note in the NLP worker (off the loop)
    draft-end               the draft enters the queue: version 1 of a review item,
                            routed to a pool, pushed to open browsers (server/review)
    error                   logged with the encounter; the transcript stays stored, and
                            `roomscribe review draft import` can queue a draft by hand

The NLP models load once, lazily, on the first visit (or at start with
``preload``); a missing model is a clear error naming ``roomscribe models build``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nlp.schema import DraftNote, Transcript, TranscriptSegment
from server.ingest.handoff import EncounterInfo

if TYPE_CHECKING:
    from nlp.pipeline import DraftWriter
    from server.services import Services

__all__ = ["DraftingStage"]

log = logging.getLogger(__name__)


class DraftingStage:
    """Drafts each finished transcript and puts the draft in the review queue."""

    def __init__(self, services: Services, models_dir: Path) -> None:
        self.services = services
        self.models_dir = models_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlp")
        self._writer: DraftWriter | None = None
        self._lock = threading.Lock()
        #: encounter id → seconds from transcript complete to draft in the queue
        self.latency_s: dict[str, float] = {}

    def writer(self) -> DraftWriter:
        """The loaded models (blocking; thread-safe)."""
        with self._lock:
            if self._writer is None:
                from nlp.pipeline import DraftWriter

                self._writer = DraftWriter.load(self.models_dir)
            return self._writer

    def preload(self) -> None:
        self.writer()

    def label_speakers(self, segments: Sequence[TranscriptSegment]) -> list[str]:
        """Speaker roles for the ASR stage's live segments (doctor / patient / other)."""
        return self.writer().label_speakers(tuple(segments))

    async def __call__(self, encounter: EncounterInfo, transcript: Transcript) -> None:
        from server.review.intake import submit_draft

        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            draft = await loop.run_in_executor(self._pool, self._draft, encounter, transcript)
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

    def _draft(self, encounter: EncounterInfo, transcript: Transcript) -> DraftNote:
        draft = self.writer().draft(transcript)
        return replace(draft, encounter_id=encounter.encounter_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
