"""The live-transcript viewer check, extended to physicians and partners (and audited)."""

from __future__ import annotations

import httpx

from server import registry
from server.review.models import AuditEvent
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread


def _status(server: ServerThread, client: UserClient | httpx.Client, enc: str,
            **params: str) -> int:
    return client.get(f"/api/v1/encounters/{enc}/transcript", params=params).status_code


def test_who_may_watch_an_encounters_transcript(server: ServerThread, world: World) -> None:
    enc, _ = add_encounter(world.db, "exam-1", draft=False)  # still in the room: no draft yet
    users = {u: UserClient(server.http_url, u)
             for u in ("dr_north", "dr_other", "alice", "dave", "admin_north")}
    assert _status(server, users["dr_north"], enc) == 200  # the room's physician (cookie)
    for u in ("dr_other", "alice", "dave", "admin_north"):
        assert _status(server, users[u], enc) == 401, u

    _, item = add_encounter(world.db, "exam-1")  # a visit whose draft is in alice's pool
    enc2 = users["dr_north"].get(f"/api/v1/review/items/{item}").json()["encounter_id"]
    token = users["alice"].post("/api/v1/auth/tokens", json={"name": "viewer"}).json()["token"]
    with httpx.Client(base_url=server.http_url) as anon:
        assert _status(server, anon, enc2, access_token=token) == 200  # query-param token
        assert _status(server, anon, enc2) == 401
        assert _status(server, anon, enc2, access_token=token + "x") == 401
    assert _status(server, users["dave"], enc2) == 401
    with world.db.session() as s:  # the IT key keeps working
        key = registry.create_api_key(s, "it")
    assert _status(server, UserClient(server.http_url, token=key), enc2) == 200
    with world.db.session() as s:
        seen = {(e.actor, e.encounter_id) for e in
                s.query(AuditEvent).filter_by(action="view_transcript")}
    assert {("dr_north", enc), ("alice", enc2)} <= seen
