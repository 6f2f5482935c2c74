"""Whose visit a review item is: linked from the schedule at intake, or set by a reviewer.

    link_from_schedule(session, item, visit_start)   # intake: the matching appointment
    appointments_for(session, item)                  # the room's appointments that day
    set_patient(session, who, item_id, now, appointment_id=12)    # or name=, dob=, mrn=
    patient_of(item)          # {"name", "dob", "mrn", "appointment_at", "source", ...} | None
    visit_seconds(session, item)                     # how long the visit lasted

A review item keeps a copy of its patient (name, birth date, MRN, the
appointment's time and visit reason), so a later schedule import never changes
a note after the fact. ``patient_source`` says where it came from:
``schedule`` (matched at intake), ``reviewer`` (a person chose it), or empty
(nobody knows yet). Whoever may edit the draft may set its patient; once the
note is signed its patient is fixed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.models import Encounter
from server.review.access import facts_of, item_for
from server.review.audit import AuditAction, record
from server.review.auth import Principal
from server.review.errors import ClaimHeld, Conflict, IllegalTransition, InvalidInput, NotFound
from server.review.lifecycle import FINAL_STATES, Action, Actor, ReviewState, Role, decide
from server.review.live import ItemChange
from server.review.models import Appointment, ReviewItem
from server.review.schedule import (
    EARLY,
    LATE,
    MAX_DURATION_MIN,
    clinic_zone,
    local_day,
    match_appointment,
    valid_dob,
)

__all__ = [
    "SOURCE_REVIEWER",
    "SOURCE_SCHEDULE",
    "appointments_for",
    "chief_complaint",
    "encounter_seconds",
    "link_from_schedule",
    "patient_of",
    "set_patient",
    "visit_seconds",
    "visit_start",
]

SOURCE_SCHEDULE = "schedule"
SOURCE_REVIEWER = "reviewer"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def visit_start(enc: Encounter | None, fallback: datetime) -> datetime:
    """When the visit began by the device's capture clock (``fallback`` when unknown)."""
    if enc is None or not enc.started_at_us:
        return fallback.astimezone(UTC)
    return datetime.fromtimestamp(enc.started_at_us / 1e6, UTC)


def encounter_seconds(enc: Encounter) -> float:
    """The visit's length: capture start to end when both are known, else the audio's."""
    if enc.started_at_us and enc.ended_at_us and enc.ended_at_us > enc.started_at_us:
        return (enc.ended_at_us - enc.started_at_us) / 1e6
    return enc.audio_seconds


def visit_seconds(session: Session, item: ReviewItem) -> float | None:
    """How long ``item``'s visit lasted in seconds (None: its encounter is gone)."""
    enc = session.get(Encounter, item.encounter_id)
    return encounter_seconds(enc) if enc is not None else None


def chief_complaint(document: dict[str, Any] | None, fallback: str = "") -> str:
    """The first sentence of the note's chief complaint, else ``fallback`` (the booked
    visit reason)."""
    for section in (document or {}).get("sections", []):
        if section.get("key") == "chief_complaint" and section.get("text", "").strip():
            return _SENTENCE_END.split(section["text"].strip(), maxsplit=1)[0]
    return fallback


def patient_of(item: ReviewItem) -> dict[str, Any] | None:
    """The item's patient for pages and exports, or None while nobody knows who it was.

    Keys: name, dob (YYYY-MM-DD), mrn, clinic_id (whose MRN it is), appointment_at (UTC,
    or None), source ("schedule" | "reviewer"), visit_reason. Ready to pass to
    ``fhir.build_bundle(..., patient=...)``."""
    if not item.patient_name and not item.patient_mrn:
        return None
    return {"name": item.patient_name, "dob": item.patient_dob, "mrn": item.patient_mrn,
            "clinic_id": item.clinic_id, "appointment_at": item.appointment_at,
            "source": item.patient_source, "visit_reason": item.visit_reason}


def _copy(item: ReviewItem, appointment: Appointment, source: str) -> None:
    item.patient_name, item.patient_dob = appointment.patient_name, appointment.patient_dob
    item.patient_mrn, item.appointment_at = appointment.patient_mrn, appointment.starts_at
    item.visit_reason, item.patient_source = appointment.reason, source


def link_from_schedule(s: Session, item: ReviewItem, start: datetime) -> Appointment | None:
    """Give ``item`` the patient of the appointment its visit (begun at ``start``) falls in;
    None (and the item left as it is) when no single appointment does."""
    candidates = list(s.scalars(select(Appointment).where(
        Appointment.clinic_id == item.clinic_id, Appointment.room_id == item.room_id,
        Appointment.starts_at >= start - timedelta(minutes=MAX_DURATION_MIN) - LATE,
        Appointment.starts_at <= start + EARLY)))
    appointment = match_appointment(candidates, start)
    if appointment is not None:
        _copy(item, appointment, SOURCE_SCHEDULE)
    return appointment


def appointments_for(s: Session, item: ReviewItem) -> list[Appointment]:
    """The appointments of the item's room on its visit's local day, by start."""
    start = visit_start(s.get(Encounter, item.encounter_id), item.received_at)
    first, end = local_day(start, clinic_zone(s, item.clinic_id))
    return list(s.scalars(select(Appointment).where(
        Appointment.clinic_id == item.clinic_id, Appointment.room_id == item.room_id,
        Appointment.starts_at >= first, Appointment.starts_at < end)
        .order_by(Appointment.starts_at, Appointment.id)))


def _may_set(item: ReviewItem, actor: Actor, now: datetime) -> None:
    if ReviewState(item.state) in FINAL_STATES:
        raise IllegalTransition("the note is signed: its patient cannot be changed; if it "
                                "names the wrong patient, amend the note to say so and tell "
                                "the clinic's records team", state=item.state,
                                action="patient")
    if actor.role is Role.PHYSICIAN:  # item_for let them see it: they are responsible
        return
    try:
        decide(facts_of(item), Action.SAVE, actor, now)
    except ClaimHeld:
        raise ClaimHeld("another reviewer holds this draft: only they can change its "
                        "patient", claimed_by=item.claimed_by) from None
    except IllegalTransition:
        raise IllegalTransition("claim the draft before changing its patient",
                                state=item.state, action="patient") from None


def set_patient(s: Session, who: Principal, item_id: str, now: datetime, *,
                appointment_id: int | None = None, name: str = "", dob: str = "",
                mrn: str = "") -> tuple[ReviewItem, ItemChange]:
    """Set the item's patient from one of the clinic's appointments, or by name, birth date
    and MRN (audited). Refused once the note is signed."""
    item, actor = item_for(s, who, item_id, lock=True)
    _may_set(item, actor, now)
    before = item.patient_mrn or "(none)"
    if appointment_id is not None:
        appointment = s.get(Appointment, appointment_id)
        if appointment is None or appointment.clinic_id != item.clinic_id:
            raise NotFound(f"no appointment {appointment_id} in this clinic")
        _copy(item, appointment, SOURCE_REVIEWER)
        how = f"appointment {appointment.id} ({appointment.room_id} " \
              f"{appointment.starts_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    else:
        name, dob, mrn = name.strip(), dob.strip(), mrn.strip()
        problems = [p for p in (
            "name is empty" if not name else "", "mrn is empty" if not mrn else "",
            valid_dob(dob, now.astimezone(clinic_zone(s, item.clinic_id)).date()) or "") if p]
        if problems:
            raise InvalidInput("; ".join(problems), problems=problems)
        item.patient_name, item.patient_dob, item.patient_mrn = name[:200], dob, mrn[:64]
        item.appointment_at, item.visit_reason = None, ""
        item.patient_source = SOURCE_REVIEWER
        how = "entered by hand"
    item.updated_at = now
    try:
        s.flush()
    except StaleDataError:
        s.rollback()
        raise Conflict("the draft changed while you set its patient; try again") from None
    record(s, who, AuditAction.PATIENT, item,
           f"patient MRN {before} -> {item.patient_mrn}: {how}", now=now)
    return item, ItemChange.of(item, "patient", who.username, who.name)
