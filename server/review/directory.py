"""Users, roles, pools, routing rules and room physicians: what an admin manages.

Blocking functions over a session, shared by the admin API and
``roomscribe review``. ``clinics`` (when given) is the set of clinics the
calling admin may manage; ``None`` means every clinic (the IT API key, the CLI).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.models import Clinic, Room
from server.registry import slugify
from server.review.auth import hash_password
from server.review.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.review.lifecycle import Role
from server.review.models import (
    Membership,
    Pool,
    PoolMember,
    RoomPhysician,
    RoutingRule,
    User,
)

__all__ = [
    "add_membership",
    "add_pool",
    "add_pool_member",
    "add_routing_rule",
    "add_user",
    "assign_room_physician",
    "get_user",
    "remove_pool_member",
    "set_password",
]

Scope = Collection[str] | None


def _in_scope(clinic_id: str, clinics: Scope) -> None:
    if clinics is not None and clinic_id not in clinics:
        raise Forbidden(f"you do not administer clinic {clinic_id!r}")


def _clinic(s: Session, clinic_id: str, clinics: Scope) -> Clinic:
    _in_scope(clinic_id, clinics)
    clinic = s.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    return clinic


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None


def get_user(s: Session, user: str | int) -> User:
    row = (s.get(User, user) if isinstance(user, int)
           else s.scalars(select(User).where(User.username == user)).first())
    if row is None:
        raise NotFound(f"no user {user!r}")
    return row


def add_user(s: Session, username: str, password: str, clinic_id: str, role: str,
             display_name: str = "", clinics: Scope = None) -> User:
    _clinic(s, clinic_id, clinics)
    if not username or len(username) > 64 or not username.replace(".", "").replace(
            "-", "").replace("_", "").isalnum():
        raise InvalidInput("a username is 1-64 letters, digits, '.', '-' or '_'")
    if s.scalars(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"user {username!r} exists")
    try:
        password_hash = hash_password(password)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    user = User(username=username, display_name=display_name or username,
                password_hash=password_hash)
    s.add(user)
    s.flush()
    s.add(Membership(user_id=user.id, clinic_id=clinic_id, role=_role(role).value))
    s.flush()
    return user


def set_password(s: Session, username: str, password: str) -> User:
    user = get_user(s, username)
    try:
        user.password_hash = hash_password(password)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    return user


def add_membership(s: Session, username: str, clinic_id: str, role: str,
                   clinics: Scope = None) -> Membership:
    _clinic(s, clinic_id, clinics)
    user = get_user(s, username)
    row = s.get(Membership, (user.id, clinic_id))
    if row is None:
        row = Membership(user_id=user.id, clinic_id=clinic_id, role=_role(role).value)
        s.add(row)
    else:
        row.role = _role(role).value
    s.flush()
    return row


def add_pool(s: Session, clinic_id: str, name: str, *, suite: str = "", specialty: str = "",
             turnaround_h: float = 24.0, target_pct: float = 90.0, lease_min: float = 30.0,
             pool_id: str | None = None, clinics: Scope = None) -> Pool:
    _clinic(s, clinic_id, clinics)
    if not (0 < turnaround_h <= 24 * 30 and 0 < target_pct <= 100 and 1 <= lease_min <= 24 * 60):
        raise InvalidInput("turnaround 0-720 h, target 0-100 %, lease 1-1440 min")
    pid = pool_id or slugify(f"{clinic_id}-{name}")
    if s.get(Pool, pid) is not None:
        raise Conflict(f"pool {pid!r} exists")
    pool = Pool(id=pid, clinic_id=clinic_id, name=name, suite=suite, specialty=specialty,
                turnaround_h=turnaround_h, target_pct=target_pct, lease_min=lease_min)
    s.add(pool)
    s.flush()
    return pool


def _pool(s: Session, pool_id: str, clinics: Scope) -> Pool:
    pool = s.get(Pool, pool_id)
    if pool is None:
        raise NotFound(f"no pool {pool_id!r}")
    _in_scope(pool.clinic_id, clinics)
    return pool


def add_pool_member(s: Session, pool_id: str, username: str, clinics: Scope = None) -> PoolMember:
    pool = _pool(s, pool_id, clinics)
    user = get_user(s, username)
    if s.get(Membership, (user.id, pool.clinic_id)) is None:
        raise InvalidInput(f"{username} is not a member of clinic {pool.clinic_id}; "
                           "add the membership first")
    row = s.get(PoolMember, (pool_id, user.id))
    if row is None:
        row = PoolMember(pool_id=pool_id, user_id=user.id)
        s.add(row)
        s.flush()
    return row


def remove_pool_member(s: Session, pool_id: str, username: str, clinics: Scope = None) -> None:
    _pool(s, pool_id, clinics)
    user = get_user(s, username)
    s.execute(delete(PoolMember).where(PoolMember.pool_id == pool_id,
                                       PoolMember.user_id == user.id))


def add_routing_rule(s: Session, pool_id: str, *, priority: int = 100, room_id: str = "",
                     room_prefix: str = "", template: str = "",
                     clinics: Scope = None) -> RoutingRule:
    pool = _pool(s, pool_id, clinics)
    if room_id:
        room = s.get(Room, room_id)
        if room is None or room.clinic_id != pool.clinic_id:
            raise InvalidInput(f"room {room_id!r} is not a room of clinic {pool.clinic_id}")
    rule = RoutingRule(clinic_id=pool.clinic_id, pool_id=pool_id, priority=priority,
                       room_id=room_id, room_prefix=room_prefix, template=template)
    s.add(rule)
    s.flush()
    return rule


def assign_room_physician(s: Session, room_id: str, username: str,
                          clinics: Scope = None) -> RoomPhysician:
    room = s.get(Room, room_id)
    if room is None:
        raise NotFound(f"no room {room_id!r}")
    _in_scope(room.clinic_id, clinics)
    user = get_user(s, username)
    membership = s.get(Membership, (user.id, room.clinic_id))
    if membership is None or membership.role != Role.PHYSICIAN:
        raise InvalidInput(f"{username} is not a physician of clinic {room.clinic_id}")
    row = s.get(RoomPhysician, room_id)
    if row is None:
        row = RoomPhysician(room_id=room_id, user_id=user.id)
        s.add(row)
    else:
        row.user_id = user.id
    s.flush()
    return row
