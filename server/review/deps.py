"""Review API dependencies: the current user, CSRF, and the operator (admin) scope.

- ``CurrentUser``: a bearer API token (``Authorization: Bearer rsu_…``) or the
  browser's session cookie. A cookie-authenticated POST/PUT/DELETE must carry
  ``X-CSRF-Token`` (the value login returned, also in the page's meta tag).
- ``OperatorDep``: the IT API key (every clinic) or a user with the admin role
  (the clinics they administer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.deps import ServicesDep, SessionDep
from server.models import utcnow
from server.registry import verify_api_key
from server.review.auth import Principal, csrf_token, principal_from_session, principal_from_token
from server.review.errors import AuthError, Forbidden
from server.review.lifecycle import Role
from server.security import secrets_equal
from server.settings import Settings

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "CurrentUser",
    "Operator",
    "OperatorDep",
    "authenticate",
    "optional_user",
]

COOKIE = "rs_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False)


def authenticate(s: Session, request: Request, bearer: str | None) -> Principal | None:
    """The principal behind a bearer user token or the session cookie (None: neither)."""
    if bearer and bearer.startswith("rsu_"):
        who = principal_from_token(s, bearer)
        if who is None:
            raise AuthError("invalid or revoked API token")
        return who
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return principal_from_session(s, cookie, utcnow())
    return None


def check_csrf(settings: Settings, request: Request, who: Principal) -> None:
    if who.via != "session" or request.method in _SAFE:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not secrets_equal(sent, csrf_token(settings.secret_key, who.session_hash)):
        raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header)")


def optional_user(request: Request, session: SessionDep, services: ServicesDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                  ) -> Principal | None:
    who = authenticate(session, request, credentials.credentials if credentials else None)
    if who is not None:
        check_csrf(services.settings, request, who)
    return who


def require_user(who: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if who is None:
        raise AuthError("log in, or send a bearer API token")
    return who


CurrentUser = Annotated[Principal, Depends(require_user)]


@dataclass(frozen=True)
class Operator:
    """Who administers: ``clinics`` None = every clinic (the IT API key)."""

    name: str
    clinics: list[str] | None
    principal: Principal | None = None


def require_operator(session: SessionDep,
                     who: Annotated[Principal | None, Depends(optional_user)],
                     credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(_bearer)]) -> Operator:
    if who is not None:
        clinics = who.clinics(Role.ADMIN)
        if not clinics:
            raise Forbidden("this needs the admin role")
        return Operator(who.username, clinics, who)
    if credentials is not None:
        key = verify_api_key(session, credentials.credentials)
        if key is not None and key.role == "admin":
            return Operator(f"api-key:{key.name}", None)
    raise AuthError("log in as an admin, or send the IT API key")


OperatorDep = Annotated[Operator, Depends(require_operator)]
