"""/ws/review pushes queue changes to the browsers allowed to see them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread


async def _socket(server: ServerThread, client: UserClient, **headers: str) -> Any:
    cookie = client.http.cookies.get("rs_session")
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/review",
                                  additional_headers={"Cookie": f"rs_session={cookie}",
                                                      **headers}, open_timeout=5)
    hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    assert hello == {"type": "hello", "user": client.username}
    return ws


async def _next_change(ws: Any, wait_s: float = 5) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=wait_s))
        if msg["type"] == "item-changed":
            return msg


async def test_claim_is_pushed_to_pool_members_and_physician_only(
        server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    clients = {u: UserClient(server.http_url, u) for u in ("alice", "bob", "dr_north", "dave")}
    sockets = {u: await _socket(server, c) for u, c in clients.items() if u != "alice"}
    try:
        r = await asyncio.to_thread(clients["alice"].post, f"/api/v1/review/items/{item}/claim")
        assert r.status_code == 200
        for user in ("bob", "dr_north"):
            msg = await _next_change(sockets[user])
            assert (msg["item_id"], msg["state"], msg["action"], msg["actor"]) == (
                item, "claimed", "claim", "alice")
        # The other clinic hears nothing (a short wait is enough: the push above arrived).
        try:
            leaked = await _next_change(sockets["dave"], wait_s=0.5)
        except TimeoutError:
            leaked = None
        assert leaked is None
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_socket_needs_a_session_and_same_origin(server: ServerThread, world: World) -> None:
    alice = UserClient(server.http_url, "alice")
    url = f"ws://127.0.0.1:{server.port}/ws/review"
    cookie = f"rs_session={alice.http.cookies.get('rs_session')}"
    for headers in ({}, {"Cookie": "rs_session=forged"},
                    {"Cookie": cookie, "Origin": "https://evil.example"}):
        with pytest.raises(InvalidStatus) as err:  # refused before the handshake completes
            await websockets.connect(url, open_timeout=5, additional_headers=headers)
        assert err.value.response.status_code == 403
    ws = await _socket(server, alice, Origin=f"http://127.0.0.1:{server.port}")
    await ws.close()
