"""Admin (IT) API: users, roles, pools, routing, room physicians, rooms status, audit.

An admin user manages only the clinics where they hold the admin role; the IT
API key manages every clinic. Neither reaches notes or transcripts, nor gives
itself a way to (``server/review/directory.py``: no clinical role for yourself or
an admin-only account; a physician's or partner's password is a one-time one
this API returns once). Every change is audited (``old -> new``) and commits
before its response is sent, so a client can use what it made at once.

Taking access away: ``POST /users/{u}/disable`` (every session and API token ends
at once) and ``/enable``; ``DELETE /users/{u}/memberships/{clinic}``;
``POST /users/{u}/password`` (a reset: a one-time password, every session and
token ends); ``GET /users/{u}/tokens`` and ``DELETE /users/{u}/tokens/{id}``.
IT API keys are listed and revoked under ``/api/v1/api-keys`` (server/routes/registry.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from nlp.assemble import STYLES, TEMPLATES
from server.deps import ServicesDep, SessionDep
from server.models import Clinic, Device, Room
from server.review import audit, directory, notesettings
from server.review.deps import Operator, OperatorDep
from server.review.errors import NotFound
from server.review.models import Membership, Pool, PoolMember, RoutingRule, User
from server.review.routes.auth import TokenPublic, token_public
from server.review.schemas import (
    AuditPublic,
    MembershipCreate,
    NoteSettingsPublic,
    NoteSettingsUpdate,
    PoolCreate,
    PoolMemberCreate,
    PoolPublic,
    RoomPhysicianCreate,
    RoomStatusPublic,
    RoutingRuleCreate,
    RoutingRulePublic,
    UserPublic,
)
from server.routes.registry import _device_public

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class UserCreate(BaseModel):
    """A new account. Leave ``password`` out for a one-time one (required for a
    physician or partner: an admin may not choose their password)."""

    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(None, min_length=8, max_length=1024)
    clinic_id: str
    role: str = Field(pattern=r"^(physician|partner|admin)$")
    display_name: str = Field("", max_length=200)


class UserCreated(UserPublic):
    password: str | None = None  # the one-time password, shown once; None if chosen


class PasswordReset(BaseModel):
    username: str
    password: str  # one-time, shown once


def _user_public(session: SessionDep, user: User, op: Operator) -> UserPublic:
    rows = session.scalars(select(Membership).where(Membership.user_id == user.id))
    members = [{"clinic_id": m.clinic_id, "role": m.role} for m in rows
               if op.clinics is None or m.clinic_id in op.clinics]
    return UserPublic.model_validate({"id": user.id, "username": user.username,
                                      "display_name": user.display_name,
                                      "disabled": user.disabled_at is not None,
                                      "memberships": members})


def _pool_public(session: SessionDep, pool: Pool) -> PoolPublic:
    members = session.scalars(select(User.username).join(PoolMember,
                                                         PoolMember.user_id == User.id)
                              .where(PoolMember.pool_id == pool.id).order_by(User.username))
    return PoolPublic(id=pool.id, clinic_id=pool.clinic_id, name=pool.name, suite=pool.suite,
                      specialty=pool.specialty, turnaround_h=pool.turnaround_h,
                      target_pct=pool.target_pct, lease_min=pool.lease_min,
                      members=list(members))


@router.post("/users", status_code=201, response_model=UserCreated)
def create_user(body: UserCreate, session: SessionDep, op: OperatorDep) -> UserCreated:
    password = body.password or directory.new_password()
    user = directory.add_user(session, body.username, password, body.clinic_id, body.role,
                              body.display_name, clinics=op.clinics, who=op.principal,
                              actor=op.name, trusted=False, chosen=body.password is not None)
    session.commit()
    public = _user_public(session, user, op)
    return UserCreated(**public.model_dump(),
                       password=None if body.password is not None else password)


@router.get("/users", response_model=list[UserPublic])
def list_users(session: SessionDep, op: OperatorDep) -> list[UserPublic]:
    stmt = select(User).order_by(User.username)
    if op.clinics is not None:
        stmt = stmt.where(User.id.in_(select(Membership.user_id)
                                      .where(Membership.clinic_id.in_(op.clinics))))
    return [_user_public(session, u, op) for u in session.scalars(stmt)]


@router.post("/memberships", status_code=201, response_model=UserPublic)
def add_membership(body: MembershipCreate, session: SessionDep, op: OperatorDep) -> UserPublic:
    directory.add_membership(session, body.username, body.clinic_id, body.role,
                             clinics=op.clinics, who=op.principal, actor=op.name, trusted=False)
    session.commit()
    return _user_public(session, directory.get_user(session, body.username), op)


@router.delete("/users/{username}/memberships/{clinic_id}", status_code=204)
def remove_membership(username: str, clinic_id: str, session: SessionDep,
                      op: OperatorDep) -> Response:
    """The user leaves the clinic and its pools (their next request sees nothing of it)."""
    directory.remove_membership(session, username, clinic_id, clinics=op.clinics,
                                who=op.principal, actor=op.name)
    session.commit()
    return Response(status_code=204)


@router.post("/users/{username}/disable", response_model=UserPublic)
def disable_user(username: str, session: SessionDep, op: OperatorDep) -> UserPublic:
    """No more logins; every session and API token of the user ends at once."""
    user = directory.disable_user(session, username, clinics=op.clinics, who=op.principal,
                                  actor=op.name)
    session.commit()
    return _user_public(session, user, op)


@router.post("/users/{username}/enable", response_model=UserPublic)
def enable_user(username: str, session: SessionDep, op: OperatorDep) -> UserPublic:
    """Logins work again (the sessions and tokens ended by disabling stay ended)."""
    user = directory.enable_user(session, username, clinics=op.clinics, who=op.principal,
                                 actor=op.name)
    session.commit()
    return _user_public(session, user, op)


@router.post("/users/{username}/password", response_model=PasswordReset)
def reset_password(username: str, session: SessionDep, op: OperatorDep) -> PasswordReset:
    """A new one-time password (shown once) for a user who lost theirs; every session
    and API token of the user ends. Your own password: POST /api/v1/auth/password."""
    _, password = directory.set_password(session, username, None, clinics=op.clinics,
                                         who=op.principal, actor=op.name)
    session.commit()
    return PasswordReset(username=username, password=password)


@router.get("/users/{username}/tokens", response_model=list[TokenPublic])
def list_user_tokens(username: str, session: SessionDep, op: OperatorDep) -> list[TokenPublic]:
    """The user's API tokens, newest first (never the tokens themselves)."""
    return [token_public(t) for t in directory.list_tokens(session, username,
                                                           clinics=op.clinics)]


@router.delete("/users/{username}/tokens/{token_id}", status_code=204)
def revoke_user_token(username: str, token_id: int, session: SessionDep,
                      op: OperatorDep) -> Response:
    """Revoke one of the user's API tokens (it stops working at once)."""
    directory.revoke_token(session, username, token_id, clinics=op.clinics, who=op.principal,
                           actor=op.name)
    session.commit()
    return Response(status_code=204)


@router.post("/pools", status_code=201, response_model=PoolPublic)
def create_pool(body: PoolCreate, session: SessionDep, op: OperatorDep) -> PoolPublic:
    pool = directory.add_pool(session, body.clinic_id, body.name, suite=body.suite,
                              specialty=body.specialty, turnaround_h=body.turnaround_h,
                              target_pct=body.target_pct, lease_min=body.lease_min,
                              pool_id=body.id, clinics=op.clinics, who=op.principal,
                              actor=op.name)
    session.commit()
    return _pool_public(session, pool)


@router.get("/pools", response_model=list[PoolPublic])
def list_pools(session: SessionDep, op: OperatorDep) -> list[PoolPublic]:
    stmt = select(Pool).order_by(Pool.clinic_id, Pool.name)
    if op.clinics is not None:
        stmt = stmt.where(Pool.clinic_id.in_(op.clinics))
    return [_pool_public(session, p) for p in session.scalars(stmt)]


@router.post("/pools/{pool_id}/members", status_code=201, response_model=PoolPublic)
def add_pool_member(pool_id: str, body: PoolMemberCreate, session: SessionDep,
                    op: OperatorDep) -> PoolPublic:
    directory.add_pool_member(session, pool_id, body.username, clinics=op.clinics,
                              who=op.principal, actor=op.name)
    session.commit()
    pool = session.get(Pool, pool_id)
    assert pool is not None
    return _pool_public(session, pool)


@router.delete("/pools/{pool_id}/members/{username}", status_code=204)
def remove_pool_member(pool_id: str, username: str, session: SessionDep,
                       op: OperatorDep) -> Response:
    directory.remove_pool_member(session, pool_id, username, clinics=op.clinics,
                                 who=op.principal, actor=op.name)
    session.commit()
    return Response(status_code=204)


@router.post("/routing-rules", status_code=201, response_model=RoutingRulePublic)
def create_rule(body: RoutingRuleCreate, session: SessionDep, op: OperatorDep) -> RoutingRule:
    rule = directory.add_routing_rule(session, body.pool_id, priority=body.priority,
                                      room_id=body.room_id, room_prefix=body.room_prefix,
                                      template=body.template, clinics=op.clinics,
                                      who=op.principal, actor=op.name)
    session.commit()
    return rule


@router.get("/routing-rules", response_model=list[RoutingRulePublic])
def list_rules(session: SessionDep, op: OperatorDep) -> list[RoutingRule]:
    stmt = select(RoutingRule).order_by(RoutingRule.clinic_id, RoutingRule.priority)
    if op.clinics is not None:
        stmt = stmt.where(RoutingRule.clinic_id.in_(op.clinics))
    return list(session.scalars(stmt))


def _note_settings_public(session: SessionDep, services: ServicesDep,
                          clinic_id: str) -> NoteSettingsPublic:
    note = notesettings.note_settings(session, clinic_id)
    own = sorted(p.stem for p in services.settings.note_templates.glob("*.toml"))
    return NoteSettingsPublic(clinic_id=clinic_id, template=note.template, style=note.style,
                              templates=[*TEMPLATES, *own], styles=list(STYLES))


@router.get("/clinics/{clinic_id}/note-settings", response_model=NoteSettingsPublic)
def get_note_settings(clinic_id: str, session: SessionDep, services: ServicesDep,
                      op: OperatorDep) -> NoteSettingsPublic:
    """The clinic's note template and style, and the choices."""
    if op.clinics is not None and clinic_id not in op.clinics:
        raise NotFound(f"no clinic {clinic_id!r}")
    if session.get(Clinic, clinic_id) is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    return _note_settings_public(session, services, clinic_id)


@router.put("/clinics/{clinic_id}/note-settings", response_model=NoteSettingsPublic)
def put_note_settings(clinic_id: str, body: NoteSettingsUpdate, session: SessionDep,
                      services: ServicesDep, op: OperatorDep) -> NoteSettingsPublic:
    """Choose the template and/or style of the clinic's drafts from now on (audited)."""
    notesettings.set_note_settings(session, clinic_id,
                                   templates_dir=services.settings.note_templates,
                                   template=body.template, style=body.style,
                                   who=op.principal, actor=op.name, clinics=op.clinics)
    session.commit()
    return _note_settings_public(session, services, clinic_id)


@router.post("/room-physicians", status_code=201)
def assign_room(body: RoomPhysicianCreate, session: SessionDep,
                op: OperatorDep) -> dict[str, str]:
    """The physician who owns (signs) the encounters of a room from now on."""
    directory.assign_room_physician(session, body.room_id, body.username, clinics=op.clinics,
                                    who=op.principal, actor=op.name)
    session.commit()
    return {"room_id": body.room_id, "physician": body.username}


def rooms_status(session: SessionDep, services: ServicesDep,
                 clinics: list[str] | None) -> list[RoomStatusPublic]:
    stmt = select(Room).order_by(Room.clinic_id, Room.name)
    if clinics is not None:
        stmt = stmt.where(Room.clinic_id.in_(clinics))
    out = []
    for room in session.scalars(stmt):
        devices = list(session.scalars(select(Device).where(Device.room_id == room.id)
                                       .order_by(Device.created_at)))
        if not devices:
            out.append(RoomStatusPublic(room_id=room.id, room_name=room.name,
                                        clinic_id=room.clinic_id, device_id=None,
                                        device_name="", state="no-device", last_seen_at=None))
        for device in devices:
            pub = _device_public(device, services)
            out.append(RoomStatusPublic(room_id=room.id, room_name=room.name,
                                        clinic_id=room.clinic_id, device_id=device.id,
                                        device_name=device.name, state=pub.state,
                                        last_seen_at=pub.last_seen_at))
    return out


@router.get("/rooms", response_model=list[RoomStatusPublic])
def list_rooms_status(session: SessionDep, services: ServicesDep,
                      op: OperatorDep) -> list[RoomStatusPublic]:
    """Each room's device: listening / idle / muted / offline (or not enrolled)."""
    return rooms_status(session, services, op.clinics)


@router.get("/audit", response_model=list[AuditPublic])
def query_audit(session: SessionDep, op: OperatorDep, clinic_id: str | None = None,
                username: str | None = None, action: str | None = None,
                item_id: str | None = None, encounter_id: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[audit.AuditRow]:
    """Who looked at or changed which patient data, newest first. Patient text (return
    comments, amendment reasons) is shown only as its length."""
    clinics = op.clinics
    if clinic_id:
        if clinics is not None and clinic_id not in clinics:
            raise NotFound(f"no clinic {clinic_id!r}")
        if session.get(Clinic, clinic_id) is None:
            raise NotFound(f"no clinic {clinic_id!r}")
        clinics = [clinic_id]
    user_id = directory.get_user(session, username).id if username else None
    return audit.query(session, clinics=clinics, user_id=user_id, action=action, item_id=item_id,
                       encounter_id=encounter_id, since=since, until=until, limit=limit)
