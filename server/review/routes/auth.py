"""Login, logout, who am I, your password, and personal API tokens.

A login is refused three ways: ``401 wrong username or password`` (whatever the
reason: unknown user, wrong password, locked or disabled account), ``429`` with
``Retry-After`` when the client's address failed too often, ``503`` with
``Retry-After`` when every password-hashing slot is taken (see
``server/review/ratelimit.py``). The address is the TCP peer's (behind a reverse
proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips`` for the proxy).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from server.deps import ServicesDep, SessionDep
from server.models import utcnow
from server.review import auth, directory, ratelimit
from server.review.audit import AuditAction, record
from server.review.deps import COOKIE, CurrentUser
from server.review.errors import AuthError
from server.review.models import UserToken
from server.review.schemas import LoginRequest, LoginResponse, MePublic, TokenCreate, TokenCreated
from server.settings import Settings

__all__ = ["PasswordChange", "TokenPublic", "me_public", "router", "start_session",
           "throttled_response"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class PasswordChanged(BaseModel):
    ended: int  # other sessions and API tokens that ended


class TokenPublic(BaseModel):
    """An API token as its owner and admins see it: never the token or its hash."""

    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


def token_public(row: UserToken) -> TokenPublic:
    return TokenPublic(id=row.id, name=row.name, created_at=row.created_at,
                       revoked_at=row.revoked_at)


def me_public(who: auth.Principal) -> MePublic:
    return MePublic(id=who.user_id, username=who.username, display_name=who.display_name,
                    roles={c: r.value for c, r in who.roles.items()})


def throttled_response(err: ratelimit.LoginThrottled) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status,
                        headers={"Retry-After": str(err.retry_after)})


def start_session(session: SessionDep, settings: Settings, response: Response, username: str,
                  password: str, *, client: str = "") -> LoginResponse:
    """Check the password, set the session cookie, audit the login (or the failure).

    ``client`` (the peer address) is held to the per-address failure limit; a refused
    address or a full hashing queue raise :class:`ratelimit.LoginThrottled` (an
    ``AuthError``) before the password is looked at, and are logged, not audited."""
    guard = ratelimit.guard_for(settings)
    now, tick = utcnow(), time.monotonic()
    if client:
        wait = guard.addresses.attempt(client, tick)
        if wait is not None:
            log.warning("login refused: %s failed too often (retry in %.0f s)", client, wait)
            raise ratelimit.LoginThrottled("too many failed logins from your address; "
                                           "try again later", retry_after=math.ceil(wait))
    try:
        token, who = auth.login(session, username, password, now,
                                timedelta(hours=settings.session_ttl_h),
                                policy=auth.LockPolicy.from_settings(settings),
                                gate=guard.hashing)
    except ratelimit.LoginThrottled:
        if client:
            guard.addresses.succeeded(client, tick)  # not a guess: the password was not read
        log.warning("login refused: password hashing queue full")
        raise
    except AuthError:
        record(session, None, AuditAction.LOGIN_FAILED, actor=username[:64], now=now,
               detail=f"from {client}" if client else "")
        session.commit()
        raise
    if client:
        guard.addresses.succeeded(client, tick)
    first_clinic = next(iter(sorted(who.roles)), "")
    record(session, who, AuditAction.LOGIN, clinic_id=first_clinic, now=now)
    session.commit()  # before the response: the client may use the cookie at once
    response.set_cookie(COOKIE, token, max_age=int(settings.session_ttl_h * 3600),
                        httponly=True, samesite="lax", secure=settings.secure_cookies, path="/")
    return LoginResponse(user=me_public(who),
                         csrf_token=auth.csrf_token(settings.secret_key, who.session_hash))


@router.post("/login", response_model=LoginResponse,
             responses={429: {"description": "this address failed too often"},
                        503: {"description": "too many logins at once"}})
def login(body: LoginRequest, request: Request, session: SessionDep, services: ServicesDep,
          response: Response) -> LoginResponse | JSONResponse:
    """Password login for the browser: sets an HttpOnly session cookie and returns the
    CSRF token that cookie-authenticated changes must send as ``X-CSRF-Token``."""
    try:
        return start_session(session, services.settings, response, body.username,
                             body.password, client=request.client.host if request.client else "")
    except ratelimit.LoginThrottled as err:
        return throttled_response(err)


@router.post("/logout", status_code=204)
def logout(request: Request, session: SessionDep, who: CurrentUser) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        auth.logout(session, token, utcnow())
    record(session, who, AuditAction.LOGOUT, clinic_id=next(iter(sorted(who.roles)), ""))
    session.commit()
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me", response_model=MePublic)
def me(who: CurrentUser) -> MePublic:
    return me_public(who)


@router.post("/password", response_model=PasswordChanged,
             responses={503: {"description": "too many password checks at once"}})
def change_password(body: PasswordChange, session: SessionDep, services: ServicesDep,
                    who: CurrentUser) -> PasswordChanged | JSONResponse:
    """Change your password (the old one is checked, and counts towards the lock). Your
    other sessions and every API token of yours end; this session stays."""
    settings = services.settings
    now = utcnow()
    try:
        ended = auth.change_password(session, who, body.old_password, body.new_password, now,
                                     policy=auth.LockPolicy.from_settings(settings),
                                     gate=ratelimit.guard_for(settings).hashing)
    except ratelimit.LoginThrottled as err:
        return throttled_response(err)
    except AuthError:
        record(session, who, AuditAction.LOGIN_FAILED, now=now,
               detail="wrong old password on a password change")
        session.commit()
        raise
    directory.audit_user(session, who.user_id, AuditAction.PASSWORD,
                         f"user {who.username}: password changed by its user; {ended} other "
                         "sessions/tokens ended", who=who)
    session.commit()
    return PasswordChanged(ended=ended)


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate, session: SessionDep, who: CurrentUser) -> TokenCreated:
    """An API token that acts as you (for scripts); shown once."""
    token = auth.create_user_token(session, who.user_id, body.name)
    session.commit()
    return TokenCreated(name=body.name, token=token)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, who: CurrentUser) -> list[TokenPublic]:
    """Your API tokens, newest first (never the tokens themselves)."""
    return [token_public(t) for t in directory.list_tokens(session, who.username)]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, who: CurrentUser) -> Response:
    """Revoke one of your API tokens (it stops working at once)."""
    directory.revoke_token(session, who.username, token_id, who=who)
    session.commit()
    return Response(status_code=204)
