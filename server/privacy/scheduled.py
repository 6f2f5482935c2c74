"""Consent from the clinic's schedule: the appointment a visit falls in says consent is on
file (``consent`` column of the schedule CSV, :mod:`server.review.schedule`).

    appointment = consent_appointment(session, encounter, now)    # None: nothing on file
    consent_from_schedule(session, encounter, now)                # records it; True if so

A visit belongs to the appointment of its room whose window holds the visit's start (the
same rule that links its patient at intake). When that appointment has consent on file
and the visit has none recorded, the visit's consent is recorded from it: source
``schedule``, method and who took it from the appointment, one ``consent`` audit row
naming the appointment. Held audio is then released (the :class:`ConsentGate` asks here
each time it looks). A withdrawal is never overridden: a withdrawn visit stays withdrawn,
and audio already deleted stays deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import ConsentState, Encounter
from server.privacy.retention import aware, clinic_of
from server.review.models import Appointment
from server.review.schedule import CONSENT_METHODS, EARLY, LATE, MAX_DURATION_MIN, match_appointment

__all__ = [
    "SOURCE",
    "appointment_of",
    "consent_appointment",
    "consent_from_appointment",
    "consent_from_schedule",
    "visit_began",
]

SOURCE = "schedule"
#: Who took the consent when the schedule does not say.
DEFAULT_BY = "the clinic's schedule"


def visit_began(enc: Encounter) -> datetime:
    """When the visit began by the device's clock; when the server heard of it otherwise."""
    if enc.started_at_us:
        return datetime.fromtimestamp(enc.started_at_us / 1e6, UTC)
    return aware(enc.created_at)


def appointment_of(s: Session, enc: Encounter) -> Appointment | None:
    """The appointment ``enc`` falls in (None: none, or two equally near)."""
    clinic = clinic_of(s, enc)
    if clinic is None:
        return None
    start = visit_began(enc)
    candidates = list(s.scalars(select(Appointment).where(
        Appointment.clinic_id == clinic.id, Appointment.room_id == enc.room_id,
        Appointment.starts_at >= start - timedelta(minutes=MAX_DURATION_MIN) - LATE,
        Appointment.starts_at <= start + EARLY)))
    return match_appointment(candidates, start)


def consent_appointment(s: Session, enc: Encounter) -> Appointment | None:
    """The appointment ``enc`` falls in, if it has consent on file (else None)."""
    appointment = appointment_of(s, enc)
    if appointment is None or appointment.consent_method not in CONSENT_METHODS:
        return None
    return appointment


def consent_from_appointment(s: Session, enc: Encounter, appointment: Appointment,
                             now: datetime) -> bool:
    """Record ``enc``'s consent from ``appointment`` if it has consent on file and the
    visit has none yet (no withdrawal, audio not deleted). True when recorded now."""
    from server.privacy.consent import record_consent  # consent imports this module

    if appointment.consent_method not in CONSENT_METHODS:
        return False
    if enc.consent_state != ConsentState.NONE or enc.audio_deleted_at is not None:
        return False
    by = appointment.consent_by or DEFAULT_BY
    record_consent(s, enc.id, method=appointment.consent_method, obtained_by=by,
                   source=SOURCE, now=now, actor=f"schedule (appointment {appointment.id})")
    return True


def consent_from_schedule(s: Session, enc: Encounter, now: datetime) -> bool:
    """Record ``enc``'s consent from the schedule when its appointment has consent on
    file; True when recorded now."""
    if enc.consent_state != ConsentState.NONE or enc.audio_deleted_at is not None:
        return False
    appointment = consent_appointment(s, enc)
    return appointment is not None and consent_from_appointment(s, enc, appointment, now)
