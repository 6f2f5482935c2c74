"""``roomscribe-device`` as IT and the lab run it: real processes, real signals."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from device.cli import main

from .fakes import DEVICE_ID, TOKEN, WAIT, FakeServer, eventually, write_wav

AGENT = [sys.executable, "-m", "device.cli"]


def room_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    (tmp_path / "device.token").write_text(TOKEN)
    (tmp_path / "device.token").chmod(0o600)
    path = tmp_path / "room.toml"
    path.write_text(
        f'server_url = "{url}"\ndevice_id = "{DEVICE_ID}"\nroom_id = "exam-1"\n'
        'token_file = "device.token"\nallow_insecure = true\nspool_dir = "spool"\n'
        'control_socket = "ctl.sock"\nping_interval_s = 1\n' + extra)
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_config_errors_exit_2_with_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = room_config(tmp_path, "ws://10.1.2.3/ws/device")
    assert main(["run", "--config", str(config)]) == 2
    assert "only allowed to a loopback host" in one_line_error(capsys)
    config = room_config(tmp_path, "ws://127.0.0.1:1/ws/device")
    assert main(["run", "--config", str(config), "--frame-ms", "33"]) == 2
    assert "--frame-ms: frame_ms: must be 20..1000" in one_line_error(capsys)
    assert main(["run", "--config", str(config), "--speed", "4"]) == 2
    assert "--speed only applies to --wav" in one_line_error(capsys)


def test_a_bad_wav_exits_1_with_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = room_config(tmp_path, "ws://127.0.0.1:1/ws/device")
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, 0.1, channels=2)
    assert main(["run", "--config", str(config), "--wav", str(stereo)]) == 1
    assert "2 channel(s)" in one_line_error(capsys)


def test_ctl_without_an_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ctl", "status", "--socket", str(tmp_path / "none.sock")]) == 1
    assert "no agent listening" in one_line_error(capsys)


def test_ctl_consent_needs_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = str(tmp_path / "none.sock")
    assert main(["ctl", "consent", "--socket", sock]) == 2
    assert "verbal, written or withdraw" in one_line_error(capsys)
    assert main(["ctl", "stop", "verbal", "--socket", sock]) == 2
    assert "takes no 'verbal'" in one_line_error(capsys)


async def spawn(config: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *AGENT, "run", "--config", str(config), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def test_killed_mid_visit_and_restarted_delivers_the_file_byte_identical(
        tmp_path: Path, fake_server: FakeServer) -> None:
    wav = tmp_path / "visit.wav"
    pcm = write_wav(wav, 6.0)  # 60 frames
    config = room_config(tmp_path, fake_server.url)
    args = ("--wav", str(wav), "--speed", "20", "--exit-when-done")

    first = await spawn(config, *args)
    await fake_server.until(lambda: any(e.next_seq >= 15 for e in
                                        fake_server.encounters.values()))
    first.send_signal(signal.SIGKILL)
    await asyncio.wait_for(first.wait(), WAIT)
    [enc] = fake_server.encounters
    assert not fake_server.complete(enc), "killed mid-visit"

    second = await spawn(config, *args)
    _out, err = await asyncio.wait_for(second.communicate(), WAIT)
    assert second.returncode == 0, err.decode()
    assert f"resuming encounter {enc}" in err.decode()
    assert list(fake_server.encounters) == [enc], "one visit, not two"
    assert fake_server.complete(enc)
    assert fake_server.audio(enc) == pcm
    assert fake_server.conflicts == []
    stored = fake_server.encounters[enc].frames
    start = fake_server.encounters[enc].started_at_us
    assert [f.captured_at_us for f in stored] == [start + i * 100_000 for i in range(60)]
    assert not list((tmp_path / "spool").rglob("*.seg"))


async def test_sigterm_stops_gracefully_and_keeps_the_visit_open(
        tmp_path: Path, fake_server: FakeServer) -> None:
    wav = tmp_path / "visit.wav"
    write_wav(wav, 30.0)
    config = room_config(tmp_path, fake_server.url)
    agent = await spawn(config, "--wav", str(wav))  # real time
    await fake_server.until(lambda: any(e.next_seq >= 2 for e in
                                        fake_server.encounters.values()))
    status = await asyncio.to_thread(main, ["ctl", "status", "--config", str(config)])
    assert status == 0
    agent.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(agent.communicate(), WAIT)
    assert agent.returncode == 0, err.decode()
    assert "agent stopped" in err.decode()
    [meta] = (tmp_path / "spool").glob("*/encounter.json")
    assert json.loads(meta.read_text())["ended"] is False, "the visit is still going on"
    assert not (tmp_path / "ctl.sock").exists()


async def test_ctl_drives_a_running_agent(tmp_path: Path, fake_server: FakeServer,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "visit.wav"
    write_wav(wav, 30.0)
    config = room_config(tmp_path, fake_server.url)
    agent = await spawn(config, "--wav", str(wav))
    try:
        await eventually(lambda: (tmp_path / "ctl.sock").exists())
        assert await asyncio.to_thread(main, ["ctl", "mute", "--config", str(config)]) == 0
        reply = json.loads(capsys.readouterr().out)
        assert reply["ok"] and reply["state"] == "muted"
        assert await asyncio.to_thread(main, ["ctl", "consent", "written", "--by", "Dr Lee",
                                              "--config", str(config)]) == 0
        assert json.loads(capsys.readouterr().out)["consent"] == "given"
        assert await asyncio.to_thread(main, ["ctl", "stop", "--socket",
                                              str(tmp_path / "ctl.sock")]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "idle"
        assert await asyncio.to_thread(main, ["ctl", "unmute", "--config", str(config)]) == 1
        assert "no visit is being recorded" in capsys.readouterr().out
        await fake_server.until(lambda: fake_server.complete())
    finally:
        agent.send_signal(signal.SIGTERM)
        await asyncio.wait_for(agent.communicate(), WAIT)
