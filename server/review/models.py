"""Review-queue tables, on the shared ``server.models.Base``.

    User ─< Membership >─ Clinic          (role per clinic: physician | partner | admin)
         ─< UserSession                   (browser login; token hash only)
         ─< UserToken                     (API tokens for automation; hash only)
         ─< RoomPhysician >─ Room         (a physician owns the encounters of their rooms)
    Pool ─< PoolMember >─ User            (partners see the drafts of their pools)
         ─< RoutingRule                   (which pool a new draft goes to)
    ReviewItem (one per encounter) ─< NoteVersion   (version 1 = the AI draft)
                                   ─< FhirExport
    Appointment                           (the clinic's schedule: who is due in which room)
    AuditEvent                            (every look at or change of patient data)

Note documents (sections, orders with their decisions) are JSON in
``NoteVersion.document``: a version is immutable once written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.models import Base, utcnow

__all__ = [
    "Appointment",
    "AuditEvent",
    "FhirExport",
    "Membership",
    "NoteVersion",
    "Pool",
    "PoolMember",
    "ReviewItem",
    "RoomPhysician",
    "RoutingRule",
    "UTCDateTime",
    "User",
    "UserSession",
    "UserToken",
]



class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always reads back aware (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


_TS = UTCDateTime()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(_TS)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(_TS)


class Membership(Base):
    """A user's role in one clinic. A partner may serve several clinics."""

    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"),
                                           primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class UserSession(Base):
    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)


class UserToken(Base):
    """A bearer token that acts as its user (scripts, integrations)."""

    __tablename__ = "user_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)


class RoomPhysician(Base):
    __tablename__ = "room_physicians"
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class Pool(Base):
    """A queue of drafts, by clinic / suite / specialty, with a turnaround target."""

    __tablename__ = "pools"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    suite: Mapped[str] = mapped_column(String(100), default="")
    specialty: Mapped[str] = mapped_column(String(100), default="")
    #: Target: ``target_pct`` % of drafts signed within ``turnaround_h`` hours of arrival.
    turnaround_h: Mapped[float] = mapped_column(Float, default=24.0)
    target_pct: Mapped[float] = mapped_column(Float, default=90.0)
    lease_min: Mapped[float] = mapped_column(Float, default=30.0)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class PoolMember(Base):
    __tablename__ = "pool_members"
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"),
                                         primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)


class RoutingRule(Base):
    """Places a new draft: the lowest ``priority`` whose conditions all match wins.

    Empty conditions match anything, so a rule with none is the clinic's default.
    """

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    room_id: Mapped[str] = mapped_column(String(64), default="")
    room_prefix: Mapped[str] = mapped_column(String(64), default="")
    template: Mapped[str] = mapped_column(String(32), default="")


class ReviewItem(Base):
    """One encounter's note on its way from AI draft to signature."""

    __tablename__ = "review_items"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    encounter_id: Mapped[str] = mapped_column(ForeignKey("encounters.id"), unique=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    room_id: Mapped[str] = mapped_column(String(64))
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("pools.id"), index=True)
    physician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(24), index=True)
    #: Bumped by every change (claims included): the row's compare-and-set guard.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    #: Number of the newest NoteVersion: the editor's ETag.
    version: Mapped[int] = mapped_column(Integer, default=1)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(_TS)
    due_at: Mapped[datetime] = mapped_column(_TS)
    return_comment: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(_TS)
    signed_at: Mapped[datetime | None] = mapped_column(_TS)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Transcript segments the draft refers to, as ``Transcript.to_dict()``.
    transcript: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Word-level edit distance AI draft → signed note, and the unified diff.
    edit_distance: Mapped[int | None] = mapped_column(Integer)
    draft_words: Mapped[int | None] = mapped_column(Integer)
    signed_diff: Mapped[str] = mapped_column(Text, default="")
    #: The patient, copied from the schedule at intake (``patient_source`` "schedule") or set
    #: by a reviewer ("reviewer"); all empty while nobody knows who it was.
    patient_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    patient_dob: Mapped[str] = mapped_column(String(10), default="", server_default="")
    patient_mrn: Mapped[str] = mapped_column(String(64), default="", server_default="")
    appointment_at: Mapped[datetime | None] = mapped_column(_TS)
    visit_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    patient_source: Mapped[str] = mapped_column(String(32), default="", server_default="")
    #: The signer's attestation statement and name as signed.
    attestation: Mapped[str] = mapped_column(Text, default="", server_default="")
    signed_by_name: Mapped[str] = mapped_column(String(200), default="", server_default="")

    # Every ORM UPDATE is ``... WHERE revision = <the one read>``: a concurrent change
    # makes the flush fail (StaleDataError) instead of silently overwriting it.
    __mapper_args__ = {"version_id_col": revision}  # noqa: RUF012


class NoteVersion(Base):
    __tablename__ = "note_versions"
    __table_args__ = (UniqueConstraint("item_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"),
                                         index=True)
    number: Mapped[int] = mapped_column(Integer)
    #: ai_draft | edit | sign | amend
    kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    author_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Why the note was changed (an amendment's reason); "" otherwise.
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")


class Appointment(Base):
    """One slot of the clinic's schedule: a patient due in a room at a time (UTC).

    Imported from the scheduling system (:mod:`server.review.schedule`); a review item
    copies its patient from the appointment its visit falls in."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("clinic_id", "room_id", "starts_at", "patient_mrn",
                         name="uq_appointments_slot"),
        Index("ix_appointments_room_start", "room_id", "starts_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    room_id: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(_TS)
    duration_min: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    patient_name: Mapped[str] = mapped_column(String(200))
    patient_dob: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    patient_mrn: Mapped[str] = mapped_column(String(64))
    #: The visit reason (chief complaint) as booked.
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: The patient's consent to recording on file before the visit: verbal | written |
    #: "" (none), and who took it (server/privacy/scheduled.py records it on the visit).
    consent_method: Mapped[str] = mapped_column(String(16), default="", server_default="")
    consent_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(_TS, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    clinic_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    item_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    encounter_id: Mapped[str] = mapped_column(String(36), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class FhirExport(Base):
    __tablename__ = "fhir_exports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"),
                                         index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    bundle: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    outbox_path: Mapped[str] = mapped_column(Text, default="")
