"""Two real server processes on one PostgreSQL and one Redis: a partner's claim on node A
reaches the responsible physician's browser socket on node B, once, and no one else's; a
device connecting to node B closes its old connection on node A, and an admin's command
sent to node A reaches it on node B.

Skipped unless ROOMSCRIBE_TEST_DATABASE_URL and ROOMSCRIBE_TEST_REDIS_URL are set.
Latency is measured by scripts/bench_live.py, not asserted here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from protocol import CloseCode, Command, Hello, Ready, encode_event, parse_event
from server.db import Database
from tests.cluster.conftest import WebNodes
from tests.review.world import UserClient, add_encounter, build_world
from tests.support import enrol_device

pytestmark = pytest.mark.slow
WAIT = 15.0


async def review_socket(base_http: str, client: UserClient) -> Any:
    port = base_http.rsplit(":", 1)[1]
    cookie = client.http.cookies.get("rs_session")
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/review",
                                  additional_headers={"Cookie": f"rs_session={cookie}"},
                                  open_timeout=WAIT)
    hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert hello == {"type": "hello", "user": client.username}
    return ws


async def next_change(ws: Any) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if msg["type"] == "item-changed":
            return msg


async def changes(ws: Any, within: float) -> list[dict[str, Any]]:
    """The item-changed messages arriving within ``within`` seconds."""
    got: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        try:
            msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if msg["type"] == "item-changed":
            got.append(msg)
    return got


async def test_a_partners_claim_on_node_a_reaches_the_physician_on_node_b(
        web_nodes: WebNodes) -> None:
    a, b = web_nodes["web-a"], web_nodes["web-b"]
    db = Database(a.database_url)
    try:
        build_world(db)
        _, item = add_encounter(db, "exam-1")
    finally:
        db.dispose()
    dr_north = await asyncio.to_thread(UserClient, b.http_url, "dr_north")
    dave = await asyncio.to_thread(UserClient, b.http_url, "dave")  # the other clinic
    alice = await asyncio.to_thread(UserClient, a.http_url, "alice")
    on_b = await review_socket(b.http_url, dr_north)
    other_clinic = await review_socket(b.http_url, dave)
    on_a = await review_socket(a.http_url, alice)  # the partner's own browser, on node A
    try:
        r = await asyncio.to_thread(alice.post, f"/api/v1/review/items/{item}/claim")
        assert r.status_code == 200, r.text
        msg = await next_change(on_b)
        assert (msg["item_id"], msg["state"], msg["action"], msg["actor"]) == (
            item, "claimed", "claim", "alice")
        assert await changes(on_b, 0.5) == []  # exactly once
        own = await changes(on_a, 1.0)
        assert [m["action"] for m in own] == ["claim"]  # the publishing node: once, no echo
        assert await changes(other_clinic, 0.5) == []
    finally:
        for ws in (on_b, other_clinic, on_a):
            await ws.close()
        for client in (dr_north, dave, alice):
            client.close()


async def test_a_device_on_node_b_closes_its_old_connection_on_node_a_and_takes_commands(
        web_nodes: WebNodes) -> None:
    a, b = web_nodes["web-a"], web_nodes["web-b"]
    db = Database(a.database_url)
    try:
        dev = enrol_device(db, "exam-9")
    finally:
        db.dispose()
    hello = encode_event(Hello(dev.device_id, dev.token, dev.room_id, "test").to_event())

    async def connect(http_url: str) -> Any:
        ws = await websockets.connect(http_url.replace("http://", "ws://") + "/ws/device",
                                      open_timeout=WAIT)
        await ws.send(hello)
        assert isinstance(parse_event(await asyncio.wait_for(ws.recv(), WAIT)), Ready)
        return ws

    old = await connect(a.http_url)
    new = await connect(b.http_url)
    try:
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # node A closes the old connection once it hears of the new one
                await asyncio.wait_for(old.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.REPLACED
        # an admin's command sent to node A reaches the device on node B
        key = await asyncio.to_thread(a.ensure_admin)
        response = await asyncio.to_thread(
            httpx.post, f"{a.http_url}/api/v1/devices/{dev.device_id}/command",
            json={"action": "stop"}, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT)
        assert response.status_code == 202, response.text
        command = parse_event(await asyncio.wait_for(new.recv(), WAIT))
        assert isinstance(command, Command) and command.action == "stop"
        listed = await asyncio.to_thread(a.api, "/api/v1/devices")
        [device] = [d for d in listed if d["id"] == dev.device_id]
        assert device["connected"] is True  # node A knows it is on node B
    finally:
        await old.close()
        await new.close()
