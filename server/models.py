"""Database tables, named in the clinic's language.

Clinic ─< Room ─< Device
                   └─< Encounter ─< AudioFrameRow
                                  └─< AudioGap
PrivacyDeletion: what a consent withdrawal, retention run or request deleted.
ApiKey: automation / admin credentials (hash only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from protocol import SUPPORTED_FORMAT

__all__ = [
    "ApiKey",
    "AudioFrameRow",
    "AudioGap",
    "Base",
    "Clinic",
    "ConsentState",
    "Device",
    "Encounter",
    "EncounterStatus",
    "GapKind",
    "PrivacyDeletion",
    "Room",
    "StageJob",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Clinic(Base):
    __tablename__ = "clinics"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # how its drafts are written (server/review/notesettings.py): a built-in template
    # ("soap", "aci") or a TOML template's name in Settings.note_templates_dir, and a style
    # ("concise", "detailed", "verbatim"; nlp.assemble.STYLES)
    note_template: Mapped[str] = mapped_column(String(64), default="soap",
                                               server_default="soap")
    note_style: Mapped[str] = mapped_column(String(16), default="concise",
                                            server_default="concise")
    # IANA time zone of its schedule, e.g. "America/Chicago" (server/review/schedule.py)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # privacy (server/privacy): audio is held until the patient's consent is recorded;
    # audio is deleted this many days after signing, transcripts/notes never (None) or after
    consent_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    audio_retention_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    transcript_retention_days: Mapped[int | None] = mapped_column(Integer)


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug, e.g. "exam-3"
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Device(Base):
    """A room's capture device. Only hashes of its secrets are stored."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: What the agent last reported: listening | idle | muted ("" before it ever did).
    reported_state: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EncounterStatus(StrEnum):
    RECORDING = "recording"  # audio arriving
    AWAITING_AUDIO = "awaiting_audio"  # the end is in, frames before last_seq still missing
    AUDIO_COMPLETE = "audio_complete"  # every frame up to last_seq stored


class ConsentState(StrEnum):
    NONE = ""  # nobody recorded consent (yet): audio is held where the clinic requires it
    GIVEN = "given"
    WITHDRAWN = "withdrawn"  # capture stopped, what was recorded deleted


class Encounter(Base):
    """One visit's recording; the id is made on the device."""

    __tablename__ = "encounters"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), default=EncounterStatus.RECORDING)
    started_at_us: Mapped[int] = mapped_column(BigInteger, default=0)
    ended_at_us: Mapped[int | None] = mapped_column(BigInteger)
    #: Frames 0 .. next_seq-1 are stored; the ack sent to the device is next_seq-1.
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Announced by encounter-end; None while recording.
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    audio_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Capture time and length of the newest stored frame, for gap detection.
    last_captured_at_us: Mapped[int | None] = mapped_column(BigInteger)
    last_frame_us: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The patient's consent (server/privacy/consent.py): state, verbal | written, who
    #: obtained it (free text: the clinician's name), when, and from where it was recorded
    #: (device | api | schedule).
    consent_state: Mapped[str] = mapped_column(String(16), default="", server_default="")
    consent_method: Mapped[str] = mapped_column(String(16), default="", server_default="")
    consent_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_source: Mapped[str] = mapped_column(String(16), default="", server_default="")
    #: A legal hold blocks every deletion of this encounter's data (retention, requests).
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    legal_hold_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Set when the audio was deleted (retention, request, withdrawal, held audio expired).
    audio_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    @property
    def audio_seconds(self) -> float:
        return self.audio_bytes / SUPPORTED_FORMAT.bytes_per_second


class AudioFrameRow(Base):
    """One stored audio frame. (encounter_id, seq) is unique: a resend never duplicates."""

    __tablename__ = "audio_frames"
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    captured_at_us: Mapped[int] = mapped_column(BigInteger)
    pcm: Mapped[bytes] = mapped_column(LargeBinary)


class GapKind(StrEnum):
    CAPTURE = "capture"  # consecutive frames whose capture times leave a hole (device dropped)
    SEQUENCE = "sequence"  # a frame arrived ahead of the next expected seq (refused, resent)


class AudioGap(Base):
    __tablename__ = "audio_gaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    #: The gap lies after this seq (-1: before the first frame).
    after_seq: Mapped[int] = mapped_column(BigInteger)
    #: For SEQUENCE gaps: the seq that arrived early.
    received_seq: Mapped[int | None] = mapped_column(BigInteger)
    missing_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class ApiKey(Base):
    """A bearer credential for the admin/automation API. Only the hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(32), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PrivacyDeletion(Base):
    """What one deletion of patient data removed, and why (server/privacy/retention.py).

    ``reason``: retention | transcript_retention | withdrawal | held_expired | request.
    Counts are rows deleted; the audit log has a matching row with the same detail."""

    __tablename__ = "privacy_deletions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    clinic_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    encounter_id: Mapped[str] = mapped_column(String(36), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200), default="system")
    audio_frames: Mapped[int] = mapped_column(Integer, default=0)
    audio_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    transcript_segments: Mapped[int] = mapped_column(Integer, default=0)
    note_versions: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")


class StageJob(Base):
    """One hand-off between pipeline stages (server/work): "transcribe encounter E" (its
    audio is read as stored: ``encounters.next_seq``) or "draft encounter E" (its
    transcript is complete). Workers take it by lease (server/work/lease.py)."""

    __tablename__ = "stage_jobs"
    __table_args__ = (UniqueConstraint("kind", "encounter_id", name="uq_stage_jobs_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # server.pipeline.Stage
    encounter_id: Mapped[str] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    owner: Mapped[str] = mapped_column(String(200), default="")
    #: leased: the lease's end; queued: not before (epoch seconds; 0 = at once)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
