"""Who may read an encounter's patient data: its audio, transcript and live transcript.

Only clinicians, never the IT API key (it manages devices and configuration)
and never an admin: the room's physician (any physician of the clinic when the
room has no owner) and, once the draft is in the queue, whoever may open its
review item (``server/review/access.py``). Every grant is audited by the route
that serves the data; every refusal by ``AuditRefusals`` / ``record_refusal``.

How the clinician is recognised, in order:

1. ``Authorization: Bearer rsu_…`` (a user API token). The IT key here: 403.
2. ``?ticket=`` (``server/review/tickets.py``): single use, for one purpose and
   one resource, at most 60 s old; for websockets and ``<audio>`` elements.
3. The browser's session cookie, same origin only.

Tokens in the URL (``?access_token=``) are refused: URLs end up in access logs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.models import Encounter, Room, utcnow
from server.registry import verify_api_key
from server.review.access import partner_pools, visible
from server.review.auth import (
    Principal,
    load_principal,
    principal_from_session,
    principal_from_token,
)
from server.review.deps import COOKIE, IT_KEY_REFUSED, set_actor
from server.review.errors import AuthError, Forbidden, NotFound
from server.review.lifecycle import Role
from server.review.models import ReviewItem, RoomPhysician, User
from server.review.tickets import TicketBook, TicketPurpose

__all__ = ["IT_KEY_REFUSED", "EncounterGrant", "can_view_encounter", "encounter_grant",
           "encounter_reader", "request_principal"]



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


def _bearer(conn: HTTPConnection) -> str | None:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def request_principal(s: Session, conn: HTTPConnection, *, tickets: TicketBook | None = None,
                      purpose: TicketPurpose | None = None, resource: str = "") -> Principal:
    """The clinician behind ``conn`` (bearer user token, ticket or cookie), or AuthError;
    Forbidden for the IT API key."""
    if "access_token" in conn.query_params:
        raise AuthError("tokens are not accepted in the URL; send Authorization: Bearer, "
                        "or ask POST /api/v1/review/tickets for a ?ticket=")
    token = _bearer(conn)
    if token is not None:
        if token.startswith("rsu_"):
            who = principal_from_token(s, token)
            if who is None:
                raise AuthError("invalid or revoked API token")
            set_actor(conn, who.user_id, who.username)
            return who
        key = verify_api_key(s, token)
        if key is not None and key.role == "admin":
            set_actor(conn, None, f"api-key:{key.name}")
            raise Forbidden(IT_KEY_REFUSED)
        raise AuthError("invalid API key or token")
    ticket_text = conn.query_params.get("ticket")
    if ticket_text is not None:
        ticket = (tickets.redeem(ticket_text, purpose, resource, utcnow().timestamp())
                  if tickets is not None and purpose is not None else None)
        user = s.get(User, ticket.user_id) if ticket is not None else None
        if user is None or user.disabled_at is not None:
            raise AuthError("invalid, expired or already used ticket (a ticket opens one "
                            "resource once, within 60 s)")
        who = load_principal(s, user, "ticket")
        set_actor(conn, who.user_id, who.username)
        return who
    cookie = conn.cookies.get(COOKIE)
    if cookie and _same_origin(conn):
        who = principal_from_session(s, cookie, utcnow())
        if who is not None:
            set_actor(conn, who.user_id, who.username)
            return who
    raise AuthError("log in, or send a bearer API token (or a ?ticket=)")


class EncounterGrant:
    """What a granted read knows: who, the encounter's clinic, its review item if any."""

    __slots__ = ("clinic_id", "item", "who")

    def __init__(self, who: Principal, clinic_id: str, item: ReviewItem | None) -> None:
        self.who, self.clinic_id, self.item = who, clinic_id, item


def encounter_reader(s: Session, conn: HTTPConnection, encounter_id: str, *,
                     tickets: TicketBook | None = None,
                     purpose: TicketPurpose | None = None) -> EncounterGrant:
    """May ``conn`` read ``encounter_id``'s audio / transcript? AuthError (401),
    Forbidden (403: the IT key, an admin) or NotFound (404: not yours, or none)."""
    who = request_principal(s, conn, tickets=tickets, purpose=purpose, resource=encounter_id)
    return encounter_grant(s, who, encounter_id)


def encounter_grant(s: Session, who: Principal, encounter_id: str) -> EncounterGrant:
    """``who``'s grant to read ``encounter_id``, or Forbidden (admin) / NotFound."""
    enc = s.get(Encounter, encounter_id)
    room = s.get(Room, enc.room_id) if enc else None
    if room is not None and who.role_in(room.clinic_id) is Role.ADMIN:
        raise Forbidden("admins have no access to audio or transcripts")
    granted = can_view_encounter(s, who, encounter_id) if room is not None else False
    if granted is False or room is None:
        raise NotFound("this encounter does not exist, or it is not shared with you")
    return EncounterGrant(who, room.clinic_id,
                          granted if isinstance(granted, ReviewItem) else None)
