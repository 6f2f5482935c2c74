"""Agent releases on the server: IT publishes a signed wheel and offers it (IT key,
audited); a device asks for its offer and downloads the wheel with its own token, and
the real device updater installs it (fake installer) or refuses it; version drift on the
fleet rows; the ``roomscribe agent-release`` CLI (keygen, sign, add --offer, list).

Real server on a loopback port; SQLite (PostgreSQL with ROOMSCRIBE_TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from device.agent import Agent
from device.spool import Spool
from device.update import UpdateState
from device.update_run import RESTART_EXIT_CODE, Updater
from device.update_verify import load_public_key
from server import registry
from server.cli import main as cli
from server.db import Database
from server.fleet import releases
from server.fleet.releases import ReleaseError
from server.fleet.store import record_status
from server.fleet.view import fleet_rows
from server.models import Room
from server.review.models import AuditEvent
from server.settings import Settings
from tests.device.fakes import FakeMic
from tests.device.fakes import make_settings as device_settings
from tests.device.test_update import NIGHT
from tests.device.update_fakes import FakeInstaller, ReleaseKey, make_wheel
from tests.support import Enrolled, ServerThread, enrol_device, running_server

WAIT = 10.0


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv


@pytest.fixture
def it_key(db: Database) -> str:
    with db.session() as s:
        return registry.create_api_key(s, "it-desk")


def _audit(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "agent_release").order_by(AuditEvent.id)))


def _publish(server: ServerThread, key: str, version: str, rkey: ReleaseKey,
             data: bytes | None = None, name: str | None = None) -> httpx.Response:
    wheel_name, wheel = make_wheel(version)
    data = wheel if data is None else data
    return httpx.post(f"{server.http_url}/api/v1/agent-releases",
                      headers={"Authorization": f"Bearer {key}"},
                      files={"wheel": (name or wheel_name, data, "application/octet-stream")},
                      data={"signature": base64.b64encode(rkey.sign(data)).decode()},
                      timeout=WAIT)


def _offer(server: ServerThread, key: str, version: str | None, clinic: str = "",
           ) -> httpx.Response:
    return httpx.put(f"{server.http_url}/api/v1/agent-releases/offer",
                     headers={"Authorization": f"Bearer {key}"},
                     json={"version": version, "clinic_id": clinic}, timeout=WAIT)


def _device_get(server: ServerThread, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.http_url}{path}", headers={"Authorization": f"Bearer {token}"},
                     timeout=WAIT)


def test_publish_offer_and_a_device_fetches_its_release(
        server: ServerThread, db: Database, it_key: str) -> None:
    dev = enrol_device(db, "exam-1")
    rkey = ReleaseKey()
    assert _device_get(server, dev.token, "/api/v1/agent/offer").status_code == 204
    r = _publish(server, it_key, "0.2.0", rkey)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "0.2.0" and r.json()["published_by"] == "api-key:it-desk"
    assert _publish(server, it_key, "0.2.0", rkey).status_code == 409
    assert _device_get(server, dev.token, "/api/v1/agent/offer").status_code == 204  # not yet
    assert _offer(server, it_key, "0.2.0").json()["offers"] == {"*": "0.2.0"}

    offer = _device_get(server, dev.token, "/api/v1/agent/offer?version=0.1.0&state=idle")
    assert offer.status_code == 200, offer.text
    body = offer.json()
    _, wheel = make_wheel("0.2.0")
    assert body["sha256"] == hashlib.sha256(wheel).hexdigest() and body["size"] == len(wheel)
    rkey.private.public_key().verify(base64.b64decode(body["signature"]), wheel)
    got = _device_get(server, dev.token, body["url"])
    assert got.status_code == 200 and got.content == wheel
    # only the offered release, only with a device's token
    assert _device_get(server, dev.token,
                       "/api/v1/agent/releases/0.1.9/wheel").status_code == 404
    assert _device_get(server, it_key, body["url"]).status_code == 401
    assert _device_get(server, "rsd_wrong", "/api/v1/agent/offer").status_code == 401
    with db.session() as s:
        registry.revoke_device(s, dev.device_id)
    assert _device_get(server, dev.token, "/api/v1/agent/offer").status_code == 401
    # withdrawn: nothing offered
    assert _offer(server, it_key, None).json()["offers"] == {}
    assert _audit(db) == [
        f"agent release 0.2.0 published ({make_wheel('0.2.0')[0]}, sha256 {body['sha256']})",
        "agent offer for every clinic: none → 0.2.0",
        "agent offer for every clinic: 0.2.0 → none"]


def test_bad_releases_are_refused_with_the_reason(server: ServerThread, db: Database,
                                                  it_key: str) -> None:
    rkey = ReleaseKey()
    r = _publish(server, it_key, "0.2.0", rkey, name="roomscribe-0.3.0-py3-none-any.whl")
    assert r.status_code == 422 and "its METADATA 0.2.0" in r.text
    r = _publish(server, it_key, "0.2.0", rkey, data=b"not a zip",
                 name="roomscribe-0.2.0-py3-none-any.whl")
    assert r.status_code == 422 and "not a wheel" in r.text
    r = httpx.post(f"{server.http_url}/api/v1/agent-releases",
                   headers={"Authorization": f"Bearer {it_key}"},
                   files={"wheel": ("roomscribe-0.2.0-py3-none-any.whl", b"x")},
                   data={"signature": "AAAA"}, timeout=WAIT)
    assert r.status_code == 422 and "64 bytes" in r.text
    assert _offer(server, it_key, "9.9.9").status_code == 404
    assert _offer(server, it_key, None, clinic="no-such-clinic").status_code == 404
    r = httpx.post(f"{server.http_url}/api/v1/agent-releases", files={"wheel": ("a", b"x")},
                   data={"signature": "AAAA"}, timeout=WAIT)
    assert r.status_code == 401
    with db.session() as s:
        other = ReleaseKey()
        name, data = make_wheel("0.4.0")
        with pytest.raises(ReleaseError, match="does not match"):
            releases.add_release(s, name, data, rkey.sign(data), actor="t",
                                 public_pem=other.public_pem())
    assert _audit(db) == []


def test_a_clinic_offer_wins_over_the_fleet_wide_one(db: Database) -> None:
    north = enrol_device(db, "exam-1", clinic="North")
    south = enrol_device(db, "exam-9", clinic="South")
    rkey = ReleaseKey()
    with db.session() as s:
        for version in ("0.2.0", "0.3.0"):
            name, data = make_wheel(version)
            releases.add_release(s, name, data, rkey.sign(data), actor="t")
        north_clinic = s.get(Room, north.room_id).clinic_id  # type: ignore[union-attr]
        releases.set_offer(s, "0.2.0", actor="t")
        releases.set_offer(s, "0.3.0", clinic_id=north_clinic, actor="t")
    with db.session() as s:
        def offered(dev: Enrolled) -> str:
            found = releases.device_for_token(s, dev.token)
            assert found is not None
            release = releases.offer_for(s, found[1])
            return release.version if release else ""

        assert (offered(north), offered(south)) == ("0.3.0", "0.2.0")


async def test_the_device_updater_against_the_real_server(
        tmp_path: Path, server: ServerThread, db: Database, it_key: str) -> None:
    """The device's own client (offer, download, verify) with a fake installer: a good
    release is installed and switched to; one signed with another key is refused, and
    the device's refusal reaches the fleet rows."""
    dev = enrol_device(db, "exam-1")
    rkey = ReleaseKey()
    assert _publish(server, it_key, "0.2.0", rkey).status_code == 201
    assert _offer(server, it_key, "0.2.0").status_code == 200

    def updater(where: Path, key: ReleaseKey) -> tuple[Updater, list[int]]:
        where.mkdir()
        key_file = key.write_public(where / "release.pem")
        settings = device_settings(where, server.ws_url, device_id=dev.device_id,
                                   token=dev.token, update_public_key=key_file,
                                   update_dir=where / "agent")
        restarts: list[int] = []
        u = Updater(settings, running="0.1.0", public_key=load_public_key(key_file),
                    blocker=lambda: "", reported_in=lambda: True,
                    restart=lambda: restarts.append(1), installer=FakeInstaller(),
                    local_time=lambda: NIGHT)
        u.releases.prepare()
        return u, restarts

    good, restarts = updater(tmp_path / "good", rkey)
    await good.check_offer()
    await good.step()
    await good.step()
    assert good.machine.state is UpdateState.RESTARTING and restarts == [1]
    assert good.releases.current_name() == "0.2.0"

    bad, restarts = updater(tmp_path / "bad", ReleaseKey())  # provisioned with another key
    await bad.check_offer()
    await bad.step()
    assert bad.machine.state is UpdateState.REFUSED and "bad signature" in bad.machine.reason
    assert restarts == [] and bad.releases.current_name() == ""
    await bad.check_offer()  # tells the server
    with db.session() as s:
        record_status(db, dev.device_id, {"state": "idle", "health": {
            "agent_version": "0.1.0"}}, releases.utcnow())
        row = next(r for r in fleet_rows(s, [s.get(Room, dev.room_id).clinic_id],  # type: ignore[union-attr]
                                          lambda _d: True) if r.device_id == dev.device_id)
    assert row.update is not None and row.update.behind
    assert row.update.text == "0.1.0 → 0.2.0: refused"
    assert "bad signature" in row.update.reason


def test_drift_on_the_fleet_rows(db: Database) -> None:
    dev = enrol_device(db, "exam-1")
    rkey = ReleaseKey()
    with db.session() as s:
        clinic = s.get(Room, dev.room_id).clinic_id  # type: ignore[union-attr]
        [row] = fleet_rows(s, [clinic], lambda _d: True)
        assert row.update is not None and row.update.text == "no release offered"
        name, data = make_wheel("0.2.0")
        releases.add_release(s, name, data, rkey.sign(data), actor="t")
        releases.set_offer(s, "0.2.0", clinic_id=clinic, actor="t")
    record_status(db, dev.device_id, {"state": "idle", "health": {"agent_version": "0.1.0"}},
                  releases.utcnow())
    with db.session() as s:
        [row] = fleet_rows(s, [clinic], lambda _d: True)
        assert row.update is not None and row.update.behind
        assert row.update.text == "0.1.0 → 0.2.0"
        releases.record_device_update(s, dev.device_id, "0.1.0", "waiting-for-window",
                                      "outside the maintenance window 22:00-05:00")
    record_status(db, dev.device_id, {"state": "idle", "health": {"agent_version": "0.2.0"}},
                  releases.utcnow())
    with db.session() as s:
        [row] = fleet_rows(s, [clinic], lambda _d: True)
        assert row.update is not None and not row.update.behind
        assert row.update.text == "up to date (0.2.0)"


def test_the_cli_makes_a_key_signs_publishes_and_offers(
        tmp_path: Path, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROOMSCRIBE_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("ROOMSCRIBE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ROOMSCRIBE_ENVIRONMENT", "dev")
    keys = tmp_path / "keys"
    assert cli(["agent-release", "keygen", "--out", str(keys)]) == 0
    assert (keys / "release-key.pem").stat().st_mode & 0o777 == 0o600
    assert cli(["agent-release", "keygen", "--out", str(keys)]) == 1  # never overwrites
    name, data = make_wheel("0.5.0")
    wheel = tmp_path / name
    wheel.write_bytes(data)
    assert cli(["agent-release", "sign", str(wheel), "--key", str(keys / "release-key.pem")]) == 0
    sig = base64.b64decode((tmp_path / f"{name}.sig").read_text())
    load_public_key(keys / "release-key.pub.pem").verify(sig, data)  # raises if wrong
    capsys.readouterr()
    assert cli(["agent-release", "add", str(wheel), "--signature", str(tmp_path / f"{name}.sig"),
                "--public-key", str(keys / "release-key.pub.pem"), "--offer"]) == 0
    assert '"*": "0.5.0"' in capsys.readouterr().out
    assert cli(["agent-release", "offer", "0.0.1"]) == 1
    assert "no release '0.0.1'" in capsys.readouterr().err
    assert cli(["agent-release", "list"]) == 0
    assert '"version": "0.5.0"' in capsys.readouterr().out
    assert _audit(db)[-1] == "agent offer for every clinic: none → 0.5.0"


async def test_a_running_agent_updates_itself_and_exits_to_be_restarted(
        tmp_path: Path, server: ServerThread, db: Database, it_key: str) -> None:
    """The real agent against the real server: idle, inside its window, it takes the
    offered release (fake installer), switches ``current`` and stops with exit code 75."""
    dev = enrol_device(db, "exam-1")
    rkey = ReleaseKey()
    assert _publish(server, it_key, "0.2.0", rkey).status_code == 201
    assert _offer(server, it_key, "0.2.0").status_code == 200
    settings = device_settings(tmp_path, server.ws_url, device_id=dev.device_id,
                               token=dev.token, room_id=dev.room_id,
                               update_public_key=rkey.write_public(tmp_path / "release.pem"),
                               update_dir=tmp_path / "agent", update_window="00:00-00:00")
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    try:
        agent = Agent(settings, spool, FakeMic(0, finite=False), control=False)
        assert agent.updater is not None
        agent.updater.installer = installer = FakeInstaller()
        code = await asyncio.wait_for(agent.run(), WAIT)
    finally:
        spool.close()
    assert code == RESTART_EXIT_CODE
    assert [version for _wheel, version in installer.calls] == ["0.2.0"]
    assert agent.updater.releases.current_name() == "0.2.0"
    record = agent.updater.releases.read_record()
    assert record is not None and record.state is UpdateState.RESTARTING
