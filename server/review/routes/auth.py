"""Login, logout, who am I, and personal API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from server.deps import ServicesDep, SessionDep
from server.models import utcnow
from server.review import auth
from server.review.audit import AuditAction, record
from server.review.deps import COOKIE, CurrentUser
from server.review.errors import AuthError
from server.review.schemas import LoginRequest, LoginResponse, MePublic, TokenCreate, TokenCreated
from server.settings import Settings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def me_public(who: auth.Principal) -> MePublic:
    return MePublic(id=who.user_id, username=who.username, display_name=who.display_name,
                    roles={c: r.value for c, r in who.roles.items()})


def start_session(session: SessionDep, settings: Settings, response: Response, username: str,
                  password: str) -> LoginResponse:
    """Check the password, set the session cookie, audit the login (or the failure)."""
    now = utcnow()
    try:
        token, who = auth.login(session, username, password, now,
                                timedelta(hours=settings.session_ttl_h))
    except AuthError:
        record(session, None, AuditAction.LOGIN_FAILED, actor=username[:64], now=now)
        session.commit()
        raise
    first_clinic = next(iter(sorted(who.roles)), "")
    record(session, who, AuditAction.LOGIN, clinic_id=first_clinic, now=now)
    session.commit()  # before the response: the client may use the cookie at once
    response.set_cookie(COOKIE, token, max_age=int(settings.session_ttl_h * 3600),
                        httponly=True, samesite="lax", secure=settings.secure_cookies, path="/")
    return LoginResponse(user=me_public(who),
                         csrf_token=auth.csrf_token(settings.secret_key, who.session_hash))


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, session: SessionDep, services: ServicesDep,
          response: Response) -> LoginResponse:
    """Password login for the browser: sets an HttpOnly session cookie and returns the
    CSRF token that cookie-authenticated changes must send as ``X-CSRF-Token``."""
    return start_session(session, services.settings, response, body.username, body.password)


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


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate, session: SessionDep, who: CurrentUser) -> TokenCreated:
    """An API token that acts as you (for scripts); shown once."""
    token = auth.create_user_token(session, who.user_id, body.name)
    session.commit()
    return TokenCreated(name=body.name, token=token)
