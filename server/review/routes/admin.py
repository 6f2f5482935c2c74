"""Admin (IT) API: users, roles, pools, routing, room physicians, rooms status, audit.

An admin user manages only the clinics where they hold the admin role; the IT
API key manages every clinic. Neither reaches notes or transcripts. Each change
commits before its response is sent, so a client can use what it made at once.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from sqlalchemy import select

from nlp.assemble import STYLES, TEMPLATES
from server.deps import ServicesDep, SessionDep
from server.models import Clinic, Device, Room
from server.review import audit, directory, notesettings
from server.review.deps import Operator, OperatorDep
from server.review.errors import NotFound
from server.review.models import AuditEvent, Membership, Pool, PoolMember, RoutingRule, User
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
    UserCreate,
    UserPublic,
)
from server.routes.registry import _device_public

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


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


@router.post("/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, session: SessionDep, op: OperatorDep) -> UserPublic:
    user = directory.add_user(session, body.username, body.password, body.clinic_id, body.role,
                              body.display_name, clinics=op.clinics)
    session.commit()
    return _user_public(session, user, op)


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
                             clinics=op.clinics)
    session.commit()
    return _user_public(session, directory.get_user(session, body.username), op)


@router.post("/pools", status_code=201, response_model=PoolPublic)
def create_pool(body: PoolCreate, session: SessionDep, op: OperatorDep) -> PoolPublic:
    pool = directory.add_pool(session, body.clinic_id, body.name, suite=body.suite,
                              specialty=body.specialty, turnaround_h=body.turnaround_h,
                              target_pct=body.target_pct, lease_min=body.lease_min,
                              pool_id=body.id, clinics=op.clinics)
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
    directory.add_pool_member(session, pool_id, body.username, clinics=op.clinics)
    session.commit()
    pool = session.get(Pool, pool_id)
    assert pool is not None
    return _pool_public(session, pool)


@router.delete("/pools/{pool_id}/members/{username}", status_code=204)
def remove_pool_member(pool_id: str, username: str, session: SessionDep,
                       op: OperatorDep) -> Response:
    directory.remove_pool_member(session, pool_id, username, clinics=op.clinics)
    session.commit()
    return Response(status_code=204)


@router.post("/routing-rules", status_code=201, response_model=RoutingRulePublic)
def create_rule(body: RoutingRuleCreate, session: SessionDep, op: OperatorDep) -> RoutingRule:
    rule = directory.add_routing_rule(session, body.pool_id, priority=body.priority,
                                      room_id=body.room_id, room_prefix=body.room_prefix,
                                      template=body.template, clinics=op.clinics)
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
    directory.assign_room_physician(session, body.room_id, body.username, clinics=op.clinics)
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
                limit: int = 200) -> list[AuditEvent]:
    """Who looked at or changed which patient data, newest first."""
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
