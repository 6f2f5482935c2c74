"""Least privilege on patient data (issue 16, parts 1 and 8): the IT key reads no audio or
transcript, tokens never travel in URLs, tickets open one resource once, and every read
and every refusal of patient data leaves an audit row (with no patient text for admins)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server.review.models import AuditEvent
from server.review.tickets import TicketBook, TicketPurpose
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread

H = dict[str, dict[str, str]]


@pytest.fixture
def visit(world: World) -> tuple[str, str]:
    """(encounter id, item id): 2 s of audio in room exam-1, its draft in north-general."""
    enc, item = add_encounter(world.db, "exam-1", seconds=2.0)
    assert item is not None
    return enc, item


def _client(server: ServerThread, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.http_url, timeout=10, headers=headers or {})


def _audit(world: World, action: str) -> list[AuditEvent]:
    with world.db.session() as s:
        rows = list(s.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.id))
        s.expunge_all()
        return rows


def _phi_urls(enc: str, item: str) -> list[str]:
    return [f"/api/v1/encounters/{enc}/audio.wav", f"/api/v1/encounters/{enc}/transcript",
            f"/api/v1/review/items/{item}/audio.wav", f"/api/v1/review/items/{item}/transcript",
            f"/api/v1/review/items/{item}"]


def test_the_it_key_reads_no_audio_or_transcript(server: ServerThread, world: World,
                                                 credentials: H, visit: tuple[str, str]) -> None:
    enc, item = visit
    with _client(server, credentials["it_key"]) as it:
        for url in _phi_urls(enc, item):
            r = it.get(url)
            assert r.status_code == 403, url
            assert "IT API key" in r.json()["detail"], url
            assert not r.content.startswith(b"RIFF") and "segments" not in r.text, url
        # ... and keeps what it is for: the encounter's ingest bookkeeping, the devices.
        assert it.get(f"/api/v1/encounters/{enc}").json()["frames_stored"] == 20
        assert it.get("/api/v1/devices").status_code == 200
    live = f"ws://127.0.0.1:{server.port}/ws/encounters/{enc}/live"
    with connect(live, additional_headers=credentials["it_key"], open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4403
    refused = _audit(world, "access_denied")
    assert {r.actor for r in refused} == {"api-key:it"}
    assert len(refused) == len(_phi_urls(enc, item)) + 1  # one row per refused request
    assert {r.encounter_id for r in refused} == {enc}


def test_clinicians_reads_are_audited(server: ServerThread, world: World, credentials: H,
                                      visit: tuple[str, str]) -> None:
    enc, item = visit
    with _client(server, credentials["physician"]) as doc:
        r = doc.get(f"/api/v1/encounters/{enc}/audio.wav")
        assert r.status_code == 200 and r.content.startswith(b"RIFF")
        assert r.headers["cache-control"] == "no-store"
        assert doc.get(f"/api/v1/encounters/{enc}/transcript").status_code == 200
        assert doc.get(f"/api/v1/review/items/{item}/audio.wav",
                       params={"start": 0.5, "end": 1}).status_code == 200
        assert len(doc.get("/api/v1/review/queue").json()) == 1
    with _client(server, credentials["partner"]) as alice:  # the pool's partner
        assert alice.get(f"/api/v1/encounters/{enc}/audio.wav").status_code == 200
    plays = [(r.actor, r.encounter_id, r.item_id, r.detail) for r in _audit(world, "play_audio")]
    assert plays == [("dr_north", enc, item, "whole visit"),
                     ("dr_north", enc, item, "0.50-1.0 s"),
                     ("alice", enc, item, "whole visit")]
    [view] = _audit(world, "view_transcript")
    assert (view.actor, view.encounter_id, view.clinic_id) == ("dr_north", enc, world.north)
    [queue] = _audit(world, "view_queue")
    assert (queue.actor, queue.detail, queue.clinic_id) == ("dr_north", "1 entries", world.north)


def test_tokens_in_the_url_are_refused(server: ServerThread, world: World, credentials: H,
                                       visit: tuple[str, str]) -> None:
    enc, item = visit
    token = credentials["physician"]["Authorization"].removeprefix("Bearer ")
    with _client(server) as anon:
        for url in _phi_urls(enc, item)[:3]:
            r = anon.get(url, params={"access_token": token})
            assert r.status_code == 401, url
    live = f"ws://127.0.0.1:{server.port}/ws/encounters/{enc}/live?access_token={token}"
    with connect(live, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4401


def _ticket(client: httpx.Client, purpose: str, resource: str) -> httpx.Response:
    return client.post("/api/v1/review/tickets", json={"purpose": purpose, "resource": resource})


def test_a_ticket_opens_its_resource_once(server: ServerThread, world: World, credentials: H,
                                          visit: tuple[str, str]) -> None:
    enc, item = visit
    _, item2 = add_encounter(world.db, "exam-1", seconds=1.0)
    assert item2 is not None
    with _client(server, credentials["physician"]) as doc, _client(server) as browser:
        body: dict[str, Any] = _ticket(doc, "item-audio", item).json()
        assert body["expires_in_s"] == 60 and body["ticket"].startswith("rst_")
        ticket = body["ticket"]
        url = f"/api/v1/review/items/{item}/audio.wav"
        assert browser.get(f"/api/v1/review/items/{item2}/audio.wav",
                           params={"ticket": ticket}).status_code == 401  # another item
        assert browser.get(f"/api/v1/encounters/{enc}/audio.wav",
                           params={"ticket": ticket}).status_code == 401  # another purpose
        r = browser.get(url, params={"ticket": ticket})
        assert r.status_code == 200 and r.content.startswith(b"RIFF")
        assert browser.get(url, params={"ticket": ticket}).status_code == 401  # used up
        assert browser.get(f"/api/v1/review/items/{item}/transcript",
                           params={"ticket": ticket}).status_code == 401  # headers only there

        enc_ticket = _ticket(doc, "encounter-audio", enc).json()["ticket"]
        assert browser.get(f"/api/v1/encounters/{enc}/audio.wav",
                           params={"ticket": enc_ticket}).status_code == 200

        live = _ticket(doc, "live-transcript", enc).json()["ticket"]
        socket = f"ws://127.0.0.1:{server.port}/ws/encounters/{enc}/live?ticket={live}"
        with connect(socket, open_timeout=10) as ws:
            assert '"transcript-state"' in str(ws.recv(timeout=10))
        with connect(socket, open_timeout=10) as ws:  # the same ticket again
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 4401
    with _client(server, credentials["other_partner"]) as dave:  # not his: no ticket
        assert _ticket(dave, "item-audio", item).status_code == 404
        assert _ticket(dave, "encounter-audio", enc).status_code == 404
    with _client(server, credentials["admin"]) as admin:
        assert _ticket(admin, "encounter-audio", enc).status_code == 403
    with _client(server, credentials["it_key"]) as it:
        assert _ticket(it, "encounter-audio", enc).status_code == 403
    grants = [(r.actor, r.item_id) for r in _audit(world, "play_audio")]
    assert grants == [("dr_north", item), ("dr_north", item)]


def test_a_ticket_is_signed_scoped_and_short_lived() -> None:
    book, now = TicketBook("secret " * 8), 1_000_000.0
    text, ticket = book.issue(7, TicketPurpose.ITEM_AUDIO, "item-1", now)
    assert ticket.expires_at == now + 60
    assert book.redeem(text, TicketPurpose.ITEM_AUDIO, "item-1", now + 61) is None  # expired
    assert book.redeem(text, TicketPurpose.ITEM_AUDIO, "item-2", now) is None
    assert book.redeem(text, TicketPurpose.LIVE_TRANSCRIPT, "item-1", now) is None
    payload, _, mac = text.partition(".")
    forged = TicketBook("another secret " * 4).issue(8, TicketPurpose.ITEM_AUDIO, "item-1",
                                                     now)[0]
    assert book.redeem(forged, TicketPurpose.ITEM_AUDIO, "item-1", now) is None  # other key
    assert book.redeem(payload + "x." + mac, TicketPurpose.ITEM_AUDIO, "item-1", now) is None
    redeemed = book.redeem(text, TicketPurpose.ITEM_AUDIO, "item-1", now + 59)
    assert redeemed is not None and redeemed.user_id == 7  # bound to its user
    assert book.redeem(text, TicketPurpose.ITEM_AUDIO, "item-1", now + 59) is None  # once


def test_refused_reads_are_audited(server: ServerThread, world: World, credentials: H,
                                   visit: tuple[str, str]) -> None:
    enc, item = visit
    with _client(server, credentials["other_partner"]) as dave:
        assert dave.get(f"/api/v1/review/items/{item}/audio.wav").status_code == 404
        assert dave.get(f"/api/v1/encounters/{enc}/transcript").status_code == 404
    with _client(server) as anon:
        assert anon.get(f"/api/v1/review/items/{item}").status_code == 401
    with _client(server, credentials["admin"]) as admin:
        assert admin.get(f"/api/v1/review/items/{item}/versions").status_code == 403
    rows = {(r.actor, r.item_id, r.encounter_id, r.detail, r.clinic_id)
            for r in _audit(world, "access_denied")}
    base = f"/api/v1/review/items/{item}"
    assert rows == {
        ("dave", item, enc, f"404 GET {base}/audio.wav", world.north),
        ("dave", "", enc, f"404 GET /api/v1/encounters/{enc}/transcript", world.north),
        ("anonymous", item, enc, f"401 GET {base}", world.north),
        ("admin_north", item, enc, f"403 GET {base}/versions", world.north),
    }
    assert not _audit(world, "play_audio") and not _audit(world, "view_transcript")


def test_the_admin_audit_view_hides_return_comments(server: ServerThread, world: World,
                                                    credentials: H,
                                                    visit: tuple[str, str]) -> None:
    _, item = visit
    comment = "Mrs Jones' potassium was 6.1, not 4.1; fix the plan."
    base = f"/api/v1/review/items/{item}"
    with _client(server, credentials["partner"]) as alice:
        assert alice.post(f"{base}/claim").status_code == 200
        assert alice.post(f"{base}/send").status_code == 200
    with _client(server, credentials["physician"]) as doc:
        r = doc.post(f"{base}/return", json={"comment": comment})
        assert r.status_code == 200 and r.json()["return_comment"] == comment  # lifecycle
    with _client(server, credentials["admin"]) as admin:
        events = admin.get("/api/v1/admin/audit", params={"item_id": item}).json()
    [ret] = [e for e in events if e["action"] == "return"]
    assert ret["detail"] == f"comment ({len(comment)} chars)"
    assert "potassium" not in str(events)
    admin_page = UserClient(server.http_url, "admin_north")  # the web page: the same query
    page = admin_page.get("/admin/audit")
    assert page.status_code == 200 and "comment (" in page.text and "potassium" not in page.text
