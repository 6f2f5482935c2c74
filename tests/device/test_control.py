"""The local control socket, on a real unix socket."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from device.control import ControlServer, request
from device.errors import ControlError


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, cmd: str) -> dict[str, Any]:
        self.calls.append(cmd)
        if cmd == "mute":
            raise RuntimeError("microphone on fire")
        return {"ok": True, "state": "listening" if cmd == "start" else "idle",
                "encounter_id": "e-1" if cmd == "start" else None}


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    handler = Recorder()
    srv = ControlServer(tmp_path / "run" / "ctl.sock", handler)
    await srv.start()
    yield srv, handler
    await srv.close()


async def ask(path: Path, *lines: bytes) -> list[dict[str, Any]]:
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 5)
    replies = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            replies.append(json.loads(await asyncio.wait_for(reader.readline(), 5)))
    finally:
        writer.close()
    return replies


async def test_one_json_line_per_request(server: Any) -> None:
    srv, handler = server
    replies = await ask(srv.path, b'{"cmd": "start"}\n', b'{"cmd": "status"}\n')
    assert replies[0] == {"ok": True, "state": "listening", "encounter_id": "e-1"}
    assert replies[1]["ok"] is True
    assert handler.calls == ["start", "status"]
    assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o660


async def test_bad_requests_get_clear_answers(server: Any) -> None:
    srv, handler = server
    replies = await ask(srv.path, b"start\n", b'{"cmd": "reboot"}\n', b'["start"]\n',
                        b'{"cmd": "mute"}\n')
    assert "not JSON" in replies[0]["error"]
    assert replies[1]["error"] == \
        "unknown cmd 'reboot'; use one of start, stop, mute, unmute, status, consent"
    assert not replies[2]["ok"]
    assert replies[3] == {"ok": False, "error": "mute failed: microphone on fire"}
    assert handler.calls == ["mute"]


async def test_an_overlong_line_is_refused(server: Any) -> None:
    srv, _ = server
    [reply] = await ask(srv.path, b'{"cmd": "' + b"x" * 10_000 + b'"}\n')
    assert reply == {"ok": False, "error": "request line too long"}


async def test_blocking_client_used_by_ctl(server: Any) -> None:
    srv, _ = server
    reply = await asyncio.to_thread(request, srv.path, "start")
    assert reply["state"] == "listening"


def test_client_says_when_no_agent_runs(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"no agent listening on .*is roomscribe-device run"):
        request(tmp_path / "none.sock", "status")


async def test_a_stale_socket_is_replaced_but_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    first = ControlServer(path, Recorder())
    await first.start()
    with pytest.raises(ControlError, match="another agent is already listening"):
        await ControlServer(path, Recorder()).start()
    await first.close()
    assert not path.exists()
    path.write_text("left behind by a crash")
    second = ControlServer(path, Recorder())
    await second.start()
    assert (await ask(path, b'{"cmd": "status"}\n'))[0]["ok"]
    await second.close()


async def test_consent_carries_its_fields_to_the_handler(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def handler(cmd: str, **params: str) -> dict[str, Any]:
        seen.append((cmd, params))
        return {"ok": True, "state": "listening", "encounter_id": "e-1"}

    srv = ControlServer(tmp_path / "ctl.sock", handler)
    await srv.start()
    try:
        reply = await asyncio.to_thread(request, srv.path, "consent", consent="written",
                                        by="Dr Lee")
        await ask(srv.path, b'{"cmd": "status", "by": "ignored"}\n')
        await asyncio.to_thread(request, srv.path, "consent", consent="withdraw",
                                by="Dr Lee", encounter="e-0")  # an earlier visit
    finally:
        await srv.close()
    assert reply["ok"] is True
    assert seen == [("consent", {"consent": "written", "by": "Dr Lee"}), ("status", {}),
                    ("consent", {"consent": "withdraw", "by": "Dr Lee", "encounter": "e-0"})]
