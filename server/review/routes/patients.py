"""Patients: the clinic's schedule and time zone (admins), a visit's patient (reviewers).

    POST /api/v1/admin/clinics/{clinic_id}/schedule      body: the CSV, Content-Type text/csv
    GET  /api/v1/admin/clinics/{clinic_id}/timezone
    PUT  /api/v1/admin/clinics/{clinic_id}/timezone      {"timezone": "America/Chicago"}
    GET  /api/v1/review/items/{item_id}/appointments     the room's appointments that day
    PUT  /api/v1/review/items/{item_id}/patient          {"appointment_id": 12}
                                                         or {"name", "dob", "mrn"}

The schedule is sent as the CSV file itself (``curl --data-binary @day.csv -H
'Content-Type: text/csv'``; see :mod:`server.review.schedule` for its columns);
a file with any bad row is refused whole (422, every problem with its line in
``problems``). Reading appointments and setting a patient are audited like
every other look at patient data; a new patient is pushed to open pages.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body
from sqlalchemy.orm import Session

from server.deps import ServicesDep, SessionDep
from server.models import Clinic, utcnow
from server.review import patients, schedule
from server.review.access import item_for
from server.review.audit import AuditAction, record
from server.review.deps import CurrentUser, OperatorDep
from server.review.errors import InvalidInput, NotFound
from server.review.live import hub_of
from server.review.models import Appointment, ReviewItem
from server.review.routes.items import item_public
from server.review.schemas import (
    AppointmentPublic,
    ItemPublic,
    PatientUpdate,
    ScheduleImported,
    TimezonePublic,
    TimezoneUpdate,
)

router = APIRouter(tags=["patients"])

MAX_SCHEDULE_BYTES = 5 * 1024 * 1024
_CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}


@router.post("/api/v1/admin/clinics/{clinic_id}/schedule", response_model=ScheduleImported,
             openapi_extra={"requestBody": _CSV})
def import_schedule(clinic_id: str, body: Annotated[bytes, Body(media_type="text/csv")],
                    session: SessionDep, op: OperatorDep) -> ScheduleImported:
    """Import (or re-import) appointments from the scheduling system's CSV export."""
    if len(body) > MAX_SCHEDULE_BYTES:
        raise InvalidInput(f"the schedule is larger than {MAX_SCHEDULE_BYTES // 2**20} MiB: "
                           "split it by day")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the schedule is not UTF-8 text: export it as CSV (UTF-8)"
                           ) from None
    counts = schedule.import_schedule(session, clinic_id, text, who=op.principal,
                                      actor=op.name, clinics=op.clinics)
    session.commit()
    return ScheduleImported(clinic_id=clinic_id, imported=counts.imported,
                            updated=counts.updated, unchanged=counts.unchanged)


@router.get("/api/v1/admin/clinics/{clinic_id}/timezone", response_model=TimezonePublic)
def get_timezone(clinic_id: str, session: SessionDep, op: OperatorDep) -> TimezonePublic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None or (op.clinics is not None and clinic_id not in op.clinics):
        raise NotFound(f"no clinic {clinic_id!r}")
    return TimezonePublic(clinic_id=clinic_id, timezone=clinic.timezone)


@router.put("/api/v1/admin/clinics/{clinic_id}/timezone", response_model=TimezonePublic)
def put_timezone(clinic_id: str, body: TimezoneUpdate, session: SessionDep,
                 op: OperatorDep) -> TimezonePublic:
    """The clinic's IANA time zone: schedule times are read in it (audited)."""
    name = schedule.set_timezone(session, clinic_id, body.timezone, who=op.principal,
                                 actor=op.name, clinics=op.clinics)
    session.commit()
    return TimezonePublic(clinic_id=clinic_id, timezone=name)


def _appointment_public(a: Appointment, item: ReviewItem, zone: ZoneInfo,
                        ) -> AppointmentPublic:
    starts = a.starts_at.astimezone(UTC)
    return AppointmentPublic(
        id=a.id, room_id=a.room_id, starts_at=starts,
        local_start=f"{starts.astimezone(zone):%Y-%m-%d %H:%M}", duration_min=a.duration_min,
        name=a.patient_name, dob=a.patient_dob, mrn=a.patient_mrn, reason=a.reason,
        linked=(item.patient_mrn == a.patient_mrn and item.appointment_at is not None
                and item.appointment_at.astimezone(UTC) == starts))


def _list(session: Session, item: ReviewItem) -> list[AppointmentPublic]:
    zone = schedule.clinic_zone(session, item.clinic_id)
    return [_appointment_public(a, item, zone)
            for a in patients.appointments_for(session, item)]


@router.get("/api/v1/review/items/{item_id}/appointments",
            response_model=list[AppointmentPublic])
def list_appointments(item_id: str, session: SessionDep,
                      who: CurrentUser) -> list[AppointmentPublic]:
    """The appointments of the item's room on the visit's day (clinic time), to pick the
    right patient."""
    item, _ = item_for(session, who, item_id)
    out = _list(session, item)
    record(session, who, AuditAction.VIEW_SCHEDULE, item,
           f"{len(out)} appointments of {item.room_id}")
    session.commit()
    return out


@router.put("/api/v1/review/items/{item_id}/patient", response_model=ItemPublic)
def put_patient(item_id: str, body: PatientUpdate, session: SessionDep,
                services: ServicesDep, who: CurrentUser) -> ItemPublic:
    """Set whose visit this is (whoever may edit the draft; refused once signed)."""
    item, change = patients.set_patient(session, who, item_id, utcnow(),
                                        appointment_id=body.appointment_id, name=body.name,
                                        dob=body.dob, mrn=body.mrn)
    session.commit()
    hub_of(services).publish(change)
    return item_public(session, who, item)
