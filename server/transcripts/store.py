"""Blocking storage of transcripts (run in the database worker pool). One transaction a call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from nlp.schema import Transcript, TranscriptSegment, Word
from server.db import Database
from server.models import Encounter, EncounterStatus, utcnow
from server.transcripts.tables import TranscriptionRow, TranscriptionStatus, TranscriptSegmentRow

__all__ = ["Progress", "StoredTranscript", "TranscriptStore"]


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the engine got and how far behind it is (persisted for GET and after restarts)."""

    audio_s: float = 0.0
    backlog_s: float = 0.0
    max_backlog_s: float = 0.0
    behind_events: int = 0
    engine_s: float = 0.0
    segments: int = 0


@dataclass(frozen=True, slots=True)
class StoredTranscript:
    encounter_id: str
    status: str
    engine: str
    language: str
    progress: Progress
    end_to_transcript_ms: int | None
    error: str
    segments: tuple[TranscriptSegment, ...]

    def transcript(self) -> Transcript:
        return Transcript(self.encounter_id, self.segments, self.engine, self.language)


def _segment(row: TranscriptSegmentRow) -> TranscriptSegment:
    return TranscriptSegment(id=row.segment_id, start_s=row.start_s, end_s=row.end_s,
                             text=row.text, speaker=row.speaker,
                             words=tuple(Word(**w) for w in row.words or ()))


def _apply(row: TranscriptionRow, p: Progress) -> None:
    row.audio_s, row.backlog_s = round(p.audio_s, 3), round(p.backlog_s, 3)
    row.max_backlog_s, row.behind_events = round(p.max_backlog_s, 3), p.behind_events
    row.engine_s, row.segments = round(p.engine_s, 3), p.segments


class TranscriptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, encounter_id: str, engine: str, language: str) -> bool:
        """Start (or restart from the first frame) an encounter's transcription.

        False when it is already complete: a device reconnecting after the
        visit must not cause a second transcription.
        """
        with self.db.session() as s:
            row = s.get(TranscriptionRow, encounter_id)
            if row is not None and row.status == TranscriptionStatus.COMPLETE:
                return False
            s.execute(delete(TranscriptSegmentRow)
                      .where(TranscriptSegmentRow.encounter_id == encounter_id))
            if row is None:
                row = TranscriptionRow(encounter_id=encounter_id)
                s.add(row)
            row.status, row.engine, row.language = TranscriptionStatus.RUNNING, engine, language
            row.error, row.completed_at, row.end_to_transcript_ms = "", None, None
            row.started_at = utcnow()
            _apply(row, Progress())
            return True

    def add_segment(self, encounter_id: str, segment: TranscriptSegment,
                    progress: Progress) -> None:
        with self.db.session() as s:
            s.add(TranscriptSegmentRow(
                encounter_id=encounter_id, segment_id=segment.id, start_s=segment.start_s,
                end_s=segment.end_s, text=segment.text, speaker=segment.speaker,
                words=[{"text": w.text, "start_s": w.start_s, "end_s": w.end_s,
                        "confidence": w.confidence} for w in segment.words]))
            row = s.get(TranscriptionRow, encounter_id)
            if row is not None:
                _apply(row, progress)

    def save_progress(self, encounter_id: str, progress: Progress) -> None:
        with self.db.session() as s:
            row = s.get(TranscriptionRow, encounter_id)
            if row is not None:
                _apply(row, progress)

    def complete(self, encounter_id: str, speakers: Sequence[str], progress: Progress,
                 end_to_transcript_ms: int) -> None:
        """Final speaker labels (one per segment, in id order) and status complete."""
        with self.db.session() as s:
            rows = s.scalars(select(TranscriptSegmentRow)
                             .where(TranscriptSegmentRow.encounter_id == encounter_id)
                             .order_by(TranscriptSegmentRow.segment_id)).all()
            if len(rows) != len(speakers):
                raise ValueError(f"{len(speakers)} speaker labels for {len(rows)} segments")
            for r, speaker in zip(rows, speakers, strict=True):
                if r.speaker != speaker:
                    r.speaker = speaker
            row = s.get(TranscriptionRow, encounter_id)
            if row is None:
                raise LookupError(f"no transcription for encounter {encounter_id}")
            _apply(row, progress)
            row.status, row.completed_at = TranscriptionStatus.COMPLETE, utcnow()
            row.end_to_transcript_ms = end_to_transcript_ms

    def fail(self, encounter_id: str, error: str, progress: Progress) -> None:
        with self.db.session() as s:
            row = s.get(TranscriptionRow, encounter_id)
            if row is not None:
                _apply(row, progress)
                row.status, row.error = TranscriptionStatus.FAILED, error[:2000]

    def load(self, encounter_id: str) -> StoredTranscript | None:
        with self.db.session() as s:
            row = s.get(TranscriptionRow, encounter_id)
            if row is None:
                return None
            segs = s.scalars(select(TranscriptSegmentRow)
                             .where(TranscriptSegmentRow.encounter_id == encounter_id)
                             .order_by(TranscriptSegmentRow.segment_id)).all()
            progress = Progress(row.audio_s, row.backlog_s, row.max_backlog_s,
                                row.behind_events, row.engine_s, row.segments)
            return StoredTranscript(row.encounter_id, row.status, row.engine, row.language,
                                    progress, row.end_to_transcript_ms, row.error,
                                    tuple(_segment(r) for r in segs))

    def unfinished(self) -> list[Encounter]:
        """Encounters whose audio is complete but whose transcription was interrupted
        (the server stopped mid-way): they are transcribed again from the first frame."""
        with self.db.session() as s:
            stmt = (select(Encounter)
                    .join(TranscriptionRow, TranscriptionRow.encounter_id == Encounter.id)
                    .where(Encounter.status == EncounterStatus.AUDIO_COMPLETE)
                    .where(TranscriptionRow.status == TranscriptionStatus.RUNNING)
                    .order_by(Encounter.created_at))
            return list(s.scalars(stmt))
