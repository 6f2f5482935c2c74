"""IT's remote actions on a device, end to end: the real server on a loopback port, the
real agent in this event loop. A diagnostic bundle comes back as a download (no token
in it); a live config change is applied whole or refused with the agent's reason; a
device that is offline (409) or too old to answer (504) is said so; all audited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect

from device.agent import Agent
from device.spool import Spool
from protocol import Hello, Ready, encode_event, parse_event
from server import registry
from server.db import Database
from server.review.models import AuditEvent
from server.settings import Settings
from tests.device.fakes import FakeMic, eventually, make_settings
from tests.support import (
    TEST_DATABASE_URL,
    Enrolled,
    ServerThread,
    enrol_device,
    reset_database,
    running_server,
)
from tests.support import make_settings as server_settings

WAIT = 10.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    return server_settings(tmp_path / "server", device_answer_timeout_s=1.0)


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv


@pytest.fixture
def it_key(db: Database) -> str:
    with db.session() as s:
        return registry.create_api_key(s, "it-desk")


async def _post(server: ServerThread, key: str, path: str,
                body: dict[str, object] | None = None) -> httpx.Response:
    def post() -> httpx.Response:
        return httpx.post(f"{server.http_url}/api/v1/devices/{path}", json=body,
                          headers={"Authorization": f"Bearer {key}"}, timeout=WAIT)

    return await asyncio.to_thread(post)


def _audit(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "device_command").order_by(AuditEvent.id)))


class RunningAgent:
    def __init__(self, tmp_path: Path, server: ServerThread, dev: Enrolled) -> None:
        self.settings = make_settings(tmp_path, server.ws_url, device_id=dev.device_id,
                                      token=dev.token, room_id=dev.room_id)
        self.spool = Spool.open(self.settings.spool_dir, self.settings.spool_max_bytes)
        self.agent = Agent(self.settings, self.spool, FakeMic(0, finite=False))
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Agent:
        self.task = asyncio.create_task(self.agent.run())
        await eventually(lambda: self.agent.uplink.connected, WAIT)
        return self.agent

    async def __aexit__(self, *_exc: object) -> None:
        self.agent.request_stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)
        self.spool.close()


async def test_diagnostic_bundle_is_downloaded_without_the_token(
        tmp_path: Path, server: ServerThread, db: Database, it_key: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="device")  # the agent's CLI logs at INFO
    dev = enrol_device(db, "exam-1")
    async with RunningAgent(tmp_path, server, dev) as agent:
        r = await _post(server, it_key, f"{dev.device_id}/diagnostics")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith(
        f'attachment; filename="roomscribe-diagnostics-{dev.device_id}-')
    bundle = r.json()
    assert dev.token not in r.text and "token" not in bundle["config"]
    assert bundle["config"]["device_id"] == dev.device_id
    assert bundle["config"]["token_file"] == str(agent.settings.token_file)
    assert bundle["status"]["state"] == "idle" and bundle["status"]["connected"] is True
    assert "frames_sent" in bundle["status"]["counters"]
    assert any("uplink: connected to" in line for line in bundle["log"]), bundle["log"]
    assert _audit(db)[-1].startswith("diagnostics: received (")


async def test_config_change_applied_whole_or_refused_with_the_reason(
        tmp_path: Path, server: ServerThread, db: Database, it_key: str) -> None:
    dev = enrol_device(db, "exam-1")
    async with RunningAgent(tmp_path, server, dev) as agent:
        r = await _post(server, it_key, f"{dev.device_id}/config",
                        {"changes": {"log_interval_s": 15, "max_inflight_kb": 256}})
        assert r.status_code == 200, r.text
        assert r.json() == {"device_id": dev.device_id, "persisted": False,
                            "applied": {"log_interval_s": 15, "max_inflight_kb": 256}}
        assert (agent.settings.log_interval_s, agent.settings.max_inflight_kb) == (15, 256)
        assert agent.uplink.settings is agent.settings

        for changes, reason in (({"frame_ms": 20}, "restart the agent"),
                                ({"token_file": "/tmp/x"}, "restart the agent"),
                                ({"log_interval_s": 30, "ping_interval_s": -1},
                                 "ping_interval_s: must be greater than 0"),
                                ({"max_inflight_kb": "lots"}, "must be an integer"),
                                ({"volume": 11}, "unknown key")):
            r = await _post(server, it_key, f"{dev.device_id}/config", {"changes": changes})
            assert r.status_code == 422, (changes, r.text)
            assert reason in r.json()["detail"], (changes, r.text)
        assert agent.settings.log_interval_s == 15  # nothing of a refused change applied
    details = _audit(db)
    assert details[0].startswith('config {"log_interval_s": 15, "max_inflight_kb": 256}: '
                                 "applied")
    assert len(details) == 6 and all(": refused: " in d for d in details[1:])


async def test_offline_and_too_old_devices_are_said_so(
        server: ServerThread, db: Database, it_key: str) -> None:
    dev = enrol_device(db, "exam-1")
    r = await _post(server, it_key, f"{dev.device_id}/diagnostics")
    assert r.status_code == 409 and "not connected" in r.text
    # an agent of the previous release: connected, ignores requests it does not know
    async with connect(server.ws_url) as ws:
        await ws.send(encode_event(Hello(dev.device_id, dev.token, dev.room_id).to_event()))
        assert isinstance(parse_event(await asyncio.wait_for(ws.recv(), WAIT)), Ready)
        r = await _post(server, it_key, f"{dev.device_id}/config",
                        {"changes": {"log_interval_s": 15}})
    assert r.status_code == 504 and "did not answer" in r.text
    assert _audit(db) == [f"diagnostics: not connected -> device {dev.device_id}",
                          f'config {{"log_interval_s": 15}}: no answer -> device '
                          f"{dev.device_id}"]


async def test_only_the_it_key_may_ask(server: ServerThread, db: Database) -> None:
    dev = enrol_device(db, "exam-1")
    with db.session() as s:
        other = registry.create_api_key(s, "intake", role="ingest")
    for key in ("nope", other):
        r = await _post(server, key, f"{dev.device_id}/diagnostics")
        assert r.status_code == 401
