"""The agent in-process: fake microphone → real spool → real uplink → fake server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from device.agent import Agent
from device.audio import AudioChunk, StreamPosition
from device.control import request
from device.errors import CaptureError
from device.spool import Spool

from .fakes import WAIT, FakeMic, FakeServer, eventually, make_settings, pcm_for


class Running:
    """An agent running as a task, with its own spool, stopped and closed at the end."""

    def __init__(self, tmp_path: Path, server: FakeServer, source: Any, **kw: Any) -> None:
        settings_kw = kw.pop("settings", {})
        self.settings = make_settings(tmp_path, server.url, **settings_kw)
        self.spool = Spool.open(self.settings.spool_dir, self.settings.spool_max_bytes)
        self.agent = Agent(self.settings, self.spool, source, capture_retry_s=0.05, **kw)
        self.task = asyncio.create_task(self.agent.run())

    async def stop(self) -> int:
        self.agent.request_stop()
        try:
            return await asyncio.wait_for(self.task, WAIT)
        finally:
            self.spool.close()

    async def ctl(self, cmd: str) -> dict[str, Any]:
        return await asyncio.to_thread(request, self.settings.control_socket, cmd)


def frames(n: int, start: int = 0) -> bytes:
    return b"".join(pcm_for(seq) for seq in range(start, n))


async def test_a_file_visit_is_delivered_and_the_agent_exits(
        tmp_path: Path, fake_server: FakeServer) -> None:
    run = Running(tmp_path, fake_server, FakeMic(40), auto_start=True, exit_when_done=True)
    assert await asyncio.wait_for(run.task, WAIT) == 0
    run.spool.close()
    [enc] = fake_server.encounters
    assert fake_server.complete(enc) and fake_server.audio(enc) == frames(40)
    assert fake_server.duplicates == 0 and fake_server.conflicts == []
    assert not list((tmp_path / "spool").rglob("*.seg"))
    assert {s.state for s in fake_server.statuses} >= {"listening"}
    c = run.agent.counters
    assert (c.frames_captured, c.frames_spooled, c.frames_acked, c.frames_dropped) == \
        (40, 40, 40, 0)


async def test_the_control_socket_drives_a_visit(tmp_path: Path,
                                                 fake_server: FakeServer) -> None:
    mic = FakeMic(30, finite=False)
    run = Running(tmp_path, fake_server, mic)
    await eventually(lambda: run.settings.control_socket.exists())
    assert (await run.ctl("status"))["state"] == "idle"
    started = await run.ctl("start")
    assert started["ok"] and started["state"] == "listening"
    enc = started["encounter_id"]
    await fake_server.until(lambda: enc in fake_server.encounters
                            and fake_server.encounters[enc].next_seq == 30)
    assert (await run.ctl("mute"))["state"] == "muted"
    unmuted = await run.ctl("unmute")
    assert (unmuted["state"], unmuted["encounter_id"]) == ("listening", enc)
    refused = await run.ctl("start")
    assert refused["ok"] and refused["note"] == "already listening"
    stopped = await run.ctl("stop")
    assert stopped["state"] == "idle" and stopped["encounter_id"] is None
    await fake_server.until(lambda: fake_server.complete(enc))
    status = await run.ctl("status")
    assert status["connected"] and status["counters"]["frames_acked"] == 30
    assert mic.started_at == [0, 30], "unmute resumed capture at the next seq"
    assert await run.stop() == 0
    assert fake_server.audio(enc) == frames(30)


async def test_restart_mid_visit_resumes_the_same_encounter(
        tmp_path: Path, fake_server: FakeServer) -> None:
    first = Running(tmp_path, fake_server, FakeMic(25, finite=False), auto_start=True)
    await eventually(lambda: first.agent.counters.frames_spooled == 25)
    enc = first.agent.room.encounter_id
    assert await first.stop() == 0  # SIGTERM: the visit stays open

    mic = FakeMic(60, finite=False)
    second = Running(tmp_path, fake_server, mic, auto_start=True)
    await eventually(lambda: second.agent.counters.frames_spooled == 35)
    assert second.agent.room.encounter_id == enc, "--start does not begin a second visit"
    assert mic.started_at == [25]
    second.agent.command("stop")
    await fake_server.until(lambda: fake_server.complete(enc))
    assert await second.stop() == 0
    assert list(fake_server.encounters) == [enc]
    assert fake_server.audio(enc) == frames(60)


async def test_a_muted_visit_stays_muted_across_a_restart(
        tmp_path: Path, fake_server: FakeServer) -> None:
    first = Running(tmp_path, fake_server, FakeMic(5, finite=False), auto_start=True)
    await eventually(lambda: first.agent.counters.frames_spooled == 5)
    first.agent.command("mute")
    await first.stop()
    mic = FakeMic(50, finite=False)
    second = Running(tmp_path, fake_server, mic)
    await eventually(lambda: second.agent.room.state.value == "muted")
    await asyncio.sleep(0.05)
    assert mic.started_at == [], "no capture while muted"
    await second.stop()


async def test_server_commands_start_a_visit(tmp_path: Path, fake_server: FakeServer) -> None:
    fake_server.commands_after_ready = ["start"]
    run = Running(tmp_path, fake_server, FakeMic(10, finite=False), control=False)
    await fake_server.until(lambda: any(e.next_seq == 10 for e in
                                        fake_server.encounters.values()))
    assert run.agent.room.state.value == "listening"
    await run.stop()


async def test_a_full_spool_drops_new_audio_loudly_but_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    server = FakeServer()  # never started: the network is down for this whole visit
    server.port = 9
    run = Running(tmp_path, server, FakeMic(400), auto_start=True,
                  settings={"spool_max_mb": 1})
    await eventually(lambda: run.agent.counters.frames_captured == 400)
    c = run.agent.counters
    assert c.frames_dropped > 0 and c.frames_spooled + c.frames_dropped == 400
    assert run.spool.used_bytes <= 1024 * 1024
    assert caplog.text.count("SPOOL FULL: NEW AUDIO IS BEING DROPPED") == 1
    [info] = run.spool.encounters()
    assert info.next_seq == c.frames_spooled, "dropped frames take no sequence number"
    await run.stop()


class FlakyMic(FakeMic):
    """Fails to open once (USB unplugged), then works."""

    def __init__(self) -> None:
        super().__init__(10, finite=False, name="mic:usb")
        self.failures = 1

    async def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        if self.failures:
            self.failures -= 1
            raise CaptureError("cannot open input device 'USB': Device unavailable")
        async for chunk in super().stream(position):
            yield chunk


async def test_capture_errors_are_reported_and_retried(tmp_path: Path,
                                                       fake_server: FakeServer) -> None:
    run = Running(tmp_path, fake_server, FlakyMic(), auto_start=True)
    await eventually(lambda: run.agent.counters.capture_errors == 1)
    await eventually(lambda: run.agent.counters.frames_spooled == 10)
    assert run.agent.capture_error is None, "cleared once capture works again"
    await run.stop()


async def test_consent_from_the_room_reaches_the_server_and_withdrawal_stops_capture(
        tmp_path: Path, fake_server: FakeServer) -> None:
    from protocol import Consent, EncounterEnd

    run = Running(tmp_path, fake_server, FakeMic(30, finite=False))
    sock = run.settings.control_socket
    await eventually(lambda: sock.exists())
    refused = await asyncio.to_thread(request, sock, "consent", consent="verbal", by="Dr Lee")
    assert not refused["ok"] and "no visit in progress" in refused["error"]
    enc = (await run.ctl("start"))["encounter_id"]
    given = await asyncio.to_thread(request, sock, "consent", consent="verbal", by="Dr Lee")
    assert (given["ok"], given["consent"], given["state"]) == (True, "given", "listening")
    assert run.spool.get(enc).consent["method"] == "verbal"  # type: ignore[union-attr]
    await fake_server.until(lambda: any(isinstance(e, Consent) for e in fake_server.events))
    withdrawn = await asyncio.to_thread(request, sock, "consent", consent="withdraw",
                                        by="Dr Lee")
    assert (withdrawn["consent"], withdrawn["state"], withdrawn["encounter_id"]) == (
        "withdrawn", "idle", enc)  # capture stopped, the visit ended
    await fake_server.until(lambda: fake_server.complete(enc))
    kinds = [(type(e).__name__, getattr(e, "state", None)) for e in fake_server.events
             if isinstance(e, Consent | EncounterEnd)]
    assert kinds == [("Consent", "given"), ("Consent", "withdrawn"), ("EncounterEnd", None)]
    [given_event] = [e for e in fake_server.events
                     if isinstance(e, Consent) and e.state == "given"]
    assert (given_event.encounter_id, given_event.method, given_event.obtained_by) == (
        enc, "verbal", "Dr Lee")
    assert await run.stop() == 0
