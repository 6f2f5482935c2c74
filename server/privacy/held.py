"""Visits whose audio is held for want of the patient's consent, as a physician sees them.

    visits = held_visits(session, ["north-clinic"], grace=..., max_hold=...)

Where a clinic requires consent, a visit nobody recorded consent for has no draft and no
place in the review queue: this list is where a physician of the clinic finds it, with
when its audio will be deleted unless consent is recorded (the queue page's "Waiting for
consent", with Verbal / Written / Discard buttons calling the consent API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Clinic, ConsentState, Encounter, Room
from server.privacy.retention import aware
from server.privacy.scheduled import appointment_of, visit_began

__all__ = ["HeldVisit", "held_visits"]


@dataclass(frozen=True, slots=True)
class HeldVisit:
    encounter_id: str
    clinic_id: str
    room_id: str
    room_name: str
    started_at: datetime
    ended: bool
    audio_seconds: float
    #: When the held audio is deleted unless consent is recorded (None: legal hold).
    deleted_at: datetime | None
    #: The patient booked in the room then, from the schedule ("" when none matches).
    patient_name: str
    patient_mrn: str


def _deleted_at(enc: Encounter, grace: timedelta, max_hold: timedelta | None,
                ) -> datetime | None:
    if enc.legal_hold:
        return None
    times = []
    if max_hold is not None:
        times.append(aware(enc.created_at) + max_hold)
    if enc.ended_at_us is not None:
        times.append(datetime.fromtimestamp(enc.ended_at_us / 1e6, UTC) + grace)
    return min(times) if times else None


def held_visits(s: Session, clinics: list[str], *, grace: timedelta,
                max_hold: timedelta | None, limit: int = 100) -> list[HeldVisit]:
    """The visits of ``clinics`` (those requiring consent) held without consent, with
    audio still stored; oldest first."""
    if not clinics:
        return []
    rooms = select(Room.id).join(Clinic, Clinic.id == Room.clinic_id).where(
        Room.clinic_id.in_(clinics), Clinic.consent_required.is_(True))
    stmt = (select(Encounter).where(Encounter.room_id.in_(rooms),
                                    Encounter.consent_state == ConsentState.NONE,
                                    Encounter.audio_deleted_at.is_(None))
            .order_by(Encounter.created_at, Encounter.id).limit(limit))
    out = []
    for enc in s.scalars(stmt):
        room = s.get(Room, enc.room_id)
        appointment = appointment_of(s, enc)
        out.append(HeldVisit(
            enc.id, room.clinic_id if room else "", enc.room_id,
            room.name if room else enc.room_id, visit_began(enc),
            enc.ended_at_us is not None, enc.audio_seconds,
            _deleted_at(enc, grace, max_hold),
            appointment.patient_name if appointment else "",
            appointment.patient_mrn if appointment else ""))
    return out
