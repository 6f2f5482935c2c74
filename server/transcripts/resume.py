"""Interrupted transcriptions: where one continues, and which to take up at start.

A transcription stops mid-visit when its process stops (a restart, a worker killed).
Whoever takes the visit next continues it (:func:`resume_point`, the transcription
stage's ``resume_from``): the stored segments stay as they are, and the engine starts
again at the end of the last one. Decoding after that point had produced no final yet,
so nothing after it is stored: no segment is made twice and none is lost.

At server start, :func:`resume_unfinished` hands each visit whose audio is complete but
whose transcript is not to the stage again (or posts it to the queue, where stages
run in workers: their runner takes it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from server.asr.stage import ResumePoint
from server.db import Database
from server.ingest.handoff import EncounterInfo, Handoff
from server.pipeline.events import Stage
from server.transcripts.store import TranscriptStore, _segment
from server.transcripts.tables import TranscriptionRow, TranscriptionStatus, TranscriptSegmentRow

__all__ = ["resume_point", "resume_unfinished"]

log = logging.getLogger(__name__)


def resume_point(db: Database, encounter_id: str) -> ResumePoint | None:
    """The stored segments of a running (interrupted) transcription and the end of the
    last one; None when it has no segments yet, is complete or failed, or never began
    (then the stage begins afresh, as before). Blocking."""
    with db.session() as s:
        row = s.get(TranscriptionRow, encounter_id)
        if row is None or row.status != TranscriptionStatus.RUNNING:
            return None
        rows = list(s.scalars(select(TranscriptSegmentRow)
                              .where(TranscriptSegmentRow.encounter_id == encounter_id)
                              .order_by(TranscriptSegmentRow.segment_id)))
    if not rows:
        return None
    segments = tuple(_segment(r) for r in rows)
    if [seg.id for seg in segments] != list(range(len(segments))):
        log.warning("encounter %s: stored segment ids are not 0..%d; transcribing again "
                    "from the first frame", encounter_id, len(segments) - 1)
        return None
    return ResumePoint(segments, segments[-1].end_s)


async def resume_unfinished(handoff: Handoff, db: Database,
                            run_db: Callable[..., Awaitable[Any]]) -> int:
    """Take up each visit whose audio is complete but whose transcription was
    interrupted: to the stage again here, or to the queue when there is one."""
    encounters = await run_db(TranscriptStore(db).unfinished)
    for enc in encounters:
        log.info("encounter %s: transcription was interrupted; taking it up again", enc.id)
        if handoff.jobs is not None:
            await handoff.jobs.submit(Stage.TRANSCRIPTION, enc.id)
        else:
            handoff.encounter_opened(
                EncounterInfo(enc.id, enc.device_id, enc.room_id, enc.started_at_us))
    return len(encounters)
