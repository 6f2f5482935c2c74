"""The audit log: who looked at or changed which patient data, and when.

Every view, edit, claim, send, return, sign, amend, audio playback, transcript
view and FHIR export writes one row, in the same transaction as the change it
records (a view commits its row before the data is returned).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.review.auth import Principal
from server.review.models import AuditEvent, ReviewItem

__all__ = ["AuditAction", "query", "record"]


class AuditAction(StrEnum):
    INTAKE = "intake"
    VIEW = "view"
    VIEW_TRANSCRIPT = "view_transcript"
    PLAY_AUDIO = "play_audio"
    VIEW_VERSIONS = "view_versions"
    EDIT = "edit"
    CLAIM = "claim"
    RELEASE = "release"
    SEND = "send"
    RETURN = "return"
    SIGN = "sign"
    AMEND = "amend"
    EXPORT = "export"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    NOTE_SETTINGS = "note_settings"  # a clinic's note template or style changed
    PATIENT = "patient"  # a reviewer set the patient of an item
    VIEW_SCHEDULE = "view_schedule"  # a reviewer looked at a room's appointments
    SCHEDULE = "schedule"  # a schedule imported, or a clinic's time zone changed


def record(s: Session, who: Principal | None, action: AuditAction, item: ReviewItem | None = None,
           detail: str = "", *, clinic_id: str = "", actor: str = "", encounter_id: str = "",
           now: datetime | None = None) -> AuditEvent:
    event = AuditEvent(
        user_id=who.user_id if who else None,
        actor=actor or (f"{who.username}" if who else "system"),
        clinic_id=item.clinic_id if item else clinic_id,
        action=action.value,
        item_id=item.id if item else "",
        encounter_id=item.encounter_id if item else encounter_id,
        detail=detail[:2000],
    )
    if now is not None:
        event.at = now
    s.add(event)
    return event


def query(s: Session, *, clinics: list[str] | None = None, user_id: int | None = None,
          action: str | None = None, item_id: str | None = None,
          encounter_id: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 200) -> list[AuditEvent]:
    """Newest first. ``clinics`` limits to those clinics (None: all, for the IT key)."""
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if clinics is not None:
        stmt = stmt.where(AuditEvent.clinic_id.in_(clinics))
    if user_id is not None:
        stmt = stmt.where(AuditEvent.user_id == user_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if item_id:
        stmt = stmt.where(AuditEvent.item_id == item_id)
    if encounter_id:
        stmt = stmt.where(AuditEvent.encounter_id == encounter_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return list(s.scalars(stmt.limit(max(1, min(limit, 5000)))))
