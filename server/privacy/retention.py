"""Deleting patient data: only what a policy names, each deletion recorded.

What may delete, and what it deletes (nothing else deletes patient data)::

    reason                 trigger                                    deletes
    withdrawal             consent withdrawn (device, API)            audio, transcript, draft/note
    held_expired           no consent within the grace period after   audio (no transcript exists)
                           the visit ended, or within the longest
                           hold (a visit that never ends)
    retention              clinic.audio_retention_days after signing  audio
    transcript_retention   clinic.transcript_retention_days after     transcript (segments and the
                           signing (None: kept)                       review item's copy)
    request                `roomscribe retention delete`, or the API   audio, transcript, draft/note

A **legal hold** on an encounter blocks every one of these. The encounter row itself
(ids, times, consent record) stays, so the deletion can be audited. Each deletion writes
one :class:`~server.models.PrivacyDeletion` row with counts and one audit row
(``delete`` or ``consent_withdrawn``) in the same transaction. ``dry_run`` counts and
changes nothing (no rows either).

Signed notes are the medical record (exported to the EHR as FHIR); the policies never
delete them — only a withdrawal or a request does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.models import (
    AudioFrameRow,
    Clinic,
    ConsentState,
    Encounter,
    PrivacyDeletion,
    Room,
)
from server.review.audit import AuditAction, record
from server.review.models import FhirExport, NoteVersion, ReviewItem
from server.transcripts.tables import TranscriptionRow, TranscriptSegmentRow

__all__ = [
    "DeletionReason",
    "LegalHoldError",
    "Purge",
    "aware",
    "clinic_of",
    "held_detail",
    "held_expired",
    "purge",
    "run_retention",
]


class DeletionReason(StrEnum):
    WITHDRAWAL = "withdrawal"
    HELD_EXPIRED = "held_expired"
    RETENTION = "retention"
    TRANSCRIPT_RETENTION = "transcript_retention"
    REQUEST = "request"


class LegalHoldError(Exception):
    """The encounter is under legal hold: nothing of it may be deleted."""


@dataclass(frozen=True, slots=True)
class Purge:
    """What one deletion removed (or, in a dry run, would remove)."""

    encounter_id: str
    clinic_id: str
    reason: str
    audio_frames: int = 0
    audio_bytes: int = 0
    transcript_segments: int = 0
    note_versions: int = 0

    @property
    def empty(self) -> bool:
        return not (self.audio_frames or self.transcript_segments or self.note_versions)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def detail(self) -> str:
        return (f"{self.reason}: {self.audio_frames} audio frames ({self.audio_bytes} bytes), "
                f"{self.transcript_segments} transcript segments, "
                f"{self.note_versions} note versions")


def aware(dt: datetime) -> datetime:
    """SQLite reads timestamps back naive; they are UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def clinic_of(s: Session, enc: Encounter) -> Clinic | None:
    room = s.get(Room, enc.room_id)
    return s.get(Clinic, room.clinic_id) if room is not None else None


def purge(s: Session, enc: Encounter, reason: DeletionReason, *, audio: bool = True,
          transcript: bool = False, note: bool = False, actor: str = "system",
          user_id: int | None = None, detail: str = "", now: datetime,
          dry_run: bool = False) -> Purge:
    """Delete the named parts of one encounter's data, record it, and return the counts.

    Raises :class:`LegalHoldError` when the encounter is under legal hold."""
    if enc.legal_hold:
        raise LegalHoldError(f"encounter {enc.id} is under legal hold: {enc.legal_hold_reason}")
    clinic = clinic_of(s, enc)
    clinic_id = clinic.id if clinic is not None else ""
    frames = audio_bytes = segments = versions = 0
    item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == enc.id)).first()
    if audio:
        frames, audio_bytes = s.execute(
            select(func.count(), func.coalesce(func.sum(func.length(AudioFrameRow.pcm)), 0))
            .where(AudioFrameRow.encounter_id == enc.id)).one()
    if transcript:
        segments = s.scalar(select(func.count()).select_from(TranscriptSegmentRow)
                            .where(TranscriptSegmentRow.encounter_id == enc.id)) or 0
    if note and item is not None:
        versions = s.scalar(select(func.count()).select_from(NoteVersion)
                            .where(NoteVersion.item_id == item.id)) or 0
    result = Purge(enc.id, clinic_id, reason.value, int(frames), int(audio_bytes),
                   int(segments), int(versions))
    if dry_run:
        return result
    if audio:
        s.execute(delete(AudioFrameRow).where(AudioFrameRow.encounter_id == enc.id))
        enc.audio_deleted_at = now
    if transcript:
        s.execute(delete(TranscriptSegmentRow)
                  .where(TranscriptSegmentRow.encounter_id == enc.id))
        s.execute(delete(TranscriptionRow).where(TranscriptionRow.encounter_id == enc.id))
        if item is not None and not note:
            item.transcript = None
    if note and item is not None:
        s.execute(delete(FhirExport).where(FhirExport.item_id == item.id))
        s.execute(delete(NoteVersion).where(NoteVersion.item_id == item.id))
        s.delete(item)
    text = result.detail() + (f"; {detail}" if detail else "")
    s.add(PrivacyDeletion(at=now, clinic_id=clinic_id, encounter_id=enc.id,
                          reason=reason.value, actor=actor[:200], audio_frames=frames,
                          audio_bytes=audio_bytes, transcript_segments=segments,
                          note_versions=versions, detail=text[:2000]))
    action = (AuditAction.CONSENT_WITHDRAWN if reason is DeletionReason.WITHDRAWAL
              else AuditAction.DELETE)
    event = record(s, None, action, None, text, clinic_id=clinic_id, actor=actor,
                   encounter_id=enc.id, now=now)
    event.user_id = user_id
    s.flush()
    return result


def held_expired(s: Session, enc: Encounter, now: datetime, grace: timedelta,
                 max_hold: timedelta | None = None) -> bool:
    """Whether ``enc``'s audio is held for want of consent and may be held no longer: the
    clinic requires consent, none was recorded, its audio is still stored, and either the
    visit ended more than ``grace`` ago or the server first heard of it more than
    ``max_hold`` ago (a visit that never ends: a device left recording, an end lost)."""
    if enc.consent_state == ConsentState.GIVEN or enc.audio_deleted_at is not None:
        return False
    clinic = clinic_of(s, enc)
    if clinic is None or not clinic.consent_required:
        return False
    if max_hold is not None and aware(enc.created_at) + max_hold <= now:
        return True
    if enc.ended_at_us is None:
        return False  # still going on; consent may yet be recorded
    ended = datetime.fromtimestamp(enc.ended_at_us / 1e6, UTC)
    return ended + grace <= now


def held_detail(enc: Encounter, now: datetime, grace: timedelta,
                max_hold: timedelta | None) -> str:
    """Why held audio is deleted, for the deletion log and the audit row."""
    if enc.ended_at_us is None or (
            max_hold is not None and aware(enc.created_at) + max_hold <= now
            and datetime.fromtimestamp(enc.ended_at_us / 1e6, UTC) + grace > now):
        minutes = max_hold.total_seconds() / 60 if max_hold is not None else 0
        return f"no consent recorded within the longest hold ({minutes:g} min)"
    return "no consent recorded within the grace period"


def run_retention(s: Session, now: datetime, *, grace: timedelta, dry_run: bool = False,
                  clinic_id: str | None = None, actor: str = "retention",
                  max_hold: timedelta | None = None) -> list[Purge]:
    """Apply every clinic's policy once: held audio past its grace period (or held longer
    than ``max_hold``), audio
    ``audio_retention_days`` after signing, transcripts ``transcript_retention_days`` after
    signing. Encounters under legal hold are skipped. Returns what was (or, with
    ``dry_run``, would be) deleted."""
    done: list[Purge] = []
    clinics = s.scalars(select(Clinic).order_by(Clinic.id)).all()
    for clinic in clinics:
        if clinic_id is not None and clinic.id != clinic_id:
            continue
        rooms = select(Room.id).where(Room.clinic_id == clinic.id)
        base = (select(Encounter).where(Encounter.room_id.in_(rooms),
                                        Encounter.legal_hold.is_(False))
                .order_by(Encounter.id))
        # held audio whose grace period is over
        if clinic.consent_required:
            held = s.scalars(base.where(Encounter.consent_state != ConsentState.GIVEN,
                                        Encounter.audio_deleted_at.is_(None))).all()
            for enc in held:
                if held_expired(s, enc, now, grace, max_hold):
                    done.append(purge(s, enc, DeletionReason.HELD_EXPIRED, actor=actor,
                                      now=now, dry_run=dry_run,
                                      detail=held_detail(enc, now, grace, max_hold)))
        signed = base.join(ReviewItem, ReviewItem.encounter_id == Encounter.id).where(
            ReviewItem.signed_at.is_not(None))
        # audio, N days after signing
        cutoff = now - timedelta(days=clinic.audio_retention_days)
        for enc in s.scalars(signed.where(Encounter.audio_deleted_at.is_(None),
                                          ReviewItem.signed_at <= cutoff)).all():
            done.append(purge(s, enc, DeletionReason.RETENTION, actor=actor, now=now,
                              dry_run=dry_run,
                              detail=f"audio_retention_days={clinic.audio_retention_days}"))
        # transcripts, N days after signing (None: kept)
        if clinic.transcript_retention_days is not None:
            cutoff = now - timedelta(days=clinic.transcript_retention_days)
            for enc in s.scalars(signed.where(ReviewItem.signed_at <= cutoff)).all():
                if not _has_transcript(s, enc.id):
                    continue
                done.append(purge(
                    s, enc, DeletionReason.TRANSCRIPT_RETENTION, audio=False, transcript=True,
                    actor=actor, now=now, dry_run=dry_run,
                    detail=f"transcript_retention_days={clinic.transcript_retention_days}"))
    return done


def _has_transcript(s: Session, encounter_id: str) -> bool:
    if s.scalar(select(TranscriptSegmentRow.segment_id)
                .where(TranscriptSegmentRow.encounter_id == encounter_id).limit(1)) is not None:
        return True
    item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == encounter_id)).first()
    return item is not None and bool(item.transcript)
