"""Short-lived signed tickets, for the two places a browser cannot send a header.

A websocket (``/ws/encounters/{id}/live``) and an ``<audio src=…>`` element
cannot carry ``Authorization: Bearer``. Same-origin pages use the session
cookie; anything else asks for a ticket first (``POST /api/v1/review/tickets``
with a bearer token or the cookie) and passes it as ``?ticket=``.

A ticket is ``rst_<payload>.<mac>``: the payload names the user, one purpose,
one resource (an encounter or item id), an expiry at most :data:`TICKET_TTL_S`
seconds away and a random nonce; the mac is HMAC-SHA256 under the server's
secret key. It is redeemed at most once (the nonce is remembered until the
ticket expires, in this process), only for its purpose and resource, and the
access rule is checked again when it is used. Because a ticket is short-lived,
single-use and scoped, it appearing in an access log is acceptable; bearer
tokens never travel in a URL (there is no ``?access_token=``).

Pure apart from the used-nonce book: ``now`` is passed in. One book per server
process, built by the composition root (``Services.tickets``).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from enum import StrEnum
from hashlib import sha256
from typing import Any

__all__ = ["TICKET_TTL_S", "Ticket", "TicketBook", "TicketPurpose"]

TICKET_TTL_S = 60
_PREFIX = "rst_"


class TicketPurpose(StrEnum):
    """What a ticket opens; the resource is the id in that route."""

    LIVE_TRANSCRIPT = "live-transcript"  # WS /ws/encounters/{encounter_id}/live
    ENCOUNTER_AUDIO = "encounter-audio"  # GET /api/v1/encounters/{encounter_id}/audio.wav
    ITEM_AUDIO = "item-audio"  # GET /api/v1/review/items/{item_id}/audio.wav


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: int
    purpose: TicketPurpose
    resource: str
    expires_at: float  # seconds since the epoch
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TicketBook:
    """Issues and redeems tickets under one secret; remembers used nonces until expiry."""

    def __init__(self, secret: str, ttl_s: int = TICKET_TTL_S) -> None:
        if not 0 < ttl_s <= TICKET_TTL_S:
            raise ValueError(f"a ticket lives 1..{TICKET_TTL_S} s")
        self._key = sha256(f"roomscribe-ticket:{secret}".encode()).digest()
        self.ttl_s = ttl_s
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), sha256).digest())

    def issue(self, user_id: int, purpose: TicketPurpose, resource: str,
              now: float) -> tuple[str, Ticket]:
        ticket = Ticket(user_id, TicketPurpose(purpose), resource, now + self.ttl_s,
                        secrets.token_urlsafe(12))
        body: dict[str, Any] = {"u": ticket.user_id, "p": ticket.purpose.value,
                                "r": ticket.resource, "e": ticket.expires_at, "n": ticket.nonce}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{_PREFIX}{payload}.{self._mac(payload)}", ticket

    def redeem(self, text: str, purpose: TicketPurpose, resource: str,
               now: float) -> Ticket | None:
        """The ticket if ``text`` is valid, unexpired, unused and for exactly this purpose
        and resource (it is then used up), else None."""
        if not text.startswith(_PREFIX) or len(text) > 1024:
            return None
        payload, _, mac = text[len(_PREFIX):].partition(".")
        if not mac or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            body = json.loads(_unb64(payload))
            ticket = Ticket(int(body["u"]), TicketPurpose(body["p"]), str(body["r"]),
                            float(body["e"]), str(body["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if ticket.purpose is not purpose or ticket.resource != resource:
            return None
        if not now < ticket.expires_at <= now + self.ttl_s:
            return None
        with self._lock:
            self._used = {n: e for n, e in self._used.items() if e > now}
            if ticket.nonce in self._used:
                return None
            self._used[ticket.nonce] = ticket.expires_at
        return ticket
