"""Input limits (issue 16, part 10): every number a client sends is range-checked.

Over HTTP a number out of range is a 422 that names the range (never a 500); encounter
ids are canonical lowercase UUIDs. On the device socket an integer outside its range
(README "Numbers") gets ``error`` ``out-of-range``, is not used, and the connection and
its writer carry on: the next valid encounter is stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from protocol import (
    AUDIO_HEADER,
    AUDIO_MAGIC,
    MAX_SEQ,
    AudioFrame,
    EncounterEnd,
    EncounterStart,
    ErrorCode,
    Hello,
    ProtocolError,
    Status,
    encode_event,
    parse_event,
)
from server.db import Database
from server.models import AudioFrameRow, Encounter
from tests.review.world import World, add_encounter
from tests.support import ServerThread, enrol_device

H = dict[str, dict[str, str]]
WAIT = 10
T0 = 1_700_000_000_000_000


def _get(server: ServerThread, headers: dict[str, str], url: str,
         **params: Any) -> httpx.Response:
    with httpx.Client(base_url=server.http_url, timeout=10, headers=headers) as http:
        return http.get(url, params=params)


def test_numbers_in_urls_are_range_checked(server: ServerThread, world: World,
                                           credentials: H) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=1.0)
    doc, it = credentials["physician"], credentials["it_key"]
    audio = f"/api/v1/review/items/{item}/audio.wav"
    for params in ({"start": "1e308"}, {"start": "inf"}, {"start": "nan"}, {"start": "-1"},
                   {"start": "86401"}, {"end": "1e308"}, {"end": "-inf"}, {"end": "0"}):
        r = _get(server, doc, audio, **params)
        assert r.status_code == 422, (params, r.text)
    assert "86400" in _get(server, doc, audio, start="1e308").text  # names the range
    assert _get(server, doc, audio, start="0.5", end="0.9").status_code == 200

    versions = f"/api/v1/review/items/{item}/versions"
    for number in ("99999999999999999999", "2147483648", "0", "-1"):
        assert _get(server, doc, f"{versions}/{number}").status_code == 422, number
    assert _get(server, doc, f"{versions}/1").status_code == 200
    absent = _get(server, doc, f"{versions}/2147483647")  # in range, no such version
    assert absent.status_code == 422 and "no version" in absent.text
    assert _get(server, doc, f"/api/v1/review/items/{item}/fhir",
                version="99999999999999999999").status_code == 422

    for limit in ("-99999999999999999999", "-1", "0", "1001", "1e3"):
        assert _get(server, it, "/api/v1/encounters", limit=limit).status_code == 422, limit
    assert len(_get(server, it, "/api/v1/encounters", limit="1").json()) == 1
    for limit in ("-5", "0", "5001", "99999999999999999999"):
        r = _get(server, credentials["admin"], "/api/v1/admin/audit", limit=limit)
        assert r.status_code == 422, limit


def test_encounter_ids_are_canonical_uuids(server: ServerThread, world: World,
                                           credentials: H) -> None:
    enc, _ = add_encounter(world.db, "exam-1", seconds=1.0)
    spellings = (enc.upper(), enc.replace("-", ""), "{" + enc + "}", f"urn:uuid:{enc}",
                 "not-a-uuid", enc + "0")
    for bad in spellings:
        r = _get(server, credentials["it_key"], f"/api/v1/encounters/{bad}")
        assert r.status_code == 422 and "canonical lowercase UUID" in r.text, bad
        for tail in ("audio.wav", "transcript"):
            r = _get(server, credentials["physician"], f"/api/v1/encounters/{bad}/{tail}")
            assert r.status_code == 422, (bad, tail)
    assert _get(server, credentials["it_key"], f"/api/v1/encounters/{enc}").status_code == 200


def test_the_protocol_range_checks_every_integer() -> None:
    enc = str(uuid.uuid4())

    def code(data: dict[str, Any], type_: str) -> str:
        with pytest.raises(ProtocolError) as err:
            parse_event(json.dumps({"type": type_, "data": data}))
        return err.value.code

    assert code({"encounter_id": enc, "started_at_us": 2**63}, "encounter-start") == \
        ErrorCode.OUT_OF_RANGE
    assert code({"encounter_id": enc, "started_at_us": -1}, "encounter-start") == \
        ErrorCode.OUT_OF_RANGE
    assert code({"encounter_id": enc, "last_seq": MAX_SEQ + 1}, "encounter-end") == \
        ErrorCode.OUT_OF_RANGE
    assert code({"encounter_id": enc, "last_seq": -2}, "encounter-end") == ErrorCode.OUT_OF_RANGE
    assert code({"encounter_id": enc, "last_seq": 1, "ended_at_us": 10**19},
                "encounter-end") == ErrorCode.OUT_OF_RANGE
    assert code({"state": "idle", "counters": {"frames": 2**64}}, "status") == \
        ErrorCode.OUT_OF_RANGE
    assert code({"id": -(2**63) - 1}, "ping") == ErrorCode.OUT_OF_RANGE
    assert code({"encounter_id": enc.upper()}, "encounter-start") == ErrorCode.MALFORMED_EVENT
    assert isinstance(parse_event(encode_event(EncounterEnd(enc, -1, 0).to_event())),
                      EncounterEnd)
    assert isinstance(parse_event(encode_event(Status("idle", None, 0, {"f": 1}).to_event())),
                      Status)
    for seq, captured in ((2**64 - 1, T0), (2**63, T0), (MAX_SEQ + 1, T0), (0, -1)):
        frame = AUDIO_HEADER.pack(AUDIO_MAGIC, 1, uuid.UUID(enc).bytes, seq, captured)
        with pytest.raises(ProtocolError) as err:
            AudioFrame.from_bytes(frame + bytes(320))
        assert err.value.code == ErrorCode.OUT_OF_RANGE


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), WAIT)
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def test_int64_overflow_on_the_device_socket_is_refused_and_the_writer_survives(
        server: ServerThread, db: Database) -> None:
    dev = enrol_device(db)
    bad, good = str(uuid.uuid4()), str(uuid.uuid4())
    async with connect(server.ws_url, open_timeout=WAIT) as ws:
        await ws.send(encode_event(Hello(dev.device_id, dev.token, dev.room_id, "t").to_event()))
        assert (await _recv(ws))["type"] == "ready"
        # Numbers past int64 (and past their documented ranges): each is refused alone.
        await ws.send(encode_event(EncounterStart(bad, 2**70).to_event()))
        await ws.send(encode_event(EncounterStart(bad.upper(), T0).to_event()))
        await ws.send(encode_event(EncounterEnd(bad, 2**63, T0).to_event()))
        await ws.send(encode_event(Status("idle", None, 2**64, {}).to_event()))
        header = AUDIO_HEADER.pack(AUDIO_MAGIC, 1, uuid.UUID(bad).bytes, 2**64 - 1, T0)
        await ws.send(header + bytes(3200))
        errors = [await _recv(ws) for _ in range(5)]
        assert [(e["type"], e["data"]["code"]) for e in errors] == [
            ("error", "out-of-range"), ("error", "malformed-event"), ("error", "out-of-range"),
            ("error", "out-of-range"), ("error", "out-of-range")]
        assert "audio.seq must be in 0.." in errors[-1]["data"]["message"]
        # The same connection, and its writer, still store a valid visit.
        await ws.send(encode_event(EncounterStart(good, T0).to_event()))
        assert (await _recv(ws))["data"] == {"encounter_id": good, "seq": -1, "complete": False}
        for seq in range(3):
            await ws.send(AudioFrame(good, seq, T0 + seq * 100_000, bytes(3200)).to_bytes())
        await ws.send(encode_event(EncounterEnd(good, 2, T0 + 300_000).to_event()))
        while not (ack := await _recv(ws))["data"].get("complete"):
            assert ack["type"] == "ack", ack
    with db.session() as s:
        assert s.get(Encounter, bad) is None and s.get(Encounter, bad.upper()) is None
        assert s.query(AudioFrameRow).filter_by(encounter_id=good).count() == 3
