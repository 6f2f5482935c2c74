"""The audit log: who looked at or changed which patient data, and when.

Every view, edit, claim, send, return, sign, amend, audio playback, transcript
view and FHIR export writes one row, in the same transaction as the change it
records (a view commits its row before the data is returned).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.review.auth import Principal
from server.review.models import AuditEvent, ReviewItem

__all__ = ["AuditAction", "AuditRow", "query", "record", "redact"]


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
    # admin changes (server/review/directory.py; detail: "old → new")
    USER_ADD = "user_add"  # an account made (with its first membership)
    USER_DISABLE = "user_disable"  # an account disabled: its sessions and tokens revoked
    USER_ENABLE = "user_enable"
    PASSWORD = "password"  # a password changed (by its user) or reset (by an admin)
    MEMBERSHIP = "membership"  # a membership added or its role changed
    MEMBERSHIP_REMOVE = "membership_remove"
    POOL = "pool"  # a pool made
    POOL_MEMBER = "pool_member"  # a pool member added or removed
    ROUTING_RULE = "routing_rule"
    ROOM_PHYSICIAN = "room_physician"
    TOKEN_REVOKE = "token_revoke"  # a user's API token revoked
    API_KEY_REVOKE = "api_key_revoke"  # an IT API key revoked
    ACCESS_DENIED = "access_denied"  # a PHI route refused (401/403/404): who, route, ids
    VIEW_QUEUE = "view_queue"  # a review queue listed (detail: how many entries)
    DEVICE_COMMAND = "device_command"  # start / stop / mute / unmute sent to a room device
    DEVICE_CODE = "device_code"  # a device's one-time enrolment code issued (never the code)
    DEVICE_REVOKE = "device_revoke"  # a device locked out (its token stops working)
    CONSENT = "consent"  # a patient's consent recorded for an encounter (server/privacy)
    CONSENT_WITHDRAWN = "consent_withdrawn"  # withdrawn: capture stopped, data deleted
    DELETE = "delete"  # patient data deleted (retention, request, held audio expired)
    LEGAL_HOLD = "legal_hold"  # a legal hold set or cleared on an encounter
    PRIVACY_POLICY = "privacy_policy"  # a clinic's consent / retention policy changed
    ALERT_RAISED = "alert_raised"  # a device began failing a fleet rule (server/fleet)
    ALERT_RESOLVED = "alert_resolved"  # ... and stopped failing it
    AGENT_RELEASE = "agent_release"  # an agent release published / offered (server/fleet)
    ALERT_DELIVERED = "alert_delivered"  # an alert change sent by webhook or email
    ALERT_UNDELIVERED = "alert_undelivered"  # ... given up after its retries (why)


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


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit event as the admin views show it (detached from the session)."""

    id: int
    at: datetime
    user_id: int | None
    actor: str
    clinic_id: str
    action: str
    item_id: str
    encounter_id: str
    detail: str


_REASON = re.compile(r"; reason: (.*)$", re.DOTALL)


def redact(row: AuditRow) -> AuditRow:
    """``row`` without patient text: a return comment becomes "comment (n chars)", an
    amendment's reason "reason (n chars)". The lifecycle (the item itself) keeps them."""
    if row.action == AuditAction.RETURN.value:
        return replace(row, detail=f"comment ({len(row.detail)} chars)")
    if row.action in (AuditAction.EDIT.value, AuditAction.AMEND.value):
        detail = _REASON.sub(lambda m: f"; reason ({len(m.group(1))} chars)", row.detail)
        return replace(row, detail=detail)
    return row


def query(s: Session, *, clinics: list[str] | None = None, user_id: int | None = None,
          action: str | None = None, item_id: str | None = None,
          encounter_id: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 200, actor: str | None = None,
          item_prefix: str | None = None) -> list[AuditRow]:
    """Newest first, PHI text redacted (:func:`redact`): this is what admins and IT see.
    ``clinics`` limits to those clinics (None: all, for the IT key); ``limit`` 1..5000;
    ``actor``: who (a username, ``system``, ``api-key:<name>``); ``item_prefix``: items
    whose id starts so (the 8 characters the pages show)."""
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if clinics is not None:
        stmt = stmt.where(AuditEvent.clinic_id.in_(clinics))
    if user_id is not None:
        stmt = stmt.where(AuditEvent.user_id == user_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if item_id:
        stmt = stmt.where(AuditEvent.item_id == item_id)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if item_prefix:
        stmt = stmt.where(AuditEvent.item_id.startswith(item_prefix, autoescape=True))
    if encounter_id:
        stmt = stmt.where(AuditEvent.encounter_id == encounter_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return [redact(AuditRow(e.id, e.at, e.user_id, e.actor, e.clinic_id, e.action, e.item_id,
                            e.encounter_id, e.detail))
            for e in s.scalars(stmt.limit(max(1, min(limit, 5000))))]
