"""The real agent and the real server as processes on loopback: nothing lost, nothing doubled.

Each test is what could happen in a clinic: a normal visit, the server gone for
20 s mid-visit, the agent killed mid-visit, misbehaving clients hammering the
server while a room streams, and TLS against a clinic's own CA.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from protocol import CloseCode, Hello, encode_event
from server.lab.processes import RoomLab
from server.lab.speech import synthetic_room_wav
from tests.support import TEST_DATABASE_URL, reset_database
from tests.tlsca import make_ca_and_server_cert

pytestmark = pytest.mark.slow
WAIT = 120


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RoomLab]:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    room_lab = RoomLab(tmp_path / "lab", database_url=TEST_DATABASE_URL)
    room_lab.start_server()
    yield room_lab
    room_lab.close()


@pytest.fixture(scope="module")
def visit_60s(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("audio") / "visit60.wav"
    return path, synthetic_room_wav(path, 60.0)


def wait_agent(agent: subprocess.Popen[bytes], timeout: float = WAIT) -> None:
    assert agent.wait(timeout=timeout) == 0, "agent did not finish cleanly"


def only_encounter(lab: RoomLab, room_id: str) -> dict[str, object]:
    encounters = lab.encounters(room_id)
    assert len(encounters) == 1, encounters
    return lab.api(f"/api/v1/encounters/{encounters[0]['id']}")  # type: ignore[no-any-return]


def assert_identical(lab: RoomLab, room_id: str, pcm: bytes, frame_bytes: int = 3200) -> None:
    enc = only_encounter(lab, room_id)
    assert enc["status"] == "audio_complete"
    stored = lab.stored_audio(str(enc["id"]))
    assert len(stored) == len(pcm)
    assert stored == pcm
    frames = -(-len(pcm) // frame_bytes)
    assert enc["frames_stored"] == frames and enc["last_seq"] == frames - 1
    assert enc["gaps"] == [], enc["gaps"]


def test_visit_stored_byte_identical(lab: RoomLab, visit_60s: tuple[Path, bytes]) -> None:
    wav, pcm = visit_60s
    room = lab.add_room("exam-1")
    wait_agent(lab.start_agent(room, wav, speed=0))
    assert_identical(lab, "exam-1", pcm)
    assert not list(room.spool_dir.rglob("*.seg")), "spool not emptied after complete ack"


def test_server_down_20s_mid_visit(lab: RoomLab, visit_60s: tuple[Path, bytes]) -> None:
    wav, pcm = visit_60s
    room = lab.add_room("exam-2")
    agent = lab.start_agent(room, wav, speed=2)  # 30 s of capture
    time.sleep(8)
    lab.stop_server(kill=True)  # the process dies: no clean shutdown
    time.sleep(20)
    assert agent.poll() is None, "agent must keep capturing while the server is away"
    lab.start_server()
    wait_agent(agent)
    assert_identical(lab, "exam-2", pcm)


def test_agent_killed_and_restarted_mid_visit(lab: RoomLab,
                                             visit_60s: tuple[Path, bytes]) -> None:
    wav, pcm = visit_60s
    room = lab.add_room("exam-3")
    agent = lab.start_agent(room, wav, speed=4)
    time.sleep(6)
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=10)
    wait_agent(lab.start_agent(room, wav, speed=4))
    assert_identical(lab, "exam-3", pcm)


async def _misbehave(url: str, device_id: str) -> list[int | None]:
    codes: list[int | None] = []
    attempts: list[str | bytes] = [
        encode_event(Hello(device_id, "rsd_wrong-token").to_event()),
        encode_event(Hello("dev-nobody", "rsd_x").to_event()),
        os.urandom(64),
        "not json at all",
    ]
    for _ in range(5):
        for first in attempts:
            async with connect(url) as ws:
                await ws.send(first)
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                except ConnectionClosed:
                    codes.append(ws.close_code)
    return codes


def test_bad_clients_do_not_disturb_a_streaming_room(lab: RoomLab,
                                                     visit_60s: tuple[Path, bytes]) -> None:
    wav, pcm = visit_60s
    room = lab.add_room("exam-4")
    agent = lab.start_agent(room, wav, speed=6)
    url = lab.http_url.replace("http", "ws") + "/ws/device"
    codes = asyncio.run(_misbehave(url, room.device_id))
    assert set(codes) == {CloseCode.UNAUTHORIZED, CloseCode.PROTOCOL}
    wait_agent(agent)
    assert_identical(lab, "exam-4", pcm)
    assert [e["room_id"] for e in lab.encounters("exam-4")] == ["exam-4"]


def test_tls_with_the_clinic_ca(tmp_path: Path) -> None:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    tls = make_ca_and_server_cert(tmp_path / "tls")
    lab = RoomLab(tmp_path / "lab", database_url=TEST_DATABASE_URL, certfile=tls["cert"],
                  keyfile=tls["key"], ca_bundle=tls["ca"])
    lab.start_server()
    try:
        wav = tmp_path / "short.wav"
        pcm = synthetic_room_wav(wav, 5.0)
        room = lab.add_room("exam-tls")
        assert "wss://" in room.config.read_text()
        wait_agent(lab.start_agent(room, wav, speed=0))
        assert_identical(lab, "exam-tls", pcm)

        # A device that trusts another CA refuses the server and sends nothing.
        other = make_ca_and_server_cert(tmp_path / "other", ca_name="Someone Else")
        config = room.config.read_text().replace(str(tls["ca"]), str(other["ca"]))
        assert config != room.config.read_text()
        room.config.write_text(config)
        agent = lab.start_agent(room, wav, speed=0)
        time.sleep(4)
        assert agent.poll() is None  # keeps retrying with back-off, never falls back
        agent.terminate()
        agent.wait(timeout=20)
        log = room.config.with_name("agent.log").read_text()
        assert "certificate" in log.lower()
        assert len(lab.encounters("exam-tls")) == 1
    finally:
        lab.close()
