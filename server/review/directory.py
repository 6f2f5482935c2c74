"""Users, roles, pools, routing rules and room physicians: what an admin manages.

Blocking functions over a session, shared by the admin API and
``roomscribe review``. ``clinics`` (when given) is the set of clinics the
calling admin may manage; ``None`` means every clinic (the IT API key, the CLI).
``who`` / ``actor`` name the admin for the audit log: every change here writes an
audit row (``old -> new``) in each clinic it touches.

No self-granted access to patient data. Over the API (``trusted=False``):

- an admin cannot give themselves a clinical role (physician, partner), nor give one
  to an account that holds no clinical role yet (an admin-only account's password
  may be one an admin chose);
- a clinical account is made with a random one-time password that the API returns
  once, to be handed to its user and changed by them (``POST /api/v1/auth/password``);
  an admin-chosen password for a clinical account is refused. (There is no
  "must change at first login" flag: that needs a schema column.)

The CLI is ``trusted``: whoever runs it holds the database itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.models import Clinic, Room, utcnow
from server.registry import slugify
from server.review import audit
from server.review.audit import AuditAction
from server.review.auth import Principal, end_sessions, hash_password
from server.review.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.review.lifecycle import Role
from server.review.models import (
    Membership,
    Pool,
    PoolMember,
    RoomPhysician,
    RoutingRule,
    User,
    UserToken,
)

__all__ = [
    "CLINICAL_ROLES",
    "add_membership",
    "add_pool",
    "add_pool_member",
    "add_routing_rule",
    "add_user",
    "assign_room_physician",
    "audit_user",
    "disable_user",
    "enable_user",
    "get_user",
    "list_tokens",
    "new_password",
    "remove_membership",
    "remove_pool_member",
    "revoke_token",
    "set_password",
]

Scope = Collection[str] | None
#: Roles that see patient data.
CLINICAL_ROLES = frozenset({Role.PHYSICIAN, Role.PARTNER})


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


def _memberships(s: Session, user_id: int) -> dict[str, str]:
    return {m.clinic_id: m.role
            for m in s.scalars(select(Membership).where(Membership.user_id == user_id))}


def _record(s: Session, action: AuditAction, clinic_ids: Collection[str], detail: str,
            who: Principal | None, actor: str) -> None:
    """One audit row in each clinic the change touches (so each clinic's admins see it)."""
    for clinic_id in sorted(set(clinic_ids)) or [""]:
        audit.record(s, who, action, detail=detail, clinic_id=clinic_id, actor=actor)


def audit_user(s: Session, user_id: int, action: AuditAction, detail: str, *,
               who: Principal | None = None, actor: str = "") -> None:
    """Audit a change to an account in every clinic it belongs to."""
    _record(s, action, _memberships(s, user_id), detail, who, actor)


def _manages_user(s: Session, user: User, clinics: Scope, *, wholly: bool) -> dict[str, str]:
    """The user's memberships, if the admin may manage them: ``wholly`` = every one of
    their clinics is the admin's (account-wide changes); else at least one."""
    roles = _memberships(s, user.id)
    if clinics is None:
        return roles
    mine = [c for c in roles if c in clinics]
    if not mine or (wholly and len(mine) < len(roles)):
        if not mine:
            raise NotFound(f"no user {user.username!r}")
        raise Forbidden(f"{user.username} also belongs to clinics you do not administer; "
                        "ask IT, or remove their membership of yours")
    return roles


def _not_self(who: Principal | None, user: User, doing: str) -> None:
    if who is not None and who.user_id == user.id:
        raise Forbidden(f"you cannot {doing} your own account")


def _guard_clinical_grant(s: Session, user: User, role: Role, who: Principal | None,
                          trusted: bool) -> None:
    if role not in CLINICAL_ROLES:
        return
    if who is not None and who.user_id == user.id:
        raise Forbidden("you cannot give yourself a clinical role; patient data needs an "
                        "account made for its user")
    if not trusted and not any(Role(r) in CLINICAL_ROLES
                               for r in _memberships(s, user.id).values()):
        raise Forbidden(f"{user.username} holds no clinical role: make a new physician or "
                        "partner account (it gets a one-time password) instead")


def new_password() -> str:
    """A random password, shown once (about 96 bits)."""
    return secrets.token_urlsafe(12)


def get_user(s: Session, user: str | int) -> User:
    row = (s.get(User, user) if isinstance(user, int)
           else s.scalars(select(User).where(User.username == user)).first())
    if row is None:
        raise NotFound(f"no user {user!r}")
    return row


def add_user(s: Session, username: str, password: str, clinic_id: str, role: str,
             display_name: str = "", clinics: Scope = None, *, who: Principal | None = None,
             actor: str = "", trusted: bool = True, chosen: bool = True) -> User:
    """Make an account with its first membership. ``chosen``: the caller chose the
    password (else it is a :func:`new_password` to show once); untrusted callers (the
    API) may not choose a clinical account's password."""
    _clinic(s, clinic_id, clinics)
    role_ = _role(role)
    if not username or len(username) > 64 or not username.replace(".", "").replace(
            "-", "").replace("_", "").isalnum():
        raise InvalidInput("a username is 1-64 letters, digits, '.', '-' or '_'")
    if s.scalars(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"user {username!r} exists")
    if chosen and not trusted and role_ in CLINICAL_ROLES:
        raise InvalidInput("an admin may not choose a physician's or partner's password: "
                           "leave it out, and hand the one-time password to its user")
    try:
        password_hash = hash_password(password)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    user = User(username=username, display_name=display_name or username,
                password_hash=password_hash)
    s.add(user)
    s.flush()
    s.add(Membership(user_id=user.id, clinic_id=clinic_id, role=role_.value))
    s.flush()
    _record(s, AuditAction.USER_ADD, [clinic_id],
            f"user {username} in {clinic_id}: none -> {role_.value}"
            + ("" if chosen else " (one-time password)"), who, actor)
    return user


def set_password(s: Session, username: str, password: str | None = None,
                 clinics: Scope = None, *, who: Principal | None = None, actor: str = "",
                 now: datetime | None = None) -> tuple[User, str]:
    """An admin's reset: ``password`` None = a random one. Every session and API token
    of the user ends. Returns (user, the new password)."""
    user = get_user(s, username)
    roles = _manages_user(s, user, clinics, wholly=True)
    _not_self(who, user, "reset the password of (change it with your old one)")
    password = new_password() if password is None else password
    try:
        user.password_hash = hash_password(password)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    ended = end_sessions(s, user.id, now or utcnow())
    _record(s, AuditAction.PASSWORD, roles, f"user {username}: password reset by an admin; "
            f"{ended} sessions/tokens ended", who, actor)
    return user, password


def disable_user(s: Session, username: str, clinics: Scope = None, *,
                 who: Principal | None = None, actor: str = "",
                 now: datetime | None = None) -> User:
    """The account can no longer log in; its sessions and API tokens end at once."""
    user = get_user(s, username)
    roles = _manages_user(s, user, clinics, wholly=True)
    _not_self(who, user, "disable")
    now = now or utcnow()
    ended = end_sessions(s, user.id, now)
    if user.disabled_at is None:
        user.disabled_at = now
        _record(s, AuditAction.USER_DISABLE, roles, f"user {username}: enabled -> disabled; "
                f"{ended} sessions/tokens ended", who, actor)
    s.flush()
    return user


def enable_user(s: Session, username: str, clinics: Scope = None, *,
                who: Principal | None = None, actor: str = "") -> User:
    """Lets the account log in again (its old sessions and tokens stay revoked)."""
    user = get_user(s, username)
    roles = _manages_user(s, user, clinics, wholly=True)
    if user.disabled_at is not None:
        user.disabled_at = None
        user.failed_logins, user.locked_until = 0, None
        _record(s, AuditAction.USER_ENABLE, roles, f"user {username}: disabled -> enabled",
                who, actor)
    s.flush()
    return user


def add_membership(s: Session, username: str, clinic_id: str, role: str,
                   clinics: Scope = None, *, who: Principal | None = None, actor: str = "",
                   trusted: bool = True) -> Membership:
    _clinic(s, clinic_id, clinics)
    user = get_user(s, username)
    role_ = _role(role)
    row = s.get(Membership, (user.id, clinic_id))
    old = row.role if row is not None else "none"
    if old == role_.value:
        return row  # type: ignore[return-value]
    _guard_clinical_grant(s, user, role_, who, trusted)
    if row is None:
        row = Membership(user_id=user.id, clinic_id=clinic_id, role=role_.value)
        s.add(row)
    else:
        row.role = role_.value
    s.flush()
    _record(s, AuditAction.MEMBERSHIP, [clinic_id],
            f"user {username} in {clinic_id}: {old} -> {role_.value}", who, actor)
    return row


def remove_membership(s: Session, username: str, clinic_id: str, clinics: Scope = None, *,
                      who: Principal | None = None, actor: str = "") -> None:
    """The user leaves the clinic (and its pools); what they could see there is gone at
    their next request. Room ownership stays until an admin reassigns the room."""
    _clinic(s, clinic_id, clinics)
    user = get_user(s, username)
    row = s.get(Membership, (user.id, clinic_id))
    if row is None:
        raise NotFound(f"{username} is not a member of clinic {clinic_id}")
    old = row.role
    s.delete(row)
    pools = select(Pool.id).where(Pool.clinic_id == clinic_id)
    s.execute(delete(PoolMember).where(PoolMember.user_id == user.id,
                                       PoolMember.pool_id.in_(pools)))
    s.flush()
    _record(s, AuditAction.MEMBERSHIP_REMOVE, [clinic_id],
            f"user {username} in {clinic_id}: {old} -> none", who, actor)


def list_tokens(s: Session, username: str, clinics: Scope = None) -> list[UserToken]:
    """The user's API tokens (hashes are never shown), newest first."""
    user = get_user(s, username)
    _manages_user(s, user, clinics, wholly=False)
    return list(s.scalars(select(UserToken).where(UserToken.user_id == user.id)
                          .order_by(UserToken.id.desc())))


def revoke_token(s: Session, username: str, token_id: int | None = None, name: str = "",
                 clinics: Scope = None, *, who: Principal | None = None, actor: str = "",
                 now: datetime | None = None) -> list[UserToken]:
    """Revoke one of the user's API tokens, by id or (every open one with that) name."""
    user = get_user(s, username)
    roles = _manages_user(s, user, clinics, wholly=False)
    stmt = select(UserToken).where(UserToken.user_id == user.id,
                                   UserToken.revoked_at.is_(None))
    if token_id is not None:
        stmt = stmt.where(UserToken.id == token_id)
    elif name:
        stmt = stmt.where(UserToken.name == name)
    else:
        raise InvalidInput("name the token: its id or its name")
    rows = list(s.scalars(stmt))
    if not rows:
        raise NotFound(f"{username} has no open API token "
                       f"{token_id if token_id is not None else repr(name)}")
    now = now or utcnow()
    for row in rows:
        row.revoked_at = now
        _record(s, AuditAction.TOKEN_REVOKE, roles,
                f"user {username} token {row.id} ({row.name}): active -> revoked", who, actor)
    s.flush()
    return rows


def add_pool(s: Session, clinic_id: str, name: str, *, suite: str = "", specialty: str = "",
             turnaround_h: float = 24.0, target_pct: float = 90.0, lease_min: float = 30.0,
             pool_id: str | None = None, clinics: Scope = None,
             who: Principal | None = None, actor: str = "") -> Pool:
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
    _record(s, AuditAction.POOL, [clinic_id], f"pool {pid}: none -> {name!r} (turnaround "
            f"{turnaround_h:g} h, target {target_pct:g} %, lease {lease_min:g} min)", who, actor)
    return pool


def _pool(s: Session, pool_id: str, clinics: Scope) -> Pool:
    pool = s.get(Pool, pool_id)
    if pool is None:
        raise NotFound(f"no pool {pool_id!r}")
    _in_scope(pool.clinic_id, clinics)
    return pool


def add_pool_member(s: Session, pool_id: str, username: str, clinics: Scope = None, *,
                    who: Principal | None = None, actor: str = "") -> PoolMember:
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
        _record(s, AuditAction.POOL_MEMBER, [pool.clinic_id],
                f"pool {pool_id} member {username}: out -> in", who, actor)
    return row


def remove_pool_member(s: Session, pool_id: str, username: str, clinics: Scope = None, *,
                       who: Principal | None = None, actor: str = "") -> None:
    pool = _pool(s, pool_id, clinics)
    user = get_user(s, username)
    row = s.get(PoolMember, (pool_id, user.id))
    if row is not None:
        s.delete(row)
        s.flush()
        _record(s, AuditAction.POOL_MEMBER, [pool.clinic_id],
                f"pool {pool_id} member {username}: in -> out", who, actor)


def add_routing_rule(s: Session, pool_id: str, *, priority: int = 100, room_id: str = "",
                     room_prefix: str = "", template: str = "",
                     clinics: Scope = None, who: Principal | None = None,
                     actor: str = "") -> RoutingRule:
    pool = _pool(s, pool_id, clinics)
    if room_id:
        room = s.get(Room, room_id)
        if room is None or room.clinic_id != pool.clinic_id:
            raise InvalidInput(f"room {room_id!r} is not a room of clinic {pool.clinic_id}")
    rule = RoutingRule(clinic_id=pool.clinic_id, pool_id=pool_id, priority=priority,
                       room_id=room_id, room_prefix=room_prefix, template=template)
    s.add(rule)
    s.flush()
    _record(s, AuditAction.ROUTING_RULE, [pool.clinic_id],
            f"rule {rule.id}: none -> pool {pool_id}, priority {priority}, room "
            f"{room_id or '*'}, prefix {room_prefix or '*'}, template {template or '-'}",
            who, actor)
    return rule


def assign_room_physician(s: Session, room_id: str, username: str, clinics: Scope = None, *,
                          who: Principal | None = None, actor: str = "") -> RoomPhysician:
    room = s.get(Room, room_id)
    if room is None:
        raise NotFound(f"no room {room_id!r}")
    _in_scope(room.clinic_id, clinics)
    user = get_user(s, username)
    membership = s.get(Membership, (user.id, room.clinic_id))
    if membership is None or membership.role != Role.PHYSICIAN:
        raise InvalidInput(f"{username} is not a physician of clinic {room.clinic_id}")
    row = s.get(RoomPhysician, room_id)
    old = "none"
    if row is None:
        row = RoomPhysician(room_id=room_id, user_id=user.id)
        s.add(row)
    else:
        previous = s.get(User, row.user_id)
        old = previous.username if previous is not None else str(row.user_id)
        row.user_id = user.id
    s.flush()
    if old != username:
        _record(s, AuditAction.ROOM_PHYSICIAN, [room.clinic_id],
                f"room {room_id} physician: {old} -> {username}", who, actor)
    return row
