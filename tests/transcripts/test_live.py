"""The live-view websocket and the transcript routes, on a real server on loopback,
with the transcription stage running a fake engine behind the real device ingest."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import AudioFrame, Consent, EncounterEnd, EncounterStart, Hello, encode_event
from server import registry
from server.db import Database
from server.settings import Settings
from tests.asr.fakes import FakeEngine
from tests.support import Enrolled, ServerThread, enrol_device, running_server

WAIT = 10
T0 = 1_700_000_000_000_000


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def server(settings: Settings, db: Database, engine: FakeEngine) -> Iterator[ServerThread]:
    with running_server(settings.model_copy(update={"asr_behind_threshold_s": 1000,
                                                    "drafting": False}),
                        engine=engine) as srv:
        yield srv


@pytest.fixture
def api_key(db: Database) -> str:
    with db.session() as s:
        return registry.create_api_key(s, "viewer-test")


def clinician_token(db: Database, dev: Enrolled) -> str:
    """A user API token of a physician of the device's clinic (the room has no owner)."""
    from server.models import Room
    from server.review import directory
    from server.review.auth import create_user_token

    with db.session() as s:
        room = s.get(Room, dev.room_id)
        assert room is not None
        user = directory.add_user(s, f"doc-{uuid.uuid4().hex[:6]}", "a long password",
                                  room.clinic_id, "physician")
        s.flush()
        return create_user_token(s, user.id, "viewer")


async def ticket(server: ServerThread, token: str, eid: str) -> str:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as http:
        r = await http.post("/api/v1/review/tickets", headers={"Authorization": f"Bearer {token}"},
                            json={"purpose": "live-transcript", "resource": eid})
        assert r.status_code == 200, r.text
        text: str = r.json()["ticket"]
        return text


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), WAIT)
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def start_visit(server: ServerThread, dev: Enrolled, eid: str) -> ClientConnection:
    ws = await connect(server.ws_url, open_timeout=WAIT)
    await ws.send(encode_event(Hello(dev.device_id, dev.token, dev.room_id, "t").to_event()))
    assert (await recv(ws))["type"] == "ready"
    await ws.send(encode_event(EncounterStart(eid, T0).to_event()))
    assert (await recv(ws))["type"] == "ack"
    # the patient agreed to the recording, as the room records it (server/privacy)
    await ws.send(encode_event(Consent(eid, "given", "verbal", "Dr Test", T0).to_event()))
    return ws


async def send_audio_and_end(ws: ClientConnection, eid: str, seconds: float) -> None:
    n = int(seconds * 10)
    for seq in range(n):
        await ws.send(AudioFrame(eid, seq, T0 + seq * 100_000, bytes(3200)).to_bytes())
    await ws.send(encode_event(EncounterEnd(eid, n - 1, T0 + n * 100_000).to_event()))
    while not (ack := await recv(ws))["data"].get("complete"):
        assert ack["type"] == "ack", ack


async def viewer_events(url: str) -> tuple[list[dict[str, Any]], int | None]:
    events = []
    async with connect(url, open_timeout=WAIT) as ws:
        try:
            while True:
                events.append(await recv(ws))
        except ConnectionClosed:
            pass
        return events, ws.close_code


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["data"].get("text", "")) for e in events
            if e["type"] not in ("transcript-state", "transcription-start")]


async def test_viewer_sees_partials_finals_and_completion(server: ServerThread, db: Database,
                                                          api_key: str) -> None:
    dev, eid = enrol_device(db), str(uuid.uuid4())
    token = clinician_token(db, dev)
    device_ws = await start_visit(server, dev, eid)
    live = f"ws://127.0.0.1:{server.port}/ws/encounters/{eid}/live"
    viewer = asyncio.create_task(viewer_events(f"{live}?ticket={await ticket(server, token, eid)}"))
    await asyncio.sleep(0.3)  # the viewer is subscribed before any audio
    await send_audio_and_end(device_ws, eid, 3.5)
    events, code = await asyncio.wait_for(viewer, WAIT)
    await device_ws.close()
    assert events[0]["type"] == "transcript-state"
    assert summary(events) == [
        ("partial", "good"), ("partial", "good morning"), ("final", "good morning"),
        ("partial", "start lisinopril"), ("partial", ""), ("partial", "ten milligrams"),
        ("final", "ten milligrams daily"), ("transcript-complete", "")]
    assert code == 1000
    assert events[-1]["data"]["segments"] == 2

    async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT) as http:
        headers = {"Authorization": f"Bearer {token}"}
        r = await http.get(f"/api/v1/encounters/{eid}/transcript", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["transcription"]["status"] == "complete"
        assert body["transcription"]["audio_s"] == pytest.approx(3.5)
        assert [s["text"] for s in body["segments"]] == ["good morning", "ten milligrams daily"]
        assert body["segments"][0]["words"][0]["text"] == "good"
        assert (await http.get(f"/api/v1/encounters/{eid}/transcript")).status_code == 401
        missing = await http.get(f"/api/v1/encounters/{uuid.uuid4()}/transcript",
                                 headers=headers)
        assert missing.status_code == 404
        it_key = {"Authorization": f"Bearer {api_key}"}  # devices and configuration only
        refused = await http.get(f"/api/v1/encounters/{eid}/transcript", headers=it_key)
        assert refused.status_code == 403 and "segments" not in refused.text
        rooms = (await http.get("/api/v1/transcription/rooms", headers=it_key)).json()
        assert rooms["engine"] == "fake:scripted" and rooms["active"] == 0

    # A viewer arriving after the end gets the stored finals, then the socket closes.
    late, code = await viewer_events(f"{live}?ticket={await ticket(server, token, eid)}")
    assert summary(late) == [("final", "good morning"), ("final", "ten milligrams daily")]
    assert late[0]["data"]["status"] == "complete" and code == 1000


async def test_live_view_refuses_unauthorised_and_unknown(server: ServerThread, db: Database,
                                                          api_key: str) -> None:
    dev, eid = enrol_device(db), str(uuid.uuid4())
    token = clinician_token(db, dev)
    device_ws = await start_visit(server, dev, eid)
    base = f"ws://127.0.0.1:{server.port}/ws/encounters"
    _, code = await viewer_events(f"{base}/{eid}/live")
    assert code == 4401
    _, code = await viewer_events(f"{base}/{eid}/live?access_token={token}")  # never in URLs
    assert code == 4401
    _, code = await viewer_events(f"{base}/{eid}/live?ticket=wrong")
    assert code == 4401
    other = await ticket(server, token, eid)  # a ticket opens only its own encounter
    _, code = await viewer_events(f"{base}/{uuid.uuid4()}/live?ticket={other}")
    assert code == 4401
    async with connect(f"{base}/{eid}/live", open_timeout=WAIT,
                       additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 4403  # the IT key: no patient data
    _, code = await viewer_events(f"{base}/{eid.upper()}/live")
    assert code == 4404
    await device_ws.close()
