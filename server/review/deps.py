"""Review API dependencies: the current user, CSRF, and the operator (admin) scope.

- ``CurrentUser``: a bearer API token (``Authorization: Bearer rsu_…``) or the
  browser's session cookie. A cookie-authenticated POST/PUT/DELETE must carry
  ``X-CSRF-Token`` (the value login returned, also in the page's meta tag).
- ``OperatorDep``: the IT API key (every clinic) or a user with the admin role
  (the clinics they administer). Devices and configuration only: the IT key
  never reads audio or transcripts (``server/review/viewers.py``).
- ``AuditRefusals``: a route dependency for routes with patient data: a 401,
  403 or 404 they answer writes one ``access_denied`` audit row (actor, route,
  item / encounter id), in its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.deps import ServicesDep, SessionDep
from server.models import Encounter, Room, utcnow
from server.registry import verify_api_key
from server.review.auth import Principal, csrf_token, principal_from_session, principal_from_token
from server.review.errors import AuthError, Forbidden, ReviewError
from server.review.lifecycle import Role
from server.review.models import ReviewItem
from server.security import secrets_equal
from server.services import Services
from server.settings import Settings

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "IT_KEY_REFUSED",
    "AuditRefusals",
    "CurrentUser",
    "Operator",
    "OperatorDep",
    "authenticate",
    "optional_user",
    "record_refusal",
    "set_actor",
]

log = logging.getLogger(__name__)
COOKIE = "rs_session"
#: What the IT API key hears on a route with patient data.
IT_KEY_REFUSED = ("the IT API key manages devices and configuration only; notes, audio and "
                  "transcripts need a clinician's login (the room's physician or a partner "
                  "of its pool)")
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
        set_actor(request, who.user_id, who.username)
        check_csrf(services.settings, request, who)
    return who


def require_user(request: Request, session: SessionDep,
                 who: Annotated[Principal | None, Depends(optional_user)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(_bearer)]) -> Principal:
    if who is None:
        if credentials is not None:
            key = verify_api_key(session, credentials.credentials)
            if key is not None and key.role == "admin":
                set_actor(request, None, f"api-key:{key.name}")
                raise Forbidden(IT_KEY_REFUSED)
        raise AuthError("log in, or send a bearer API token")
    return who


CurrentUser = Annotated[Principal, Depends(require_user)]


@dataclass(frozen=True)
class Operator:
    """Who administers: ``clinics`` None = every clinic (the IT API key)."""

    name: str
    clinics: list[str] | None
    principal: Principal | None = None


def require_operator(request: Request, session: SessionDep,
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
            set_actor(request, None, f"api-key:{key.name}")
            return Operator(f"api-key:{key.name}", None)
    raise AuthError("log in as an admin, or send the IT API key")


OperatorDep = Annotated[Operator, Depends(require_operator)]


# ------------------------------------------------------------ refused access


def set_actor(conn: HTTPConnection, user_id: int | None, actor: str) -> None:
    """Remember who is asking, for the audit row of a refusal."""
    conn.state.audit_actor = (user_id, actor)


def record_refusal(services: Services, conn: HTTPConnection, status: int, *,
                   item_id: str = "", encounter_id: str = "") -> None:
    """One ``access_denied`` row for a refused request, in its own transaction (the
    request's own session is rolled back with the error)."""
    from server.review.audit import AuditAction, record

    user_id, actor = getattr(conn.state, "audit_actor", (None, "anonymous"))
    method = conn.scope.get("method", "WS")
    try:
        with services.db.session() as s:
            clinic_id = ""
            item = s.get(ReviewItem, item_id[:36]) if item_id else None
            if item is not None:
                clinic_id, encounter_id = item.clinic_id, item.encounter_id
            elif encounter_id:
                enc = s.get(Encounter, encounter_id[:36])
                room = s.get(Room, enc.room_id) if enc else None
                clinic_id = room.clinic_id if room else ""
            event = record(s, None, AuditAction.ACCESS_DENIED, clinic_id=clinic_id,
                           actor=actor[:200], encounter_id=encounter_id[:36],
                           detail=f"{status} {method} {conn.url.path[:300]}")
            event.user_id, event.item_id = user_id, item_id[:36]
    except SQLAlchemyError:
        log.exception("could not audit a refused request")


def audit_refusals(request: Request, services: ServicesDep) -> Iterator[None]:
    try:
        yield
    except (ReviewError, HTTPException) as err:
        status = err.status if isinstance(err, ReviewError) else err.status_code
        if status in (401, 403, 404):
            params = request.path_params
            record_refusal(services, request, status, item_id=str(params.get("item_id", "")),
                           encounter_id=str(params.get("encounter_id", "")))
        raise


#: ``dependencies=[AuditRefusals]`` on a router or route with patient data.
AuditRefusals = Depends(audit_refusals)
