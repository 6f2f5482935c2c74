"""Agent updates on the device: the pure machine, the maintenance window, and the
updater against a fake release server on loopback with a fake installer on tmp dirs.

Good signature: installed side by side, ``current`` switched, restart asked; the new
agent reports in and it is applied. Bad signature / wrong sha256 / wrong version inside:
refused with the reason, nothing installed, not downloaded again. Install failure: rolled
back (nothing switched). The new agent never reports in, or crashes at start: rolled
back. Never during a visit, with unacked audio, or outside the window."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from device.agent import Agent
from device.errors import ConfigError
from device.settings import AgentSettings, load_settings
from device.spool import Spool
from device.update import (
    Effect,
    MaintenanceWindow,
    Offer,
    UpdateMachine,
    UpdateRecord,
    UpdateState,
    after_restart,
)
from device.update_guard import guard
from device.update_install import ReleaseDir
from device.update_run import Updater
from device.update_verify import load_public_key
from tests.device.fakes import TOKEN, FakeMic, eventually, make_settings
from tests.device.update_fakes import (
    FakeInstaller,
    FakeReleaseServer,
    ReleaseKey,
    make_wheel,
    offer_json,
    release_server,
)

NIGHT = time(2, 30)
NOON = time(12, 0)


# ------------------------------------------------------------------- pure parts


def test_the_maintenance_window_may_cross_midnight() -> None:
    w = MaintenanceWindow.parse("22:00-05:00")
    assert [w.contains(t) for t in (time(22), time(23, 59), time(0), time(4, 59), time(5),
                                    time(12), time(21, 59))] == [True] * 4 + [False] * 3
    day = MaintenanceWindow.parse("12:30-13:00")
    assert day.contains(time(12, 45)) and not day.contains(time(13)) \
        and not day.contains(time(1))
    assert str(w) == "22:00-05:00"
    for bad in ("22-05", "25:00-01:00", "10:61-11:00", ""):
        with pytest.raises(ValueError, match="maintenance window"):
            MaintenanceWindow.parse(bad)


def _offer(**changes: Any) -> dict[str, Any]:
    name, data = make_wheel("0.2.0")
    return {**offer_json("0.2.0", name, data, b"\x01" * 64), **changes}


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": "ABC"}, "sha256"),
    ({"size": 0}, "size"),
    ({"signature": "not base64!"}, "base64"),
    ({"signature": "AAAA"}, "64 bytes"),
    ({"filename": "../evil.whl"}, "file name"),
    ({"url": "https://elsewhere/x.whl"}, "path on the server"),
    ({"version": ""}, "version"),
])
def test_a_malformed_offer_is_rejected_with_what_is_wrong(change: dict[str, Any],
                                                          message: str) -> None:
    assert Offer.from_json(_offer()).version == "0.2.0"
    with pytest.raises(ValueError, match=message):
        Offer.from_json(_offer(**change))


def test_the_machine_never_starts_during_a_visit_or_outside_the_window() -> None:
    m = UpdateMachine("0.1.0", MaintenanceWindow.parse("22:00-05:00"))
    assert m.offered(Offer.from_json(_offer())).state is UpdateState.OFFERED
    t = m.tick(NOON, "")
    assert (t.state, t.effects) == (UpdateState.WAITING, ())
    assert "outside the maintenance window 22:00-05:00" in t.reason
    t = m.tick(NIGHT, "a visit is being recorded")
    assert (t.state, t.effects, t.reason) == (UpdateState.WAITING, (),
                                             "a visit is being recorded")
    assert m.tick(NIGHT, "").effects == (Effect.DOWNLOAD,)
    assert m.downloaded().effects == (Effect.VERIFY,)
    assert m.verified().effects == (Effect.INSTALL,)
    assert m.installed().state is UpdateState.READY
    # installed, but a visit started meanwhile: the restart waits for it
    assert m.tick(NIGHT, "a visit is being recorded").state is UpdateState.READY
    assert m.tick(NIGHT, "").effects == (Effect.SWITCH_AND_RESTART,)


def test_the_same_version_or_no_offer_is_idle() -> None:
    m = UpdateMachine("0.2.0", MaintenanceWindow.parse("00:00-00:00"))
    assert m.offered(Offer.from_json(_offer())).state is UpdateState.IDLE
    assert m.offered(None).state is UpdateState.IDLE
    assert m.tick(NIGHT, "").effects == ()


def test_after_restart_applies_once_reported_in_and_rolls_back_on_timeout() -> None:
    rec = UpdateRecord(UpdateState.RESTARTING, "0.1.0", "0.2.0", "")
    assert after_restart(None, "0.2.0", reported_in=True, waited_s=0, timeout_s=60) is None
    wait = after_restart(rec, "0.2.0", reported_in=False, waited_s=10, timeout_s=60)
    assert wait is not None and wait.state is UpdateState.RESTARTING and not wait.effects
    ok = after_restart(rec, "0.2.0", reported_in=True, waited_s=10, timeout_s=60)
    assert ok is not None and ok.effects == (Effect.MARK_APPLIED,)
    late = after_restart(rec, "0.2.0", reported_in=False, waited_s=60, timeout_s=60)
    assert late is not None and late.effects == (Effect.ROLLBACK_AND_RESTART,)
    assert "did not report in" in late.reason
    wrong = after_restart(rec, "0.1.0", reported_in=True, waited_s=1, timeout_s=60)
    assert wrong is not None and wrong.state is UpdateState.ROLLED_BACK


# ------------------------------------------------------- the updater, end to end


class Harness:
    def __init__(self, tmp_path: Path, server: FakeReleaseServer, key: ReleaseKey,
                 running: str = "0.1.0", installer: FakeInstaller | None = None,
                 blocker: Callable[[], str] = lambda: "", reported_in: bool = False,
                 clock: list[float] | None = None) -> None:
        key_file = key.write_public(tmp_path / "release-key.pub.pem")
        self.settings = make_settings(tmp_path, server.ws_url, update_public_key=key_file,
                                      update_dir=tmp_path / "agent",
                                      update_health_timeout_s=60.0)
        self.installer = installer or FakeInstaller()
        self.restarts = 0
        self.clock = clock if clock is not None else [0.0]
        self.reported_in = reported_in

        def restart() -> None:
            self.restarts += 1

        self.updater = Updater(self.settings, running=running,
                               public_key=load_public_key(key_file), blocker=blocker,
                               reported_in=lambda: self.reported_in, restart=restart,
                               installer=self.installer, local_time=lambda: NIGHT,
                               monotonic=lambda: self.clock[0], health_poll_s=0)
        self.releases: ReleaseDir = self.updater.releases
        self.releases.prepare()

    async def check_and_step(self, steps: int = 2) -> None:
        await self.updater.check_offer()
        for _ in range(steps):
            await self.updater.step()


@pytest.fixture
def key() -> ReleaseKey:
    return ReleaseKey()


@pytest.fixture
def server() -> Any:
    with release_server(TOKEN) as srv:
        yield srv


async def test_a_good_signature_applies(tmp_path: Path, server: FakeReleaseServer,
                                        key: ReleaseKey) -> None:
    name, data = make_wheel("0.2.0")
    server.publish("0.2.0", name, data, key.sign(data))
    h = Harness(tmp_path, server, key)
    await h.check_and_step()
    assert h.updater.machine.state is UpdateState.RESTARTING and h.restarts == 1
    assert h.releases.current_name() == "0.2.0"
    assert (h.releases.releases / "0.2.0" / "rs_update_probe" / "__init__.py").is_file()
    assert os.readlink(h.releases.current) == "releases/0.2.0"
    rec = h.releases.read_record()
    assert rec == UpdateRecord(UpdateState.RESTARTING, "0.1.0", "0.2.0", "")
    assert list(h.releases.downloads.iterdir()) == []  # the wheel is not kept

    # the restarted agent (now 0.2.0) reports in: applied, and it says so
    new = Harness(tmp_path, server, key, running="0.2.0", reported_in=True)
    await new.updater.health_check()
    record = new.releases.read_record()
    assert record is not None and record.state is UpdateState.APPLIED
    assert new.updater.machine.state is UpdateState.APPLIED and new.restarts == 0
    await new.updater.check_offer()
    assert server.reported()[-1] == "applied"
    assert new.updater.machine.state is UpdateState.IDLE  # 0.2.0 is what it runs


@pytest.mark.parametrize(("make", "reason"), [
    ("bad-signature", "bad signature"),
    ("wrong-sha", "sha256 mismatch"),
    ("wrong-version", "signed wheel is version 0.3.0"),
])
async def test_a_bad_wheel_is_refused_and_nothing_installed(
        tmp_path: Path, server: FakeReleaseServer, key: ReleaseKey, make: str,
        reason: str) -> None:
    name, data = make_wheel("0.2.0")
    if make == "bad-signature":  # signed by someone else's key
        server.publish("0.2.0", name, data, ReleaseKey().sign(data))
    elif make == "wrong-sha":  # the server's sha256 is not this wheel's
        server.publish("0.2.0", name, data, key.sign(data),
                       sha256=hashlib.sha256(b"other").hexdigest())
    else:  # a genuinely signed 0.3.0 offered as 0.2.0
        _, other = make_wheel("0.3.0")
        server.publish("0.2.0", name, other, key.sign(other))
    h = Harness(tmp_path, server, key)
    await h.check_and_step()
    m = h.updater.machine
    assert m.state is UpdateState.REFUSED and reason in m.reason
    assert h.installer.calls == [] and h.restarts == 0
    assert list(h.releases.releases.iterdir()) == [] and h.releases.current_name() == ""
    assert list(h.releases.downloads.iterdir()) == []
    # the same offer is not downloaded again; the server is told why
    await h.check_and_step()
    assert server.downloads() == 1
    assert server.reported()[-1] == "refused"
    assert reason in server.requests[-1][1]["reason"][0]


async def test_an_install_failure_rolls_back(tmp_path: Path, server: FakeReleaseServer,
                                             key: ReleaseKey) -> None:
    name, data = make_wheel("0.2.0")
    server.publish("0.2.0", name, data, key.sign(data))
    h = Harness(tmp_path, server, key, installer=FakeInstaller(fail="disk full"))
    await h.check_and_step()
    m = h.updater.machine
    assert m.state is UpdateState.ROLLED_BACK and "install failed: disk full" in m.reason
    assert h.restarts == 0 and h.releases.current_name() == ""
    assert list(h.releases.releases.iterdir()) == []  # the half-installed release is gone
    await h.check_and_step()  # not fetched and installed again every hour
    assert server.downloads() == 1 and len(h.installer.calls) == 1
    assert server.reported()[-1] == "rolled-back"


async def test_a_new_agent_that_never_reports_in_is_rolled_back(
        tmp_path: Path, server: FakeReleaseServer, key: ReleaseKey) -> None:
    name1, data1 = make_wheel("0.2.0")
    server.publish("0.2.0", name1, data1, key.sign(data1))
    h = Harness(tmp_path, server, key)
    await h.check_and_step()
    await Harness(tmp_path, server, key, running="0.2.0",
                  reported_in=True).updater.health_check()  # 0.2.0 applied
    name2, data2 = make_wheel("0.3.0")
    server.publish("0.3.0", name2, data2, key.sign(data2))
    h2 = Harness(tmp_path, server, key, running="0.2.0")
    await h2.check_and_step()
    assert h2.releases.current_name() == "0.3.0" and h2.restarts == 1

    clock = [0.0]
    new = Harness(tmp_path, server, key, running="0.3.0", clock=clock)
    clock[0] = 61.0  # past update_health_timeout_s without reporting in
    await new.updater.health_check()
    assert new.restarts == 1 and new.releases.current_name() == "0.2.0"
    rec = new.releases.read_record()
    assert rec is not None and rec.state is UpdateState.ROLLED_BACK
    assert "did not report in" in rec.reason

    # back on 0.2.0 the same offer is not tried again
    back = Harness(tmp_path, server, key, running="0.2.0", reported_in=True)
    await back.updater.health_check()
    await back.check_and_step()
    assert back.updater.machine.state is UpdateState.ROLLED_BACK
    assert "0.3.0 was rolled back before" in back.updater.machine.reason
    assert back.restarts == 0 and server.downloads() == 2


async def test_a_release_that_cannot_start_is_rolled_back_by_the_guard(
        tmp_path: Path, server: FakeReleaseServer, key: ReleaseKey) -> None:
    name, data = make_wheel("0.2.0")
    server.publish("0.2.0", name, data, key.sign(data))
    h = Harness(tmp_path, server, key)
    await h.check_and_step()
    root = h.releases.root
    assert [guard(root) for _ in range(3)] == [
        "starting 0.2.0 (try 1)", "starting 0.2.0 (try 2)", "starting 0.2.0 (try 3)"]
    assert "rolled back to the base install" in guard(root)
    assert h.releases.current_name() == "" and guard(root) == ""
    rec = h.releases.read_record()
    assert rec is not None and rec.state is UpdateState.ROLLED_BACK


async def test_no_update_while_a_visit_is_recorded_or_audio_is_unacked(
        tmp_path: Path, server: FakeReleaseServer, key: ReleaseKey) -> None:
    name, data = make_wheel("0.2.0")
    server.publish("0.2.0", name, data, key.sign(data))
    key_file = key.write_public(tmp_path / "release-key.pub.pem")
    settings = make_settings(tmp_path, server.ws_url, update_public_key=key_file,
                             update_dir=tmp_path / "agent")
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    try:
        agent = Agent(settings, spool, FakeMic(10, finite=False), control=False)
        assert agent.updater is not None
        assert agent._update_blocker() == ""
        agent.command("start")
        assert agent._update_blocker() == "a visit is being recorded"
        agent.updater._local_time = lambda: NIGHT
        agent.updater.installer = FakeInstaller()
        await agent.updater.check_offer()
        await agent.updater.step()
        assert agent.updater.machine.state is UpdateState.WAITING
        assert server.downloads() == 0
        agent.command("stop")  # the visit ended, its audio not yet acked
        assert agent._update_blocker() == "audio not yet acknowledged by the server"
        await agent.updater.step()
        assert server.downloads() == 0
    finally:
        await agent._stop_capture()
        spool.close()


def test_update_settings_load_and_fail_clearly(tmp_path: Path, key: ReleaseKey) -> None:
    (tmp_path / "device.token").write_text("t")
    (tmp_path / "device.token").chmod(0o600)
    key.write_public(tmp_path / "release.pem")
    base = ('server_url = "wss://scribe.example/ws/device"\ndevice_id = "d"\n'
            'token_file = "device.token"\n')
    room = tmp_path / "room.toml"
    room.write_text(base + 'update_public_key = "release.pem"\nupdate_window = "01:00-04:00"\n')
    s: AgentSettings = load_settings(room)
    assert s.update_public_key == tmp_path / "release.pem" and s.update_window == "01:00-04:00"
    assert load_settings(tmp_path / "room.toml").update_dir == Path("/var/lib/roomscribe/agent")
    room.write_text(base + 'update_window = "nightly"\n')
    with pytest.raises(ConfigError, match="update_window: maintenance window"):
        load_settings(room)
    room.write_text(base + 'update_public_key = "missing.pem"\n')
    with pytest.raises(ConfigError, match="update_public_key: cannot read"):
        load_settings(room)
    (tmp_path / "not-a-key.pem").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(tmp_path / "not-a-key.pem")


def test_the_systemd_unit_runs_the_guard_and_puts_current_first() -> None:
    unit = (Path(__file__).parents[2] / "device" / "deploy" / "roomscribe-device.service")
    text = unit.read_text()
    assert ("ExecStartPre=-/opt/roomscribe/venv/bin/python -I -m device.update_guard "
            "/var/lib/roomscribe/agent") in text
    assert "PYTHONPATH=/var/lib/roomscribe/agent/current" in text
    assert "Restart=always" in text  # exit 75 (RESTART_EXIT_CODE) starts it again


class _BrokenClient:
    """Raises an unexpected error on the first offer, then offers nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def offer(self, running: str, state: str, reason: str) -> Offer | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug")
        return None

    def download(self, offer: Offer, dest: Path) -> None:
        raise AssertionError("nothing is offered")


async def test_an_updater_bug_never_stops_the_agent(tmp_path: Path, key: ReleaseKey) -> None:
    key_file = key.write_public(tmp_path / "k.pem")
    settings = make_settings(tmp_path, "ws://127.0.0.1:9/ws/device", update_check_s=0.0,
                             update_public_key=key_file, update_dir=tmp_path / "agent")
    client = _BrokenClient()
    updater = Updater(settings, running="0.1.0", public_key=load_public_key(key_file),
                      blocker=lambda: "", reported_in=lambda: True, restart=lambda: None,
                      client=client, tick_s=0.01)
    task = asyncio.create_task(updater.run())
    try:
        await eventually(lambda: client.calls >= 3, 5.0)
        assert not task.done()  # the bug was logged; the loop goes on
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert updater.machine.state is UpdateState.IDLE


def test_enrolment_writes_the_release_key_into_room_toml(tmp_path: Path,
                                                         key: ReleaseKey) -> None:
    from device.cli import build_parser
    from device.enroll import Enrolment, write_enrolment

    args = build_parser().parse_args(["enroll", "--server", "http://127.0.0.1:1", "--code",
                                      "C", "--room-config", "r.toml", "--token-file", "t",
                                      "--release-key", "k.pem"])
    assert args.update_public_key == Path("k.pem")
    pem = key.write_public(tmp_path / "release-key.pem")
    write_enrolment(Enrolment("dev-1", "exam-1", "rsd_x"), server="http://127.0.0.1:8000",
                    room_config=tmp_path / "room.toml", token_file=tmp_path / "device.token",
                    options={"update_public_key": pem})
    assert load_settings(tmp_path / "room.toml").update_public_key == pem


def test_provisioning_installs_the_release_key(tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "device" / "deploy" / "provision.sh"
    done = subprocess.run(["bash", str(script), "--dry-run", "--server", "https://scribe",
                           "--code", "C", "--package", "/src", "--release-key",
                           str(tmp_path / "release-key.pub.pem")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (f"install -m 0644 -o root -g root {tmp_path}/release-key.pub.pem "
            "/etc/roomscribe/release-key.pem") in done.stdout
    [enrol] = [line for line in done.stdout.splitlines() if " enroll " in line]
    assert enrol.endswith("--release-key /etc/roomscribe/release-key.pem")
