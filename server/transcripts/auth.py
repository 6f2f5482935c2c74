"""Who may watch an encounter's transcript. One place, so the review queue can extend it.

A valid admin API key, as a bearer token (``Authorization: Bearer KEY``) or,
for browsers that cannot set headers on a websocket, the ``access_token``
query parameter; or a review-queue user (``server/review/viewers.py``): a user
token (``rsu_…``) or the browser's session cookie, for the room's physician and
whoever may open the encounter's review item (audited).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.registry import verify_api_key

__all__ = ["ViewerIdentity", "authorize_viewer", "bearer_token"]


@dataclass(frozen=True, slots=True)
class ViewerIdentity:
    kind: str  # "api-key" | "user"
    name: str


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return conn.query_params.get("access_token") or None


def authorize_viewer(session: Session, conn: HTTPConnection,
                     encounter_id: str) -> ViewerIdentity | None:
    """The viewer if ``conn`` may see ``encounter_id``'s transcript, else None."""
    token = bearer_token(conn)
    if token is None or token.startswith("rsu_"):
        # Review-queue users (physicians, partners): a user token or the session cookie.
        from server.review.viewers import encounter_viewer

        who = encounter_viewer(session, conn, token, encounter_id)
        return ViewerIdentity("user", who.username) if who else None
    key = verify_api_key(session, token)
    if key is None or key.role != "admin":
        return None
    return ViewerIdentity("api-key", key.name)
