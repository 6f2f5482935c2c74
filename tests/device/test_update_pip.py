"""The real installer: a tiny real wheel, built here, served by a fake release server on
loopback, verified, pip-installed into a versioned directory under tmp and switched to;
an interpreter started the way systemd starts the agent (PYTHONPATH=current) runs it. A
wheel whose code does not import is rolled back before anything is switched."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from device.update import UpdateState
from device.update_install import PipInstaller
from device.update_run import Updater
from device.update_verify import load_public_key
from tests.device.fakes import TOKEN, make_settings
from tests.device.test_update import NIGHT
from tests.device.update_fakes import ReleaseKey, make_wheel, release_server


def _updater(tmp_path: Path, url: str, key: ReleaseKey, restarts: list[int]) -> Updater:
    key_file = key.write_public(tmp_path / "release-key.pub.pem")
    settings = make_settings(tmp_path, url, update_public_key=key_file,
                             update_dir=tmp_path / "agent")
    updater = Updater(settings, running="0.1.0", public_key=load_public_key(key_file),
                      blocker=lambda: "", reported_in=lambda: False,
                      restart=lambda: restarts.append(1),
                      installer=PipInstaller(probe_modules=("rs_update_probe",)),
                      local_time=lambda: NIGHT)
    updater.releases.prepare()
    return updater


async def test_pip_installs_a_signed_wheel_side_by_side_and_it_runs(tmp_path: Path) -> None:
    key = ReleaseKey()
    name, data = make_wheel("9.9.9", files={
        "rs_update_probe/__init__.py": "VALUE = 'nine'\n"})
    restarts: list[int] = []
    with release_server(TOKEN) as server:
        server.publish("9.9.9", name, data, key.sign(data))
        updater = _updater(tmp_path, server.ws_url, key, restarts)
        await updater.check_offer()
        await updater.step()  # download, verify, pip install, switch, restart
        assert updater.machine.state is UpdateState.RESTARTING, updater.machine.reason
    assert restarts == [1] and updater.releases.current_name() == "9.9.9"
    probe = ("import rs_update_probe; from importlib import metadata; "
             "print(rs_update_probe.VALUE, metadata.version('roomscribe'))")
    env = {**os.environ, "PYTHONPATH": str(updater.releases.current)}
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", probe], env=env, cwd=tmp_path,
        capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["nine", "9.9.9"]


async def test_a_wheel_that_does_not_import_is_rolled_back(tmp_path: Path) -> None:
    key = ReleaseKey()
    name, data = make_wheel("9.9.9", files={
        "rs_update_probe/__init__.py": "raise ImportError('broken build')\n"})
    restarts: list[int] = []
    with release_server(TOKEN) as server:
        server.publish("9.9.9", name, data, key.sign(data))
        updater = _updater(tmp_path, server.ws_url, key, restarts)
        await updater.check_offer()
        await updater.step()
    m = updater.machine
    assert m.state is UpdateState.ROLLED_BACK and "broken build" in m.reason
    assert restarts == [] and updater.releases.current_name() == ""
    assert list(updater.releases.releases.iterdir()) == []
