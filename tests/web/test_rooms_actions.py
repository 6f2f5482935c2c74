"""The rooms page's device buttons over HTTP, as the page's JS calls them (session cookie
+ X-CSRF-Token): a one-time enrolment code that enrols, revoke, start / stop / mute /
unmute, the diagnostic bundle as a download and a live config change applied or refused
with the agent's reason, against the real agent on loopback. Each is audited with the
admin's user id; a non-admin gets 403, a missing CSRF token 403, another clinic's
device 404, and none of those changes anything."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from server import registry
from server.cli import main
from server.db import Database
from server.models import Device
from server.review.models import AuditEvent, User
from server.settings import Settings
from tests.review.world import UserClient, World
from tests.server.test_device_actions import RunningAgent
from tests.support import ServerThread, enrol_device

BASE = "/admin/rooms/devices"


def _audit(db: Database, action: str) -> list[tuple[int | None, str, str, str]]:
    with db.session() as s:
        return [(e.user_id, e.actor, e.clinic_id, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def _user_id(db: Database, username: str) -> int:
    with db.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        return user.id


async def _post(client: UserClient, path: str, body: dict[str, Any] | None = None
                ) -> httpx.Response:
    return await asyncio.to_thread(client.post, f"{BASE}/{path}", json=body)


def test_an_enrolment_code_is_issued_once_audited_and_enrols(server: ServerThread,
                                                             world: World) -> None:
    admin = UserClient(server.http_url, "admin_north")
    r = admin.post(f"{BASE}/dev-exam-2/enrolment-code")
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["device_id"] == "dev-exam-2" and r.json()["expires_at"]
    rows = _audit(world.db, "device_code")
    assert rows == [(_user_id(world.db, "admin_north"), "admin_north", "north-clinic",
                     rows[0][3])]
    assert "enrolment code issued, valid until" in rows[0][3] and code not in rows[0][3]
    assert rows[0][3].endswith("-> device dev-exam-2")
    second = admin.post(f"{BASE}/dev-exam-2/enrolment-code").json()["code"]
    assert second != code
    # the first code stopped working; the new one enrols the device
    assert httpx.post(f"{server.http_url}/api/v1/devices/enroll",
                      json={"code": code}).status_code == 404
    r = httpx.post(f"{server.http_url}/api/v1/devices/enroll", json={"code": second})
    assert r.status_code == 200 and r.json()["device_id"] == "dev-exam-2"


def test_revoke_is_audited_and_locks_the_device_out(server: ServerThread,
                                                    world: World) -> None:
    dev = enrol_device(world.db, "exam-1")
    admin = UserClient(server.http_url, "admin_north")
    r = admin.post(f"{BASE}/{dev.device_id}/revoke")
    assert r.status_code == 200, r.text
    assert r.json() == {"device_id": dev.device_id, "state": "revoked"}
    with world.db.session() as s:
        device = s.get(Device, dev.device_id)
        assert device is not None and device.token_hash is None and device.revoked_at
    assert _audit(world.db, "device_revoke") == [
        (_user_id(world.db, "admin_north"), "admin_north", "north-clinic",
         f"enrolled -> revoked -> device {dev.device_id}")]
    # the rooms page now lists it only on request, as revoked
    rows = admin.get("/admin/rooms/rows").text
    assert dev.device_id not in rows
    assert "revoked" in admin.get("/admin/rooms/rows", params={"all": "1"}).text


def test_who_may_not_is_refused_and_nothing_changes(server: ServerThread,
                                                    world: World) -> None:
    dev = enrol_device(world.db, "exam-1")
    south = enrol_device(world.db, "south-1")
    admin = UserClient(server.http_url, "admin_north")
    alice = UserClient(server.http_url, "alice")  # a partner of North
    no_csrf = UserClient(server.http_url, "admin_north")
    del no_csrf.http.headers["X-CSRF-Token"]
    anonymous = httpx.Client(base_url=server.http_url, timeout=10)
    actions: list[tuple[str, dict[str, Any] | None]] = [
        ("enrolment-code", None), ("revoke", None), ("command", {"action": "stop"}),
        ("diagnostics", None), ("config", {"changes": {"log_interval_s": 15}})]
    for what, body in actions:
        path = f"{BASE}/{dev.device_id}/{what}"
        r = alice.post(path, json=body)
        assert r.status_code == 403 and "for admins" in r.text, (what, r.text)
        r = no_csrf.post(path, json=body)
        assert r.status_code == 403 and "CSRF" in r.text, (what, r.text)
        assert anonymous.post(path, json=body).status_code == 401, what
        r = admin.post(f"{BASE}/{south.device_id}/{what}", json=body)  # South's device
        assert r.status_code == 404, (what, r.text)
        assert admin.post(f"{BASE}/dev-nope/{what}", json=body).status_code == 404, what
    with world.db.session() as s:
        device = s.get(Device, dev.device_id)
        assert device is not None and device.token_hash is not None
        assert device.enrolment_code_hash is None
    for action in ("device_code", "device_revoke", "device_command"):
        assert _audit(world.db, action) == [], action
    # a bad command or config body is refused before anything is sent
    assert admin.post(f"{BASE}/{dev.device_id}/command",
                      json={"action": "explode"}).status_code == 422
    assert admin.post(f"{BASE}/{dev.device_id}/config",
                      json={"changes": {}}).status_code == 422


def test_an_offline_device_is_said_so_and_audited(server: ServerThread, world: World) -> None:
    dev = enrol_device(world.db, "exam-1")
    admin = UserClient(server.http_url, "admin_north")
    r = admin.post(f"{BASE}/{dev.device_id}/command", json={"action": "start"})
    assert r.status_code == 409 and "not connected" in r.json()["detail"]
    r = admin.post(f"{BASE}/{dev.device_id}/diagnostics")
    assert r.status_code == 409 and "not connected" in r.json()["detail"]
    me = _user_id(world.db, "admin_north")
    assert [(u, d) for u, _, _, d in _audit(world.db, "device_command")] == [
        (me, f"start: not connected -> device {dev.device_id}"),
        (me, f"diagnostics: not connected -> device {dev.device_id}")]


async def test_commands_diagnostics_and_config_reach_the_agent(
        tmp_path: Path, server: ServerThread, world: World) -> None:
    dev = enrol_device(world.db, "exam-1")
    admin = await asyncio.to_thread(UserClient, server.http_url, "admin_north")
    async with RunningAgent(tmp_path, server, dev) as agent:
        for action in ("start", "mute", "unmute", "stop"):
            r = await _post(admin, f"{dev.device_id}/command", {"action": action})
            assert r.status_code == 202, r.text
            assert r.json() == {"device_id": dev.device_id, "action": action}
        r = await _post(admin, f"{dev.device_id}/diagnostics")
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"].startswith(
            f'attachment; filename="roomscribe-diagnostics-{dev.device_id}-')
        bundle = r.json()
        assert dev.token not in r.text and "token" not in bundle["config"]
        assert bundle["device_id"] == dev.device_id and "counters" in bundle["status"]
        r = await _post(admin, f"{dev.device_id}/config", {"changes": {"log_interval_s": 15}})
        assert r.status_code == 200, r.text
        assert r.json() == {"device_id": dev.device_id, "applied": {"log_interval_s": 15},
                            "persisted": False}
        assert agent.settings.log_interval_s == 15
        r = await _post(admin, f"{dev.device_id}/config", {"changes": {"frame_ms": 20}})
        assert r.status_code == 422 and "restart the agent" in r.json()["detail"], r.text
        assert agent.settings.frame_ms != 20
    me = _user_id(world.db, "admin_north")
    rows = _audit(world.db, "device_command")
    assert {(u, a, c) for u, a, c, _ in rows} == {(me, "admin_north", "north-clinic")}
    details = [d.removesuffix(f" -> device {dev.device_id}") for *_, d in rows]
    assert details[:4] == ["start: sent", "mute: sent", "unmute: sent", "stop: sent"]
    assert details[4].startswith("diagnostics: received (")
    assert details[5] == 'config {"log_interval_s": 15}: applied'
    assert details[6].startswith('config {"frame_ms": 20}: refused: ')
    assert "restart the agent" in details[6]


def test_the_it_api_and_the_cli_audit_code_and_revoke_the_same_way(
        server: ServerThread, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    dev = enrol_device(world.db, "exam-1")
    with world.db.session() as s:
        key = registry.create_api_key(s, "it-desk")
    it = httpx.Client(base_url=server.http_url, timeout=10,
                      headers={"Authorization": f"Bearer {key}"})
    r = it.post(f"/api/v1/devices/{dev.device_id}/enrolment-code")
    assert r.status_code == 201 and r.json()["code"]
    r = it.post(f"/api/v1/devices/{dev.device_id}/revoke")
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert it.post("/api/v1/devices/dev-nope/revoke").status_code == 404
    assert [(u, a, c) for u, a, c, _ in
            _audit(world.db, "device_code") + _audit(world.db, "device_revoke")] == [
        (None, "api-key:it-desk", "north-clinic")] * 2
    assert _audit(world.db, "device_revoke")[0][3] == (
        f"enrolled -> revoked -> device {dev.device_id}")

    # the CLI, on a database of its own
    monkeypatch.setenv("ROOMSCRIBE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.delenv("ROOMSCRIBE_DATABASE_URL", raising=False)
    assert main(["admin", "clinic", "add", "West Clinic"]) == 0
    assert main(["admin", "room", "add", "--clinic", "west-clinic", "--id", "w-1", "W 1"]) == 0
    capsys.readouterr()
    assert main(["admin", "device", "add", "--room", "w-1"]) == 0
    device_id = json.loads(capsys.readouterr().out)["device_id"]
    assert main(["admin", "device", "code", device_id]) == 0
    assert main(["admin", "device", "revoke", device_id]) == 0
    assert main(["admin", "device", "revoke", "dev-nope"]) == 1
    assert "no device 'dev-nope'" in capsys.readouterr().err
    cli_db = Database(Settings(data_dir=tmp_path / "cli").resolved_database_url)
    try:
        codes, revokes = _audit(cli_db, "device_code"), _audit(cli_db, "device_revoke")
        # "device add" issues its first code through the registry; "device code" is audited
        assert [(u, a) for u, a, _, _ in codes + revokes] == [(None, "cli")] * 2
        assert codes[0][3].startswith("enrolment code issued, valid until ")
        assert revokes[0][2:] == ("west-clinic",
                                  f"not enrolled -> revoked -> device {device_id}")
    finally:
        cli_db.dispose()
