"""Transcript tables, one module so Alembic's env imports them.

Encounter ─< TranscriptSegmentRow      final segments (words as JSON)
          └─ TranscriptionRow          one per encounter: status, engine, timings, lag
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base, utcnow

__all__ = ["TranscriptSegmentRow", "TranscriptionRow", "TranscriptionStatus"]


class TranscriptionStatus(StrEnum):
    RUNNING = "running"  # audio still being transcribed (live or replayed)
    COMPLETE = "complete"  # every stored frame transcribed; the transcript is final
    FAILED = "failed"  # the engine failed; ``error`` says why (audio is still stored)


class TranscriptSegmentRow(Base):
    """One final segment. Times are seconds from the encounter's first frame."""

    __tablename__ = "transcript_segments"
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str] = mapped_column(String(16), default="unknown")
    #: [{"text", "start_s", "end_s", "confidence"}, ...]
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TranscriptionRow(Base):
    """The state of one encounter's transcription, and how well the engine kept up."""

    __tablename__ = "transcriptions"
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), default=TranscriptionStatus.RUNNING)
    engine: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    #: Seconds of audio the engine has consumed.
    audio_s: Mapped[float] = mapped_column(Float, default=0.0)
    #: Seconds of audio waiting for the engine (stored but not yet transcribed), now and worst.
    backlog_s: Mapped[float] = mapped_column(Float, default=0.0)
    max_backlog_s: Mapped[float] = mapped_column(Float, default=0.0)
    #: How many times the backlog crossed the "falling behind" threshold.
    behind_events: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    #: Engine CPU seconds spent (sum over worker calls), for the real-time factor.
    engine_s: Mapped[float] = mapped_column(Float, default=0.0)
    #: End of the audio feed → transcript stored, milliseconds.
    end_to_transcript_ms: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
