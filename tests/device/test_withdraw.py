"""Consent withdrawn in the room while the server is out of reach: the visit's audio in
the spool is deleted at once and never uploaded. When the server is back it is told of
the withdrawal, gets one silent one-sample placeholder per sequence number (so the visit
completes and leaves the spool), and not a byte of the audio. The same for a visit that
had already ended (``ctl consent withdraw`` with its encounter id)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.server import serve

from device.agent import Agent
from device.control import request
from device.spool import Spool
from device.spoolreader import PLACEHOLDER_PCM
from protocol import Consent

from .fakes import WAIT, FakeMic, FakeServer, eventually, make_settings


async def _offline_agent(tmp_path: Path, server: FakeServer) -> tuple[Agent, Spool, int]:
    """An agent whose server (``server``, stopped) is unreachable for now."""
    await server.start()
    port = server.port
    await server.stop()
    settings = make_settings(tmp_path, server.url)
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    return Agent(settings, spool, FakeMic(30, finite=False), capture_retry_s=0.05), spool, port


async def _back_online(server: FakeServer, port: int) -> None:
    server._server = await serve(server._handler, "127.0.0.1", port)


async def test_audio_withdrawn_offline_is_deleted_and_never_uploaded(tmp_path: Path) -> None:
    server = FakeServer()
    agent, spool, port = await _offline_agent(tmp_path, server)
    task = asyncio.create_task(agent.run())
    sock = agent.settings.control_socket
    try:
        await eventually(lambda: sock.exists())
        enc = (await asyncio.to_thread(request, sock, "start"))["encounter_id"]
        await eventually(lambda: agent.counters.frames_spooled == 30)
        reply = await asyncio.to_thread(request, sock, "consent", consent="withdraw",
                                        by="Dr Lee")
        assert (reply["ok"], reply["consent"], reply["state"], reply["frames_deleted"]) == (
            True, "withdrawn", "idle", 30)
        assert not list((tmp_path / "spool").rglob("*.seg"))  # gone from the disk now
        await _back_online(server, port)
        await server.until(lambda: server.complete(enc))
        frames = server.encounters[enc].frames
        assert [f.seq for f in frames] == list(range(30))
        assert {f.pcm for f in frames} == {PLACEHOLDER_PCM}  # no audio, only the seqs
        [told] = [e for e in server.events if isinstance(e, Consent)]
        assert (told.encounter_id, told.state, told.obtained_by) == (enc, "withdrawn", "Dr Lee")
        await eventually(lambda: spool.get(enc) is None)  # delivered: out of the spool
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, WAIT)
        spool.close()
        await server.stop()


async def test_an_ended_visit_still_in_the_spool_can_be_withdrawn(tmp_path: Path) -> None:
    server = FakeServer()
    agent, spool, port = await _offline_agent(tmp_path, server)
    task = asyncio.create_task(agent.run())
    sock = agent.settings.control_socket
    try:
        await eventually(lambda: sock.exists())
        enc = (await asyncio.to_thread(request, sock, "start"))["encounter_id"]
        await eventually(lambda: agent.counters.frames_spooled == 30)
        await asyncio.to_thread(request, sock, "stop")
        missing = await asyncio.to_thread(request, sock, "consent", consent="withdraw",
                                          by="Dr Lee", encounter="not-in-the-spool")
        assert not missing["ok"] and "not in this device's spool" in missing["error"]
        reply = await asyncio.to_thread(request, sock, "consent", consent="withdraw",
                                        by="Dr Lee", encounter=enc)
        assert (reply["ok"], reply["encounter_id"], reply["frames_deleted"]) == (True, enc, 30)
        await _back_online(server, port)
        await server.until(lambda: server.complete(enc))
        assert {f.pcm for f in server.encounters[enc].frames} == {PLACEHOLDER_PCM}
    finally:
        agent.request_stop()
        await asyncio.wait_for(task, WAIT)
        spool.close()
        await server.stop()
