"""``/ws/review``: queue and draft changes pushed to the browser.

The browser's session cookie authenticates the socket; a foreign ``Origin``
is refused (cross-site websocket hijacking). Messages are JSON:
``{"type": "hello", "user": ...}`` once, then ``{"type": "item-changed",
"item_id", "state", "version", ...}`` for each change the user may see,
``{"type": "resync"}`` if the browser fell behind, and ``{"type": "ping"}``
every 25 s of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from server.models import utcnow
from server.review.access import partner_pools
from server.review.auth import Principal, principal_from_session
from server.review.deps import COOKIE
from server.review.live import hub_of
from server.services import Services

router = APIRouter()
PING_S = 25.0


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (scripts, tests); the cookie still decides
    return urlsplit(origin).netloc == ws.headers.get("host", "")


@router.websocket("/ws/review")
async def review_socket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    token = ws.cookies.get(COOKIE)
    if not token or not _same_origin(ws):
        await ws.close(code=4401, reason="log in first")
        return

    def load() -> tuple[Principal | None, set[str]]:
        with services.db.session() as s:
            who = principal_from_session(s, token, utcnow())
            return who, (partner_pools(s, who.user_id) if who else set())

    who, pools = await services.run_db(load)
    if who is None:
        await ws.close(code=4401, reason="session expired")
        return
    await ws.accept()
    hub = hub_of(services)
    sub = hub.subscribe(who, pools)
    receiver = asyncio.create_task(_drain(ws))
    try:
        await ws.send_json({"type": "hello", "user": who.username})
        while not receiver.done():
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, timeout=PING_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await ws.send_json(getter.result())
                continue
            getter.cancel()
            if not done:  # quiet for PING_S
                await ws.send_json({"type": "ping"})
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(sub)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the browser sends, so a close is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
