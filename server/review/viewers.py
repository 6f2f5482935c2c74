"""Who may watch an encounter's transcript live: the review queue's users.

``server/transcripts/auth.py:authorize_viewer`` calls :func:`encounter_viewer`
for anything that is not the IT API key: a user API token (``rsu_…``, as a
bearer header or ``access_token`` query parameter) or the browser's session
cookie (same origin only). Allowed: the room's physician (any physician of the
clinic when the room has no owner) and, once the draft is in the queue,
whoever may open its review item. Admins are not. Each grant is audited.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.models import Encounter, Room, utcnow
from server.review.access import partner_pools, visible
from server.review.audit import AuditAction, record
from server.review.auth import Principal, principal_from_session, principal_from_token
from server.review.deps import COOKIE
from server.review.lifecycle import Role
from server.review.models import ReviewItem, RoomPhysician

__all__ = ["can_view_encounter", "encounter_viewer"]


def can_view_encounter(s: Session, who: Principal, encounter_id: str) -> ReviewItem | bool:
    """The review item (or True before there is one) if ``who`` may see it, else False."""
    enc = s.get(Encounter, encounter_id)
    room = s.get(Room, enc.room_id) if enc else None
    if enc is None or room is None:
        return False
    item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == encounter_id)).first()
    if item is not None:
        pools = partner_pools(s, who.user_id) if who.role_in(item.clinic_id) is Role.PARTNER \
            else set()
        return item if visible(who, item, pools) else False
    if who.role_in(room.clinic_id) is not Role.PHYSICIAN:
        return False
    owner = s.get(RoomPhysician, room.id)
    return owner is None or owner.user_id == who.user_id


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == conn.headers.get("host", "")


def encounter_viewer(s: Session, conn: HTTPConnection, token: str | None,
                     encounter_id: str) -> Principal | None:
    who = None
    if token and token.startswith("rsu_"):
        who = principal_from_token(s, token)
    elif token is None and conn.cookies.get(COOKIE) and _same_origin(conn):
        who = principal_from_session(s, conn.cookies[COOKIE], utcnow())
    if who is None:
        return None
    granted = can_view_encounter(s, who, encounter_id)
    if granted is False:
        return None
    item = granted if isinstance(granted, ReviewItem) else None
    enc = s.get(Encounter, encounter_id)
    room = s.get(Room, enc.room_id) if enc else None
    record(s, who, AuditAction.VIEW_TRANSCRIPT, item, "live transcript",
           clinic_id=room.clinic_id if room else "", encounter_id=encounter_id)
    s.flush()
    return who
