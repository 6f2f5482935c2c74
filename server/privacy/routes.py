"""Privacy API: a visit's consent, legal hold, deletion on request, a clinic's policy.

Who may do what (outside your clinics an encounter does not exist for you: 404):

    GET  /api/v1/encounters/{id}/consent            physician of the clinic, or its admin
    POST /api/v1/encounters/{id}/consent            physician of the clinic
    POST /api/v1/encounters/{id}/consent/withdraw   physician of the clinic
    POST /api/v1/encounters/{id}/deletion           the room's physician (any physician of
                                                    the clinic if the room has none), or
                                                    the clinic's admin / the IT key
    PUT  /api/v1/encounters/{id}/legal-hold         the clinic's admin / the IT key
    GET|PUT /api/v1/admin/clinics/{clinic}/privacy  the clinic's admin / the IT key
    POST /api/v1/admin/retention/run                the admin's clinics / the IT key: all

Partners (remote reviewers) neither record consent nor delete: they were not in the
room. Every change writes an audit row; deletions also a ``privacy_deletions`` row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from protocol import ConsentWithdrawn
from server.deps import ServicesDep, SessionDep
from server.models import Clinic, Encounter, EncounterStatus, utcnow
from server.privacy.consent import consent_view, record_consent, withdraw_consent
from server.privacy.retention import (
    DeletionReason,
    LegalHoldError,
    Purge,
    clinic_of,
    purge,
    run_retention,
)
from server.registry import verify_api_key
from server.review.audit import AuditAction, record
from server.review.auth import Principal
from server.review.deps import CurrentUser, OperatorDep, optional_user
from server.review.errors import AuthError, Conflict, Forbidden, NotFound
from server.review.lifecycle import Role
from server.review.models import RoomPhysician
from server.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["privacy"])
_bearer = HTTPBearer(auto_error=False)


class ConsentCreate(BaseModel):
    method: Literal["verbal", "written"]
    #: Who obtained it; default: you.
    obtained_by: str = Field("", max_length=200)
    #: When it was obtained; default: now.
    at: datetime | None = None


class ConsentWithdraw(BaseModel):
    reason: str = Field("", max_length=1000)


class DeletionRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class LegalHoldUpdate(BaseModel):
    hold: bool
    reason: str = Field("", max_length=1000)


class PrivacyPolicy(BaseModel):
    consent_required: bool = True
    audio_retention_days: int = Field(30, ge=0, le=36_500)
    #: None: transcripts are kept.
    transcript_retention_days: int | None = Field(None, ge=0, le=36_500)


class RetentionRun(BaseModel):
    dry_run: bool = False


def _encounter_in(s: Session, encounter_id: str, clinics: list[str] | None,
                  ) -> tuple[Encounter, str]:
    enc = s.get(Encounter, encounter_id)
    clinic = clinic_of(s, enc) if enc is not None else None
    if enc is None or clinic is None or (clinics is not None and clinic.id not in clinics):
        raise NotFound("no such encounter in your clinics")
    return enc, clinic.id


def _as_physician(s: Session, who: Principal, encounter_id: str) -> tuple[Encounter, str]:
    enc, clinic_id = _encounter_in(s, encounter_id, who.clinics())
    if who.role_in(clinic_id) is not Role.PHYSICIAN:
        raise Forbidden("only a physician of this clinic records or withdraws consent")
    return enc, clinic_id


@router.get("/encounters/{encounter_id}/consent")
def get_consent(encounter_id: str, session: SessionDep,
                who: Annotated[Principal | None, Depends(optional_user)],
                credentials: Annotated[HTTPAuthorizationCredentials | None,
                                       Depends(_bearer)]) -> dict[str, object]:
    clinics = _clinics_of(session, who, credentials, Role.PHYSICIAN, Role.ADMIN)
    enc, _ = _encounter_in(session, encounter_id, clinics)
    return consent_view(enc)


@router.post("/encounters/{encounter_id}/consent")
def post_consent(encounter_id: str, body: ConsentCreate, session: SessionDep, who: CurrentUser,
                 services: ServicesDep) -> dict[str, object]:
    _as_physician(session, who, encounter_id)
    enc = record_consent(session, encounter_id, method=body.method,
                         obtained_by=body.obtained_by or who.name, source="api", now=utcnow(),
                         at=body.at, actor=who.username, user_id=who.user_id)
    session.commit()
    services.handoff.consent_changed(encounter_id)
    return consent_view(enc)


@router.post("/encounters/{encounter_id}/consent/withdraw")
async def post_withdraw(encounter_id: str, body: ConsentWithdraw, services: ServicesDep,
                        session: SessionDep, who: CurrentUser) -> dict[str, object]:
    """Capture stops, the room's device deletes the visit's audio it has not sent yet
    (``consent-withdrawn``; an older agent is told ``stop``), transcription stops, and
    the visit's audio, transcript and draft are deleted. A device offline now is told
    when it reconnects and offers the visit again."""
    enc, _ = _as_physician(session, who, encounter_id)
    device_id = enc.device_id
    in_progress = enc.status == EncounterStatus.RECORDING  # its end has not come in
    session.rollback()  # no transaction held while the stage stops
    at_us = int(utcnow().timestamp() * 1_000_000)
    told = await services.devices.send_event(
        device_id, ConsentWithdrawn(encounter_id, who.name[:200], at_us).to_event())
    if in_progress:  # an agent older than consent-withdrawn still stops capturing
        await services.devices.send_command(device_id, "stop")
    await services.handoff.discard(encounter_id)
    if services.drafting is not None:
        await services.drafting.stop_preparing(encounter_id)
    result = await services.run_db(_withdraw, services, encounter_id, who, body.reason)
    services.handoff.consent_changed(encounter_id)
    return {"encounter_id": encounter_id, "consent": "withdrawn", "device_told": told,
            "deleted": result.as_dict() if result is not None else None,
            "legal_hold": result is None}


def _withdraw(services: Services, encounter_id: str, who: Principal, reason: str,
              ) -> Purge | None:
    with services.db.session() as s:
        return withdraw_consent(s, encounter_id, obtained_by=who.name, source="api",
                                now=utcnow(), actor=who.username, user_id=who.user_id,
                                reason=reason)


def _clinics_of(s: Session, who: Principal | None,
                credentials: HTTPAuthorizationCredentials | None, *roles: Role,
                ) -> list[str] | None:
    """The clinics where ``who`` holds one of ``roles``; None (all) for the IT key."""
    if who is not None:
        return who.clinics(*roles)
    if credentials is not None:
        key = verify_api_key(s, credentials.credentials)
        if key is not None and key.role == "admin":
            return None
    raise AuthError("log in, or send a bearer API token")


@router.post("/encounters/{encounter_id}/deletion")
def post_deletion(encounter_id: str, body: DeletionRequest, session: SessionDep,
                  who: Annotated[Principal | None, Depends(optional_user)],
                  credentials: Annotated[HTTPAuthorizationCredentials | None,
                                         Depends(_bearer)]) -> dict[str, object]:
    """Delete a visit's audio, transcript and draft/note on request (the patient asked).
    Refused (409) under legal hold."""
    clinics = _clinics_of(session, who, credentials, Role.PHYSICIAN, Role.ADMIN)
    enc, clinic_id = _encounter_in(session, encounter_id, clinics)
    if who is not None and who.role_in(clinic_id) is Role.PHYSICIAN:
        owner = session.get(RoomPhysician, enc.room_id)
        if owner is not None and owner.user_id != who.user_id:
            raise Forbidden("only the room's physician (or the clinic's admin) may delete "
                            "this visit")
    actor = who.username if who is not None else "api-key"
    try:
        result = purge(session, enc, DeletionReason.REQUEST, audio=True, transcript=True,
                       note=True, actor=actor, user_id=who.user_id if who else None,
                       now=utcnow(), detail=f"on request: {body.reason}")
    except LegalHoldError as err:
        raise Conflict(str(err)) from err
    return {"encounter_id": encounter_id, "deleted": result.as_dict()}


@router.put("/encounters/{encounter_id}/legal-hold")
def put_legal_hold(encounter_id: str, body: LegalHoldUpdate, session: SessionDep,
                   op: OperatorDep) -> dict[str, object]:
    enc, clinic_id = _encounter_in(session, encounter_id, op.clinics)
    enc.legal_hold = body.hold
    enc.legal_hold_reason = body.reason if body.hold else ""
    record(session, op.principal, AuditAction.LEGAL_HOLD, None,
           f"legal hold {'set' if body.hold else 'cleared'}: {body.reason}",
           clinic_id=clinic_id, actor=op.name, encounter_id=enc.id)
    return consent_view(enc)


def _clinic(s: Session, clinic_id: str, clinics: list[str] | None) -> Clinic:
    clinic = s.get(Clinic, clinic_id)
    if clinic is None or (clinics is not None and clinic.id not in clinics):
        raise NotFound("no such clinic")
    return clinic


def _policy(clinic: Clinic) -> PrivacyPolicy:
    return PrivacyPolicy(consent_required=clinic.consent_required,
                         audio_retention_days=clinic.audio_retention_days,
                         transcript_retention_days=clinic.transcript_retention_days)


@router.get("/admin/clinics/{clinic_id}/privacy")
def get_policy(clinic_id: str, session: SessionDep, op: OperatorDep) -> PrivacyPolicy:
    return _policy(_clinic(session, clinic_id, op.clinics))


@router.put("/admin/clinics/{clinic_id}/privacy")
def put_policy(clinic_id: str, body: PrivacyPolicy, session: SessionDep,
               op: OperatorDep) -> PrivacyPolicy:
    clinic = _clinic(session, clinic_id, op.clinics)
    clinic.consent_required = body.consent_required
    clinic.audio_retention_days = body.audio_retention_days
    clinic.transcript_retention_days = body.transcript_retention_days
    record(session, op.principal, AuditAction.PRIVACY_POLICY, None,
           body.model_dump_json(), clinic_id=clinic.id, actor=op.name)
    return _policy(clinic)


@router.post("/admin/retention/run")
def post_retention_run(body: RetentionRun, session: SessionDep, op: OperatorDep,
                       services: ServicesDep) -> dict[str, object]:
    grace = timedelta(minutes=services.settings.consent_grace_min)
    now = utcnow()
    done = []
    clinic_ids = op.clinics if op.clinics is not None else [None]
    for clinic_id in clinic_ids:
        done += run_retention(session, now, grace=grace, dry_run=body.dry_run,
                              clinic_id=clinic_id, actor=op.name,
                              max_hold=timedelta(
                                  minutes=services.settings.consent_hold_max_min))
    if body.dry_run:
        session.rollback()
    return {"dry_run": body.dry_run, "deleted": [p.as_dict() for p in done]}

