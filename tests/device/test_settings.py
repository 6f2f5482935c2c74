"""Settings: one TOML per room, CLI overrides, and clear messages for bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from device.errors import ConfigError
from device.settings import AgentSettings, control_socket_of, is_loopback_host, load_settings


def room_toml(tmp_path: Path, extra: str = "", *, url: str = "wss://scribe.example/ws/device",
              token: str | None = "tok-123") -> Path:
    token_file = tmp_path / "device.token"
    if token is not None:
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    path = tmp_path / "room.toml"
    path.write_text(
        f'server_url = "{url}"\n'
        'device_id = "dev-1"\n'
        'room_id = "exam-3"\n'
        'token_file = "device.token"\n' + extra
    )
    return path


def error_of(path: Path | None, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_settings(path, overrides)
    return str(exc.value)


def test_a_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    s = load_settings(room_toml(tmp_path))
    assert s.server_url == "wss://scribe.example/ws/device"
    assert s.token == "tok-123"
    assert s.token_file == tmp_path / "device.token"  # relative to the file
    assert (s.frame_ms, s.spool_max_mb, s.ping_interval_s) == (100, 512, 10.0)
    assert s.ca_bundle is None and s.allow_insecure is False
    assert s.frame_bytes == 3200
    assert "tok-123" not in repr(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.frame_ms = 20  # type: ignore[misc]


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    s = load_settings(room_toml(tmp_path, "frame_ms = 200\n"),
                      {"frame_ms": 40, "spool_dir": "rel/spool", "room_id": None})
    assert s.frame_ms == 40
    assert s.spool_dir == Path.cwd() / "rel/spool"  # relative to where the CLI ran
    assert s.room_id == "exam-3"  # None = flag not given


@pytest.mark.parametrize(("extra", "overrides", "expected"), [
    ("colour = 'blue'\n", {}, "room.toml: unknown key 'colour'"),
    ("frame_ms = '100'\n", {}, "room.toml: frame_ms: must be an integer, got '100'"),
    ("frame_ms = true\n", {}, "frame_ms: must be an integer, got True"),
    ("ping_interval_s = 'x'\n", {}, "ping_interval_s: must be an integer or a number"),
    ("allow_insecure = 1\n", {}, "allow_insecure: must be true or false"),
    ("frame_ms = 15\n", {}, "frame_ms: must be 20..1000 and a multiple of 10, got 15"),
    ("frame_ms = 105\n", {}, "multiple of 10, got 105"),
    ("frame_ms = 2000\n", {}, "got 2000"),
    ("", {"frame_ms": 5}, "--frame-ms: frame_ms: must be 20..1000"),
    ("spool_max_mb = 0\n", {}, "spool_max_mb: must be at least 1"),
    ("pong_timeout_s = 0\n", {}, "pong_timeout_s: must be greater than 0"),
    ("ca_bundle = 'missing.pem'\n", {}, "ca_bundle: cannot read"),
    ("", {"server_url": "https://x/ws"}, "server_url: scheme must be wss://"),
])
def test_bad_values_name_the_file_and_the_key(tmp_path: Path, extra: str,
                                              overrides: dict[str, Any], expected: str) -> None:
    assert expected in error_of(room_toml(tmp_path, extra), overrides)


def test_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "room.toml"
    path.write_text('server_url = "wss://h/ws/device"\n')
    assert error_of(path) == f"{path}: missing required key 'device_id'"


def test_not_toml_and_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("server_url = \n")
    assert "not valid TOML" in error_of(bad)
    assert "config file not found" in error_of(tmp_path / "nope.toml")


def test_plain_ws_only_to_loopback_and_only_when_allowed(tmp_path: Path) -> None:
    remote = room_toml(tmp_path, "allow_insecure = true\n", url="ws://10.0.0.5:8000/ws/device")
    assert "only allowed to a loopback host" in error_of(remote)
    local = room_toml(tmp_path, url="ws://127.0.0.1:8000/ws/device")
    assert "ws:// (unencrypted) needs allow_insecure = true" in error_of(local)
    assert load_settings(local, {"allow_insecure": True}).allow_insecure
    for host in ("localhost", "127.0.0.9", "[::1]"):
        path = room_toml(tmp_path, "allow_insecure = true\n", url=f"ws://{host}:1/ws/device")
        assert load_settings(path).server_url.startswith("ws://")


def test_token_file_problems(tmp_path: Path) -> None:
    path = room_toml(tmp_path, token=None)
    assert "token_file: cannot read token file" in error_of(path)
    (tmp_path / "device.token").write_text("  \n")
    assert "is empty; enrol this device" in error_of(path)


def test_a_world_readable_token_is_warned_about(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    path = room_toml(tmp_path)
    (tmp_path / "device.token").chmod(0o644)
    load_settings(path)
    assert "readable by other users" in caplog.text


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.1.2.3") and is_loopback_host("::1")
    assert not is_loopback_host("10.0.0.1") and not is_loopback_host("scribe.example")


def test_ctl_reads_only_the_socket(tmp_path: Path) -> None:
    path = room_toml(tmp_path, 'control_socket = "run/ctl.sock"\n', token=None)
    assert control_socket_of(path) == tmp_path / "run/ctl.sock"


def test_every_setting_is_a_known_key() -> None:
    from device.settings import _KEYS
    names = {f.name for f in dataclasses.fields(AgentSettings)} - {"token"}
    assert names == set(_KEYS)


def test_several_server_urls_server_url_first_once_each(tmp_path: Path) -> None:
    extra = ('server_urls = ["wss://b.example/ws/device", "wss://scribe.example/ws/device",'
             ' "wss://c.example/ws/device"]\n')
    s = load_settings(room_toml(tmp_path, extra))
    assert s.server_url == "wss://scribe.example/ws/device"
    assert s.servers == ("wss://scribe.example/ws/device", "wss://b.example/ws/device",
                         "wss://c.example/ws/device")


def test_server_urls_alone_and_one_url_alone(tmp_path: Path) -> None:
    token_file = tmp_path / "device.token"
    token_file.write_text("tok\n")
    token_file.chmod(0o600)
    path = tmp_path / "room.toml"
    path.write_text('server_urls = ["wss://a.example/ws/device", "wss://b.example/ws/device"]\n'
                    'device_id = "dev-1"\ntoken_file = "device.token"\n')
    s = load_settings(path)
    assert s.server_url == "wss://a.example/ws/device"
    assert s.servers == ("wss://a.example/ws/device", "wss://b.example/ws/device")
    assert load_settings(room_toml(tmp_path)).servers == ("wss://scribe.example/ws/device",)


@pytest.mark.parametrize(("extra", "expected"), [
    ("server_urls = []\n", "room.toml: server_urls: must list at least one URL"),
    ("server_urls = ['wss://a/ws', 3]\n", "server_urls: must be a list of strings"),
    ("server_urls = 'wss://a/ws'\n", "server_urls: must be a list of strings"),
    ("server_urls = ['https://a/ws']\n", "server_urls: scheme must be wss://"),
    ("server_urls = ['ws://10.0.0.5/ws']\nallow_insecure = true\n",
     "server_urls: ws:// (unencrypted) is only allowed to a loopback host"),
])
def test_bad_server_urls(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in error_of(room_toml(tmp_path, extra))


def test_neither_server_url_nor_server_urls(tmp_path: Path) -> None:
    token_file = tmp_path / "device.token"
    token_file.write_text("tok\n")
    token_file.chmod(0o600)
    path = tmp_path / "room.toml"
    path.write_text('device_id = "dev-1"\ntoken_file = "device.token"\n')
    assert "missing required key 'server_url' (or 'server_urls')" in error_of(path)
