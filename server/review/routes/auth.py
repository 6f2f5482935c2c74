"""Login, logout, who am I, your password, and personal API tokens.

A login is refused three ways: ``401 wrong username or password`` (whatever the
reason: unknown user, wrong password, locked or disabled account), ``429`` with
``Retry-After`` when the client's address failed too often, ``503`` with
``Retry-After`` when every password-hashing slot is taken (see
``server/review/ratelimit.py``). A good login also sets ``rs_device``, the browser's
device cookie for that account (HttpOnly, SameSite=Strict, 180 days): with it, the
browser's attempts are counted per device, not against the account's lock, and not
against its address (a colleague's typos behind the same NAT do not lock you out).
The address is the TCP peer's (behind a reverse proxy, run uvicorn with
``--proxy-headers --forwarded-allow-ips`` for the proxy).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from server.deps import ServicesDep, SessionDep
from server.models import utcnow
from server.review import auth, directory, ratelimit
from server.review.audit import AuditAction, record
from server.review.deps import COOKIE, CurrentUser
from server.review.errors import AuthError
from server.review.models import UserToken
from server.review.schemas import LoginRequest, LoginResponse, MePublic, TokenCreate, TokenCreated
from server.services import Services
from server.settings import Settings

__all__ = ["DEVICE_COOKIE", "LoginAttempt", "PasswordChange", "TokenPublic", "admit",
           "me_public", "router", "start_session", "throttled_response"]

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


DEVICE_COOKIE = "rs_device"
#: How long a browser stays a trusted device for an account after a good login.
DEVICE_COOKIE_MAX_AGE_S = 180 * 24 * 3600


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login past the cheap checks (:func:`admit`): where it comes from, and what it
    reserved (a failure of its trusted ``device``, else one of its ``client`` address)."""

    username: str
    client: str
    tick: float
    device: str | None = None  # the nonce of a trusted device cookie

    def release(self, guard: ratelimit.LoginGuard) -> None:
        """The attempt was not a wrong guess: hand back what it reserved."""
        if self.device is not None:
            guard.devices.succeeded(self.device, self.tick)
        elif self.client:
            guard.addresses.succeeded(self.client, self.tick)


def admit(settings: Settings, username: str, client: str, device_cookie: str | None,
          ) -> LoginAttempt:
    """The checks before any database or hashing work, in memory and never blocking
    (the async login route runs them on the event loop): a valid device cookie for
    ``username`` whose device is not blocked makes the attempt trusted and reserves one
    of that device's failures; otherwise one failure of the client's address is
    reserved, or :class:`ratelimit.LoginThrottled` (429) when it has none left."""
    guard = ratelimit.guard_for(settings)
    tick = time.monotonic()
    nonce = auth.device_nonce(settings.secret_key, username, device_cookie)
    if nonce is not None and guard.devices.attempt(nonce, tick) is None:
        return LoginAttempt(username, client, tick, nonce)
    if client:
        wait = guard.addresses.attempt(client, tick)
        if wait is not None:
            log.warning("login refused: %s failed too often (retry in %.0f s)", client, wait)
            raise ratelimit.LoginThrottled("too many failed logins from your address; "
                                           "try again later", retry_after=math.ceil(wait))
    return LoginAttempt(username, client, tick)


def start_session(session: SessionDep, settings: Settings, response: Response, username: str,
                  password: str, *, client: str = "", device_cookie: str | None = None,
                  attempt: LoginAttempt | None = None, admitted: bool = False,
                  ) -> LoginResponse:
    """Check the password, set the session cookie (and a fresh device cookie), audit the
    login (or the failure).

    Without ``attempt`` the cheap checks (:func:`admit`) run here first; ``admitted``:
    the caller holds the hashing gate's admission. A refused address, device or a full
    hashing queue raise :class:`ratelimit.LoginThrottled` (an ``AuthError``) before the
    password is looked at, and are logged, not audited."""
    guard = ratelimit.guard_for(settings)
    if attempt is None:
        attempt = admit(settings, username, client, device_cookie)
    now = utcnow()
    try:
        token, who = auth.login(session, username, password, now,
                                timedelta(hours=settings.session_ttl_h),
                                policy=auth.LockPolicy.from_settings(settings),
                                gate=guard.hashing, trusted=attempt.device is not None,
                                admitted=admitted)
    except ratelimit.LoginThrottled:
        attempt.release(guard)  # not a guess: the password was not read
        log.warning("login refused: password hashing queue full")
        raise
    except AuthError:
        record(session, None, AuditAction.LOGIN_FAILED, actor=username[:64], now=now,
               detail=(f"from {client}" if client else "")
               + (" (trusted device)" if attempt.device else ""))
        session.commit()
        raise
    attempt.release(guard)
    first_clinic = next(iter(sorted(who.roles)), "")
    record(session, who, AuditAction.LOGIN, clinic_id=first_clinic, now=now)
    session.commit()  # before the response: the client may use the cookie at once
    response.set_cookie(COOKIE, token, max_age=int(settings.session_ttl_h * 3600),
                        httponly=True, samesite="lax", secure=settings.secure_cookies, path="/")
    response.set_cookie(DEVICE_COOKIE, auth.device_cookie(settings.secret_key, who.username),
                        max_age=DEVICE_COOKIE_MAX_AGE_S, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, path="/")
    return LoginResponse(user=me_public(who),
                         csrf_token=auth.csrf_token(settings.secret_key, who.session_hash))


@router.post("/login", response_model=LoginResponse,
             responses={429: {"description": "this address failed too often"},
                        503: {"description": "too many logins at once"}})
async def login(body: LoginRequest, request: Request,
                response: Response) -> LoginResponse | JSONResponse:
    """Password login for the browser: sets an HttpOnly session cookie and returns the
    CSRF token that cookie-authenticated changes must send as ``X-CSRF-Token``.

    Async on purpose: the address and device allowance and the place in the hashing
    queue are taken on the event loop, so a login refused with 429 or 503 costs no
    worker thread, database connection or hash (a flood of logins leaves the threads
    to everyone else); only admitted logins go to a thread."""
    services = request.app.state.services
    settings = services.settings
    client = request.client.host if request.client else ""
    guard = ratelimit.guard_for(settings)
    try:
        attempt = admit(settings, body.username, client, request.cookies.get(DEVICE_COOKIE))
    except ratelimit.LoginThrottled as err:
        return throttled_response(err)
    admitted = False
    try:
        with guard.hashing.admission():
            admitted = True
            return await run_in_threadpool(_login_admitted, services, response, body,
                                           attempt)
    except ratelimit.LoginThrottled as err:
        if not admitted:  # refused at the door: not a guess (start_session hands back
            attempt.release(guard)  # what it refuses itself)
            log.warning("login refused: password hashing queue full")
        return throttled_response(err)


def _login_admitted(services: Services, response: Response, body: LoginRequest,
                    attempt: LoginAttempt) -> LoginResponse:
    try:
        with services.db.session() as session:
            return start_session(session, services.settings, response, body.username,
                                 body.password, client=attempt.client, attempt=attempt,
                                 admitted=True)
    except OperationalError as err:
        raise HTTPException(503, "database unavailable; nothing was changed") from err


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
