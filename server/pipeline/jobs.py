"""What a process does with a stage job it took from the queue (server/work/runner.py).

    transcription   the visit's stored audio → the transcription stage (through the
                    ingest hand-off's feed and consent gate), continuing a transcript
                    an earlier worker left; once the transcript is complete, a
                    drafting job is posted (also when an earlier worker stored it and
                    died before posting: the post is idempotent)
    drafting        the stored, complete transcript → the drafting stage
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nlp.schema import Transcript
from server.db import Database
from server.ingest.handoff import EncounterInfo, Handoff, JobBoard
from server.models import Encounter
from server.pipeline.events import Stage
from server.transcripts.store import TranscriptStore
from server.transcripts.tables import TranscriptionStatus
from server.work.queue import ClaimedJob

__all__ = ["DraftingJobs", "TranscriptionJobs", "encounter_info"]

log = logging.getLogger(__name__)

RunDb = Callable[..., Awaitable[Any]]
Draft = Callable[[EncounterInfo, Transcript], Awaitable[None]]


def encounter_info(db: Database, encounter_id: str) -> EncounterInfo | None:
    with db.session() as s:
        enc = s.get(Encounter, encounter_id)
        if enc is None:
            return None
        return EncounterInfo(enc.id, enc.device_id, enc.room_id, enc.started_at_us)


def _transcript_status(db: Database, encounter_id: str) -> str | None:
    stored = TranscriptStore(db).load(encounter_id)
    return stored.status if stored is not None else None


class TranscriptionJobs:
    def __init__(self, handoff: Handoff, db: Database, run_db: RunDb,
                 board: JobBoard | None) -> None:
        """``board``: where drafting jobs go (None: nothing is drafted)."""
        self.handoff = handoff
        self.db = db
        self.run_db = run_db
        self.board = board

    async def __call__(self, job: ClaimedJob) -> None:
        info = await self.run_db(encounter_info, self.db, job.encounter_id)
        if info is None:
            log.info("encounter %s: gone before its transcription", job.encounter_id)
            return
        if not await self.handoff.run_claimed(info):
            return  # no consent: nothing is made of this audio
        status = await self.run_db(_transcript_status, self.db, job.encounter_id)
        if self.board is not None and status == TranscriptionStatus.COMPLETE:
            await self.board.submit(Stage.DRAFTING, job.encounter_id)


class DraftingJobs:
    def __init__(self, draft: Draft, db: Database, run_db: RunDb) -> None:
        self.draft = draft
        self.db = db
        self.run_db = run_db

    async def __call__(self, job: ClaimedJob) -> None:
        eid = job.encounter_id
        stored = await self.run_db(TranscriptStore(self.db).load, eid)
        info = await self.run_db(encounter_info, self.db, eid)
        if stored is None or info is None or stored.status != TranscriptionStatus.COMPLETE:
            log.warning("encounter %s: no complete transcript to draft from", eid)
            return
        await self.draft(info, stored.transcript())
