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
    for u in ("dr_other", "alice", "dave"):
        assert _status(server, users[u], enc) == 404, u  # not shared with them
    assert _status(server, users["admin_north"], enc) == 403  # admins see no PHI

    _, item = add_encounter(world.db, "exam-1")  # a visit whose draft is in alice's pool
    enc2 = users["dr_north"].get(f"/api/v1/review/items/{item}").json()["encounter_id"]
    token = users["alice"].post("/api/v1/auth/tokens", json={"name": "viewer"}).json()["token"]
    assert _status(server, UserClient(server.http_url, token=token), enc2) == 200
    with httpx.Client(base_url=server.http_url) as anon:
        r = anon.get(f"/api/v1/encounters/{enc2}/transcript", params={"access_token": token})
        assert r.status_code == 401 and "not accepted in the URL" in r.text  # no URL tokens
        assert _status(server, anon, enc2) == 401
    assert _status(server, UserClient(server.http_url, token=token + "x"), enc2) == 401
    assert _status(server, users["dave"], enc2) == 404
    with world.db.session() as s:  # the IT key manages devices, not PHI
        key = registry.create_api_key(s, "it")
    r = UserClient(server.http_url, token=key).get(f"/api/v1/encounters/{enc2}/transcript")
    assert r.status_code == 403 and "IT API key" in r.json()["detail"]
    assert "segments" not in r.text
    with world.db.session() as s:
        seen = {(e.actor, e.encounter_id) for e in
                s.query(AuditEvent).filter_by(action="view_transcript")}
        refused = {(e.actor, e.encounter_id, e.detail.split()[0]) for e in
                   s.query(AuditEvent).filter_by(action="access_denied")}
    assert {("dr_north", enc), ("alice", enc2)} <= seen
    assert {("dave", enc2, "404"), ("api-key:it", enc2, "403"), ("anonymous", enc2, "401"),
            ("admin_north", enc, "403")} <= refused
