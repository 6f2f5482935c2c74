"""Who may watch an encounter's transcript. One place; the rule itself is the review
queue's (``server/review/viewers.py``): clinicians of the encounter only.

- a user API token as a bearer header (``Authorization: Bearer rsu_…``);
- for the live websocket, which a browser cannot give a header: the session
  cookie (same origin) or a ``?ticket=`` from ``POST /api/v1/review/tickets``
  (purpose ``live-transcript``, the encounter id as resource);
- the IT API key gets 403: it manages devices and configuration, not PHI.

Every grant writes a ``view_transcript`` audit row (who, which encounter).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from server.review.audit import AuditAction, record
from server.review.tickets import TicketPurpose
from server.review.viewers import EncounterGrant, encounter_reader

__all__ = ["authorize_viewer"]


def authorize_viewer(session: Session, conn: HTTPConnection, encounter_id: str,
                     services: Any, detail: str, *, live: bool = False) -> EncounterGrant:
    """The grant if ``conn`` may see ``encounter_id``'s transcript (audited, flushed);
    raises the review errors (401 / 403 / 404) otherwise. Tickets only when ``live``."""
    grant = encounter_reader(session, conn, encounter_id, tickets=services.tickets,
                             purpose=TicketPurpose.LIVE_TRANSCRIPT if live else None)
    record(session, grant.who, AuditAction.VIEW_TRANSCRIPT, grant.item, detail,
           clinic_id=grant.clinic_id, encounter_id=encounter_id)
    session.flush()
    return grant
