"""/ws/device over a real socket: the happy path and every documented refusal."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, replace
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import (
    AudioFormat,
    AudioFrame,
    CloseCode,
    EncounterEnd,
    EncounterStart,
    ErrorCode,
    Hello,
    Ping,
    encode_event,
)
from server.db import Database
from server.models import AudioFrameRow, Encounter
from server.settings import Settings
from tests.support import Enrolled, ServerThread, enrol_device, running_server

T0 = 1_700_000_000_000_000
WAIT = 10


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[ServerThread]:
    with running_server(replace_settings(settings, hello_timeout_s=1.0)) as srv:
        yield srv


def replace_settings(settings: Settings, **kw: Any) -> Settings:
    return settings.model_copy(update=kw)


@pytest.fixture
def device(db: Database) -> Enrolled:
    return enrol_device(db)


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), WAIT)
    assert isinstance(message, str), message
    result: dict[str, Any] = json.loads(message)
    return result


async def send(ws: ClientConnection, body: Any) -> None:
    await ws.send(encode_event(body.to_event()))


async def expect_close(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code is not None
    return ws.close_code


def pcm(seq: int, size: int = 3200) -> bytes:
    return os.urandom(2) * (size // 2) if seq < 0 else bytes([seq % 256, 0]) * (size // 2)


async def open_device(server: ServerThread, dev: Enrolled) -> AsyncIterator[ClientConnection]:
    async with connect(server.ws_url, open_timeout=WAIT) as ws:
        await send(ws, Hello(dev.device_id, dev.token, dev.room_id, "test"))
        ready = await recv_json(ws)
        assert ready["type"] == "ready", ready
        yield ws


def stored(db: Database, encounter_id: str) -> bytes:
    with db.session() as s:
        rows = s.query(AudioFrameRow).filter_by(encounter_id=encounter_id).order_by(
            AudioFrameRow.seq)
        return b"".join(r.pcm for r in rows)


async def test_stream_is_stored_acked_and_completed(server: ServerThread, device: Enrolled,
                                                    db: Database) -> None:
    enc = str(uuid.uuid4())
    async for ws in open_device(server, device):
        await send(ws, EncounterStart(enc, T0))
        assert (await recv_json(ws))["data"] == {"encounter_id": enc, "seq": -1,
                                                 "complete": False}
        for seq in range(20):
            await ws.send(AudioFrame(enc, seq, T0 + seq * 100_000, pcm(seq)).to_bytes())
        acked = -1
        while acked < 19:
            event = await recv_json(ws)
            assert event["type"] == "ack"
            assert event["data"]["seq"] >= acked
            acked = event["data"]["seq"]
        await send(ws, EncounterEnd(enc, 19, T0 + 2_000_000))
        final = await recv_json(ws)
        assert final["data"] == {"encounter_id": enc, "seq": 19, "complete": True}
        await send(ws, Ping(7))
        assert await recv_json(ws) == {"type": "pong", "data": {"id": 7}}
    assert stored(db, enc) == b"".join(pcm(s) for s in range(20))


async def test_resent_and_out_of_order_frames(server: ServerThread, device: Enrolled,
                                              db: Database) -> None:
    enc = str(uuid.uuid4())
    async for ws in open_device(server, device):
        await send(ws, EncounterStart(enc, T0))
        await recv_json(ws)
        for seq in (0, 1, 1, 0, 5):
            await ws.send(AudioFrame(enc, seq, T0 + seq * 100_000, pcm(seq)).to_bytes())
        events = []
        while not any(e["type"] == "error" for e in events):
            events.append(await recv_json(ws))
        error = next(e for e in events if e["type"] == "error")["data"]
        assert error["code"] == ErrorCode.OUT_OF_ORDER and error["seq"] == 2
        # The connection stays usable: resend from the ack.
        for seq in range(2, 6):
            await ws.send(AudioFrame(enc, seq, T0 + seq * 100_000, pcm(seq)).to_bytes())
        while (await recv_json(ws))["data"].get("seq") != 5:
            pass
    assert stored(db, enc) == b"".join(pcm(s) for s in range(6))


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"token": "rsd_wrong"}, CloseCode.UNAUTHORIZED),
        ({"token": ""}, CloseCode.UNAUTHORIZED),
        ({"device_id": "dev-nobody"}, CloseCode.UNAUTHORIZED),
        ({"audio": asdict(AudioFormat(rate=44_100))}, CloseCode.UNSUPPORTED_FORMAT),
        ({"audio": asdict(AudioFormat(channels=2))}, CloseCode.UNSUPPORTED_FORMAT),
        ({"audio": {"rate": "fast"}}, CloseCode.UNSUPPORTED_FORMAT),
    ],
)
async def test_hello_refused(server: ServerThread, device: Enrolled, db: Database,
                             tamper: dict[str, Any], code: int) -> None:
    hello = Hello(device.device_id, device.token, device.room_id, "test")
    async with connect(server.ws_url) as ws:
        await ws.send(encode_event(replace(hello.to_event(),
                                           data={**hello.to_event().data, **tamper})))
        # A device that is refused must not be able to store anything, even if it tries.
        enc = str(uuid.uuid4())
        with pytest.raises(ConnectionClosed):
            await send(ws, EncounterStart(enc, T0))
            await ws.send(AudioFrame(enc, 0, T0, pcm(0)).to_bytes())
            await asyncio.wait_for(ws.recv(), WAIT)
        assert ws.close_code == code
    with db.session() as s:
        assert s.query(Encounter).count() == 0


@pytest.mark.parametrize(
    "first",
    [b"\x00\x01random bytes", "not json", json.dumps({"type": "encounter-start", "data": {}}),
     json.dumps({"type": "hello", "data": {"device_id": 5}}), json.dumps([1, 2])],
)
async def test_garbage_before_hello_closes_with_protocol_error(
        server: ServerThread, db: Database, first: str | bytes) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(first)
        assert await expect_close(ws) == CloseCode.PROTOCOL
    with db.session() as s:
        assert s.query(Encounter).count() == 0


async def test_silent_client_is_closed_after_hello_timeout(server: ServerThread) -> None:
    async with connect(server.ws_url) as ws:
        assert await expect_close(ws) == CloseCode.HELLO_TIMEOUT


async def test_bad_frames_get_errors_and_the_connection_keeps_working(
        server: ServerThread, device: Enrolled, db: Database) -> None:
    enc = str(uuid.uuid4())
    async for ws in open_device(server, device):
        await send(ws, EncounterStart(enc, T0))
        await recv_json(ws)
        good = AudioFrame(enc, 0, T0, pcm(0)).to_bytes()
        cases = [
            (os.urandom(100), ErrorCode.MALFORMED_FRAME),
            (good[:20], ErrorCode.MALFORMED_FRAME),
            (b"XXXX" + good[4:], ErrorCode.MALFORMED_FRAME),
            (good + b"\x01", ErrorCode.MALFORMED_FRAME),  # half a sample
            (AudioFrame(enc, 0, T0, b"\0" * 40_000).to_bytes(), ErrorCode.FRAME_TOO_LARGE),
            (AudioFrame(str(uuid.uuid4()), 0, T0, pcm(0)).to_bytes(),
             ErrorCode.UNKNOWN_ENCOUNTER),
            ("{not json", ErrorCode.MALFORMED_EVENT),
            (json.dumps({"type": "teleport", "data": {}}), ErrorCode.MALFORMED_EVENT),
            (json.dumps({"type": "encounter-start", "data": {"encounter_id": "x"}}),
             ErrorCode.MALFORMED_EVENT),
            (json.dumps({"type": "ack", "data": {"encounter_id": enc, "seq": 1}}),
             ErrorCode.MALFORMED_EVENT),
        ]
        for message, code in cases:
            await ws.send(message)
            event = await recv_json(ws)
            assert event["type"] == "error" and event["data"]["code"] == code, (message, event)
        await ws.send(good)
        assert (await recv_json(ws))["data"]["seq"] == 0
    assert stored(db, enc) == pcm(0)


async def test_frame_over_transport_limit_closes_1009(server: ServerThread,
                                                      device: Enrolled) -> None:
    async for ws in open_device(server, device):
        await ws.send(b"\0" * (2 << 20))
        assert await expect_close(ws) == CloseCode.MESSAGE_TOO_BIG


async def test_second_connection_of_a_device_replaces_the_first(server: ServerThread,
                                                               device: Enrolled) -> None:
    async for first in open_device(server, device):
        async for second in open_device(server, device):
            assert await expect_close(first) == CloseCode.REPLACED
            await send(second, Ping(1))
            assert (await recv_json(second))["type"] == "pong"

