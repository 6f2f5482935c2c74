"""Who may watch an encounter's transcript. One place, so the review queue can extend it.

Today: a valid admin API key, as a bearer token (``Authorization: Bearer KEY``)
or, for browsers that cannot set headers on a websocket, the ``access_token``
query parameter. The review-queue work replaces the body with its users and
roles (physicians and partners with access to the encounter's clinic).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.registry import verify_api_key

__all__ = ["ViewerIdentity", "authorize_viewer", "bearer_token"]


@dataclass(frozen=True, slots=True)
class ViewerIdentity:
    kind: str  # "api-key"
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
    if token is None:
        return None
    key = verify_api_key(session, token)
    if key is None or key.role != "admin":
        return None
    return ViewerIdentity("api-key", key.name)
