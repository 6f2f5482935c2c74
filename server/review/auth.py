"""Who is asking: passwords (argon2id), browser sessions, API tokens, CSRF.

Passwords are hashed with argon2id (``argon2-cffi``). A browser login makes a
server-side session: the cookie carries a random token, the table keeps only
its SHA-256. Cookie-authenticated changes must carry a CSRF token, an HMAC of
the session under the server's secret key. API tokens (``rsu_…``) act as their
user for scripts and integrations and need no CSRF token. Blocking functions
over a session; ``now`` is passed in.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.review.errors import AuthError, Forbidden
from server.review.lifecycle import Actor, Role
from server.review.models import Membership, User, UserSession, UserToken
from server.security import hash_secret, new_token

__all__ = [
    "Principal",
    "create_user_token",
    "csrf_token",
    "hash_password",
    "load_principal",
    "login",
    "logout",
    "principal_from_session",
    "principal_from_token",
    "verify_password",
]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")
MAX_FAILURES = 10
LOCKOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class Principal:
    """A logged-in user and their role in each clinic they belong to."""

    user_id: int
    username: str
    display_name: str
    roles: dict[str, Role] = field(default_factory=dict)
    via: str = "session"  # session | token
    session_hash: str = ""  # for the CSRF token; empty for API tokens

    def role_in(self, clinic_id: str) -> Role | None:
        return self.roles.get(clinic_id)

    def actor(self, clinic_id: str) -> Actor:
        role = self.role_in(clinic_id)
        if role is None:
            raise Forbidden("you are not a member of this clinic")
        return Actor(self.user_id, role)

    def clinics(self, *roles: Role) -> list[str]:
        return sorted(c for c, r in self.roles.items() if not roles or r in roles)

    @property
    def name(self) -> str:
        return self.display_name or self.username


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def load_principal(s: Session, user: User, via: str, session_hash: str = "") -> Principal:
    roles = {m.clinic_id: Role(m.role)
             for m in s.scalars(select(Membership).where(Membership.user_id == user.id))}
    return Principal(user.id, user.username, user.display_name, roles, via, session_hash)


def login(s: Session, username: str, password: str, now: datetime,
          ttl: timedelta) -> tuple[str, Principal]:
    """Check the password and open a session. Returns (cookie token, principal)."""
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same time as a real check
        raise AuthError("wrong username or password")
    if user.disabled_at is not None:
        raise AuthError("this account is disabled")
    if user.locked_until is not None and _aware(user.locked_until) > now:
        raise AuthError("too many failed logins; try again in a few minutes")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        s.commit()  # the count survives the error the caller raises
        raise AuthError("wrong username or password")
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = new_token("rss")
    s.add(UserSession(token_hash=hash_secret(token), user_id=user.id, created_at=now,
                      expires_at=now + ttl))
    s.flush()
    return token, load_principal(s, user, "session", hash_secret(token))


def logout(s: Session, token: str, now: datetime) -> None:
    row = s.scalars(select(UserSession).where(UserSession.token_hash == hash_secret(token))).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = now


def principal_from_session(s: Session, token: str, now: datetime) -> Principal | None:
    digest = hash_secret(token)
    row = s.scalars(select(UserSession).where(UserSession.token_hash == digest)).first()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    user = s.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return load_principal(s, user, "session", digest)


def principal_from_token(s: Session, token: str) -> Principal | None:
    row = s.scalars(select(UserToken).where(UserToken.token_hash == hash_secret(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = s.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return load_principal(s, user, "token")


def create_user_token(s: Session, user_id: int, name: str) -> str:
    token = new_token("rsu")
    s.add(UserToken(token_hash=hash_secret(token), user_id=user_id, name=name))
    s.flush()
    return token


def csrf_token(secret: str, session_hash: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_hash}".encode(), sha256).hexdigest()
