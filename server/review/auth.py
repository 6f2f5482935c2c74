"""Who is asking: passwords (argon2id), browser sessions, API tokens, CSRF.

Passwords are hashed with argon2id (``argon2-cffi``). A browser login makes a
server-side session: the cookie carries a random token, the table keeps only
its SHA-256. Cookie-authenticated changes must carry a CSRF token, an HMAC of
the session under the server's secret key. API tokens (``rsu_…``) act as their
user for scripts and integrations and need no CSRF token. Blocking functions
over a session; ``now`` is passed in.

Logins (:func:`login`) resist guessing:

- every refusal looks the same: unknown user, wrong password, locked or disabled
  account all give ``wrong username or password`` after one argon2 verification (a
  dummy one where there is no real hash to check), so neither the message nor the
  time tells which usernames exist;
- each attempt is *reserved* before its password is checked, by one atomic
  ``UPDATE users SET failed_logins = failed_logins + 1 ... RETURNING`` on an account
  that is not locked; the attempt that reaches ``max_failures`` locks the account in
  the same transaction. Parallel guesses therefore get exactly ``max_failures``
  password checks, on SQLite (one writer at a time) and PostgreSQL (row lock) alike;
- the lock expires (``lockout_s``, doubling with each further lock, capped at
  ``lockout_max_s``; a lock more than a day old is forgotten), and a good password
  after it works and clears the count;
- the lock holds *untrusted* clients only: a browser that logged in to the account
  before carries a device cookie (:func:`device_cookie`: a nonce and an HMAC of it with
  the username under the server's key), and its attempts are ``trusted``: they skip
  the account counter and lock and are limited per device instead
  (``ratelimit.LoginGuard.devices``). A stranger can lock a named account for
  strangers, never for its owner's own browser (OWASP's device-cookie scheme);
- password hashing runs through a bounded gate (``server/review/ratelimit.py``).

Changing a password (:func:`change_password`, or an admin's reset in
``directory.set_password``) ends the user's other sessions and revokes their API
tokens (:func:`end_sessions`).
"""

from __future__ import annotations

import hmac
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, Result, case, or_, select, update
from sqlalchemy.orm import Session

from server.review.errors import AuthError, Forbidden, InvalidInput
from server.review.lifecycle import Actor, Role
from server.review.models import Membership, User, UserSession, UserToken
from server.review.ratelimit import HashGate, lock_duration
from server.security import hash_secret, new_token
from server.settings import Settings

__all__ = [
    "WRONG_LOGIN",
    "LockPolicy",
    "Principal",
    "change_password",
    "create_user_token",
    "csrf_token",
    "device_cookie",
    "device_nonce",
    "end_sessions",
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
#: The one answer to every refused login (see the module docstring).
WRONG_LOGIN = "wrong username or password"
#: A lock older than this is forgotten: the next lock starts the back-off again.
_FORGET_LOCK = timedelta(days=1)


@dataclass(frozen=True)
class LockPolicy:
    """When an account locks, and for how long (Settings.login_*)."""

    max_failures: int = MAX_FAILURES
    lockout_s: float = LOCKOUT.total_seconds()
    lockout_max_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LockPolicy:
        return cls(settings.login_max_failures, settings.login_lockout_s,
                   settings.login_lockout_max_s)


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


def _reserve_attempt(s: Session, user_id: int, now: datetime, policy: LockPolicy) -> bool:
    """Count one password check against the account, atomically; False if it is locked.

    The attempt that reaches a multiple of ``max_failures`` locks the account in the
    same transaction (the caller commits before hashing), so the attempts racing it
    find the lock and never reach a password check."""
    free = or_(User.locked_until.is_(None), User.locked_until <= now)
    stale = User.locked_until < now - _FORGET_LOCK
    count = s.execute(
        update(User).where(User.id == user_id, free)
        .values(failed_logins=case((stale, 1), else_=User.failed_logins + 1),
                locked_until=case((stale, None), else_=User.locked_until))
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if count is None:
        return False
    if count % policy.max_failures == 0:
        until = now + lock_duration(count // policy.max_failures, policy.lockout_s,
                                    policy.lockout_max_s)
        s.execute(update(User).where(User.id == user_id).values(locked_until=until)
                  .execution_options(synchronize_session=False))
    return True


def _clear_attempts(s: Session, user_id: int) -> None:
    s.execute(update(User).where(User.id == user_id).values(failed_logins=0, locked_until=None)
              .execution_options(synchronize_session=False))


def check_password(s: Session, user: User | None, password: str, now: datetime,
                   policy: LockPolicy, gate: HashGate | None = None, *,
                   trusted: bool = False, admitted: bool = False) -> bool:
    """One guarded password check: the attempt is reserved (and committed) first, the
    hash is checked inside the gate, a good password clears the count. Unknown,
    disabled and locked accounts cost one dummy verification and give False.

    ``trusted``: the attempt comes from a trusted device (its caller counts it per
    device): the account's counter and lock are neither checked nor changed.
    ``admitted``: the caller already holds the gate's admission.

    Commits ``s`` first (callers have only read so far), so no database connection is
    held while waiting for a hashing slot."""
    s.commit()
    with gate.slot(admitted) if gate is not None else nullcontext():
        allowed = (user is not None and user.disabled_at is None
                   and (trusted or _reserve_attempt(s, user.id, now, policy)))
        s.commit()  # the count holds whatever happens next; the connection goes back
        if user is None or not allowed:
            verify_password(_DUMMY_HASH, password)  # the same time as a real check
            return False
        if not verify_password(user.password_hash, password):
            return False
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
    if not trusted:  # a trusted login leaves strangers' count and lock as they are
        _clear_attempts(s, user.id)
    return True


def login(s: Session, username: str, password: str, now: datetime, ttl: timedelta, *,
          policy: LockPolicy | None = None, gate: HashGate | None = None,
          trusted: bool = False, admitted: bool = False) -> tuple[str, Principal]:
    """Check the password and open a session. Returns (cookie token, principal).

    Every refusal is ``AuthError(WRONG_LOGIN)``; a full ``gate`` raises
    ``LoginThrottled`` before anything is counted. ``trusted`` and ``admitted``: see
    :func:`check_password`."""
    user = s.scalars(select(User).where(User.username == username)).first()
    if not check_password(s, user, password, now, policy or LockPolicy(), gate,
                          trusted=trusted, admitted=admitted):
        raise AuthError(WRONG_LOGIN)
    assert user is not None
    token = new_token("rss")
    s.add(UserSession(token_hash=hash_secret(token), user_id=user.id, created_at=now,
                      expires_at=now + ttl))
    s.flush()
    return token, load_principal(s, user, "session", hash_secret(token))


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def end_sessions(s: Session, user_id: int, now: datetime, *, keep_session: str = "",
                 tokens: bool = True) -> int:
    """Revoke the user's open sessions (all but ``keep_session``, a token hash) and,
    with ``tokens``, their API tokens. Returns how many credentials ended."""
    stmt = update(UserSession).where(UserSession.user_id == user_id,
                                     UserSession.revoked_at.is_(None))
    if keep_session:
        stmt = stmt.where(UserSession.token_hash != keep_session)
    ended = _rowcount(s.execute(stmt.values(revoked_at=now)
                                .execution_options(synchronize_session=False)))
    if tokens:
        ended += _rowcount(s.execute(update(UserToken).where(UserToken.user_id == user_id,
                                                             UserToken.revoked_at.is_(None))
                                     .values(revoked_at=now)
                                     .execution_options(synchronize_session=False)))
    return ended


def change_password(s: Session, who: Principal, old: str, new: str, now: datetime, *,
                    policy: LockPolicy | None = None, gate: HashGate | None = None) -> int:
    """The user changes their own password (the old one is checked like a login, so
    it counts towards the lock). Their other sessions and all their API tokens end;
    returns how many."""
    if len(new) < 8:
        raise InvalidInput("a password needs at least 8 characters")
    user = s.get(User, who.user_id)
    if not check_password(s, user, old, now, policy or LockPolicy(), gate):
        raise AuthError("wrong password")
    assert user is not None
    with gate.slot() if gate is not None else nullcontext():
        user.password_hash = hash_password(new)
    return end_sessions(s, user.id, now, keep_session=who.session_hash)


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


def device_cookie(secret: str, username: str) -> str:
    """A new device cookie for ``username``'s browser: ``<nonce>.<hmac>``."""
    nonce = new_token("rsd")
    return f"{nonce}.{_device_mac(secret, username, nonce)}"


def device_nonce(secret: str, username: str, cookie: str | None) -> str | None:
    """The nonce of ``cookie`` if it is a device cookie this server issued for
    ``username`` (else None). The nonce keys the device's failure count."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 200:
        return None
    nonce, mac = cookie.split(".")
    if not nonce or not hmac.compare_digest(mac, _device_mac(secret, username, nonce)):
        return None
    return nonce


def _device_mac(secret: str, username: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"device:{username}:{nonce}".encode(),
                    sha256).hexdigest()


def csrf_token(secret: str, session_hash: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_hash}".encode(), sha256).hexdigest()
