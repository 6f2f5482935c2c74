"""The uplink against a fake server on a real loopback websocket."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from device.audio import AudioChunk
from device.backoff import Failover
from device.spool import Spool
from device.stats import Counters
from device.uplink import Uplink, describe_close
from protocol import SUPPORTED_FORMAT, AudioFrame, EncounterStart, Status

from .fakes import DEVICE_ID, Encounter, FakeServer, eventually, make_settings, pcm_for


def new_encounter(spool: Spool, frames: int, *, started_at_us: int = 1_700_000_000_000_000,
                  end: bool = True) -> str:
    enc = str(uuid.uuid4())
    spool.begin(enc, started_at_us, "fake:mic")
    for seq in range(frames):
        spool.append(enc, AudioChunk(pcm_for(seq), started_at_us + seq * 100_000))
    if end:
        spool.end(enc, started_at_us + frames * 100_000)
    return enc


def expected_audio(frames: int) -> bytes:
    return b"".join(pcm_for(seq) for seq in range(frames))


class Harness:
    def __init__(self, tmp_path: Path, server: FakeServer, **overrides: Any) -> None:
        self.settings = make_settings(tmp_path, server.url, **overrides)
        self.spool = Spool.open(self.settings.spool_dir, self.settings.spool_max_bytes)
        self.counters = Counters()
        self.commands: list[str] = []
        self.uplink = Uplink(
            self.settings, self.spool, self.counters,
            status=lambda: Status("idle", None, self.spool.used_bytes, self.counters.as_dict()),
            on_command=self.commands.append,
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.uplink.run())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.spool.close()


@pytest.fixture
async def harness(tmp_path: Path, fake_server: FakeServer) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, fake_server)
    yield h
    await h.close()


async def test_streams_the_spool_and_removes_the_complete_encounter(
        harness: Harness, fake_server: FakeServer) -> None:
    enc = new_encounter(harness.spool, 50)
    harness.start()
    await fake_server.until(lambda: fake_server.complete(enc))
    await eventually(lambda: harness.spool.get(enc) is None)

    assert fake_server.audio(enc) == expected_audio(50)
    assert [f.seq for f in fake_server.encounters[enc].frames] == list(range(50))
    assert fake_server.duplicates == 0 and fake_server.conflicts == []
    hello = fake_server.hellos[0]
    assert (hello.device_id, hello.room_id) == (DEVICE_ID, "exam-test")
    assert hello.audio_format() == SUPPORTED_FORMAT
    assert fake_server.statuses, "a status event is sent on connect"
    assert not list(harness.settings.spool_dir.rglob("*.seg"))
    assert harness.spool.used_bytes == 0
    assert harness.counters.frames_acked == 50 and harness.counters.frames_sent == 50


async def test_connection_dropped_mid_stream_loses_and_doubles_nothing(
        harness: Harness, fake_server: FakeServer) -> None:
    fake_server.drop_after_frames = 23  # stores frame 22, then the socket dies before its ack
    enc = new_encounter(harness.spool, 30, end=False)
    harness.start()
    await fake_server.until(lambda: fake_server.connections >= 2)
    # The visit goes on while the link comes back: capture never waited.
    for seq in range(30, 80):
        harness.spool.append(enc, AudioChunk(pcm_for(seq), seq))
        harness.uplink.wake()
        await asyncio.sleep(0)
    harness.spool.end(enc, 0)
    harness.uplink.wake()
    await fake_server.until(lambda: fake_server.complete(enc))

    assert fake_server.audio(enc) == expected_audio(80)
    assert fake_server.conflicts == []
    # Frame 22 was stored but never acked: the ack to encounter-start on the new
    # connection says so, and the device resumes right after it.
    assert fake_server.duplicates == 0
    assert harness.counters.reconnects >= 1


async def test_lost_frame_is_resent_after_out_of_order_errors(
        harness: Harness, fake_server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    enc = new_encounter(harness.spool, 60)
    fake_server.lose = {(enc, 10), (enc, 41)}
    harness.start()
    await fake_server.until(lambda: fake_server.complete(enc))

    assert fake_server.audio(enc) == expected_audio(60)
    assert fake_server.connections == 1, "a rewind needs no reconnect"
    assert fake_server.conflicts == []
    assert "resending from seq 10" in caplog.text and "resending from seq 41" in caplog.text
    # Stale out-of-order errors for frames sent before the rewind do not each restart it.
    assert caplog.text.count("resending from seq 10") == 1


async def test_encounters_go_oldest_first_and_resume_from_the_servers_ack(
        harness: Harness, fake_server: FakeServer) -> None:
    newer = new_encounter(harness.spool, 5, started_at_us=2_000)
    older = new_encounter(harness.spool, 40, started_at_us=1_000)
    # The server already holds frames 0..24 of the older one (an earlier connection).
    fake_server.encounters[older] = Encounter(1_000, [
        AudioFrame(older, seq, 1_000 + seq * 100_000, pcm_for(seq)) for seq in range(25)])
    harness.start()
    await fake_server.until(lambda: fake_server.complete(older) and fake_server.complete(newer))

    starts = [e.encounter_id for e in fake_server.events if isinstance(e, EncounterStart)]
    assert starts[:2] == [older, newer]
    assert fake_server.duplicates == 0, "frames the server acked are not sent again"
    assert fake_server.audio(older) == expected_audio(40)
    assert fake_server.audio(newer) == expected_audio(5)


async def test_an_undeliverable_encounter_does_not_hold_up_the_next(
        harness: Harness, fake_server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    damaged = new_encounter(harness.spool, 10, started_at_us=1_000)
    fine = new_encounter(harness.spool, 5, started_at_us=2_000)
    for seg in (harness.settings.spool_dir / damaged).glob("*.seg"):
        seg.unlink()  # the SD card lost it
    harness.start()
    await fake_server.until(lambda: fake_server.complete(fine))
    assert fake_server.audio(fine) == expected_audio(5)
    assert f"encounter {damaged} cannot be delivered" in caplog.text
    assert harness.spool.get(damaged) is not None, "kept: never thrown away by the device"


async def test_unacked_bytes_in_flight_stay_within_the_window(
        tmp_path: Path, fake_server: FakeServer) -> None:
    h = Harness(tmp_path, fake_server, max_inflight_kb=64)
    try:
        new_encounter(h.spool, 100)
        fake_server.hold_acks = True
        h.start()
        await fake_server.until(lambda: fake_server.frames_received >= 20)
        await asyncio.sleep(0.2)  # give an unbounded sender the chance to overrun
        assert fake_server.frames_received <= 64 * 1024 // 3200 + 1
    finally:
        await h.close()


async def test_ack_watchdog_reconnects_a_stalled_stream_but_not_an_idle_one(
        tmp_path: Path, fake_server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path, fake_server, ping_interval_s=0.05, ack_timeout_s=0.3)
    try:
        h.start()
        await fake_server.until(lambda: bool(fake_server.statuses))
        await asyncio.sleep(0.5)  # idle for longer than ack_timeout_s: nothing owed
        enc = new_encounter(h.spool, 10)
        h.uplink.wake()
        await fake_server.until(lambda: fake_server.complete(enc))
        assert fake_server.connections == 1
        fake_server.hold_acks = True  # now the server stores frames but stops acking
        enc2 = new_encounter(h.spool, 5, started_at_us=2_000_000_000_000_000, end=False)
        h.uplink.wake()
        await fake_server.until(lambda: fake_server.connections == 2)
        assert "no answer from the server for 0.3 s" in caplog.text
        fake_server.hold_acks = False
        h.spool.end(enc2, 0)
        h.uplink.wake()
        await fake_server.until(lambda: fake_server.complete(enc2))
        assert fake_server.audio(enc2) == expected_audio(5)
    finally:
        await h.close()


async def test_rejected_token_says_reenrol_and_keeps_retrying(
        harness: Harness, fake_server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    fake_server.close_code = 4401
    harness.start()
    await fake_server.until(lambda: fake_server.connections >= 3)
    assert "token rejected: re-enrol this device" in caplog.text
    assert harness.task is not None and not harness.task.done()
    assert not harness.uplink.connected


async def test_missing_pong_drops_the_connection_and_reconnects(
        tmp_path: Path, fake_server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(tmp_path, fake_server, ping_interval_s=0.05, pong_timeout_s=0.1)
    try:
        fake_server.answer_pings = False
        h.start()
        await fake_server.until(lambda: fake_server.connections >= 2)
        assert "no pong within 0.1 s" in caplog.text
    finally:
        await h.close()


async def test_server_commands_reach_the_agent(harness: Harness,
                                               fake_server: FakeServer) -> None:
    fake_server.commands_after_ready = ["start", "mute"]
    harness.start()
    await eventually(lambda: len(harness.commands) == 2)
    assert harness.commands == ["start", "mute"]


async def test_server_unreachable_is_retried_with_a_clear_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(tmp_path, "ws://127.0.0.1:9/ws/device")  # discard port: refused
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    counters = Counters()
    uplink = Uplink(settings, spool, counters, status=lambda: Status("idle"))
    task = asyncio.create_task(uplink.run())
    try:
        await eventually(lambda: counters.reconnects >= 2)
        assert "cannot reach 127.0.0.1" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spool.close()


def test_close_codes_are_explained() -> None:
    assert describe_close(4401).at_cap
    assert "re-enrol" in describe_close(4401, "wrong token").message
    assert "wrong token" in describe_close(4401, "wrong token").message
    assert "format" in describe_close(4415).message
    assert not describe_close(4500).at_cap
    assert describe_close(None).message == "connection lost"


# ---------------------------------------------------------------- failover (server_urls)


def test_failover_moves_on_at_once_and_backs_off_only_when_every_node_failed() -> None:
    nodes = Failover(("wss://a/ws", "wss://b/ws", "wss://c/ws"))
    assert nodes.current == "wss://a/ws"
    assert nodes.moved_on(healthy=False) is False and nodes.current == "wss://b/ws"
    assert nodes.moved_on(healthy=False) is False and nodes.current == "wss://c/ws"
    assert nodes.moved_on(healthy=False) is True and nodes.current == "wss://a/ws"
    # a node that worked, then died: the next one at once, and a fresh round
    assert nodes.moved_on(healthy=True) is False and nodes.current == "wss://b/ws"
    assert nodes.moved_on(healthy=False) is False
    assert nodes.moved_on(healthy=False) is False
    assert nodes.moved_on(healthy=False) is True
    single = Failover(("wss://a/ws",))
    assert single.moved_on(healthy=False) is True and single.current == "wss://a/ws"
    assert single.moved_on(healthy=True) is False
    with pytest.raises(ValueError):
        Failover(())


async def test_node_killed_mid_visit_the_agent_resumes_on_the_next_node(
        tmp_path: Path) -> None:
    """Two nodes on one store (the cluster's database); the first dies mid-visit."""
    first, second = FakeServer(), FakeServer()
    second.encounters = first.encounters  # one database behind both nodes
    await first.start()
    await second.start()
    h = Harness(tmp_path, first, server_urls=(first.url, second.url))
    try:
        enc = new_encounter(h.spool, 20, end=False)
        h.start()
        await first.until(lambda: enc in first.encounters
                          and first.encounters[enc].next_seq == 20)
        first.drop_all()  # kill -9: connections die, the port stops answering
        await first.stop()
        for seq in range(20, 60):
            h.spool.append(enc, AudioChunk(pcm_for(seq), seq))
            h.uplink.wake()
            await asyncio.sleep(0)
        h.spool.end(enc, 0)
        h.uplink.wake()
        await second.until(lambda: second.complete(enc))
        await eventually(lambda: h.spool.get(enc) is None)

        assert second.audio(enc) == expected_audio(60)  # byte-identical, in order
        assert first.duplicates + second.duplicates == 0 and second.conflicts == []
        assert len(second.hellos) == 1  # straight to the live node, no back-off round
        assert h.uplink.failover.current == second.url
    finally:
        await h.close()
        await second.stop()


async def test_every_node_down_is_retried_round_robin(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    urls = ("ws://127.0.0.1:9/ws/device", "ws://127.0.0.2:9/ws/device")  # both refuse
    settings = make_settings(tmp_path, urls[0], server_urls=urls)
    spool = Spool.open(settings.spool_dir, settings.spool_max_bytes)
    counters = Counters()
    uplink = Uplink(settings, spool, counters, status=lambda: Status("idle"))
    task = asyncio.create_task(uplink.run())
    try:
        await eventually(lambda: counters.reconnects >= 4)
        assert "cannot reach 127.0.0.1" in caplog.text
        assert "cannot reach 127.0.0.2" in caplog.text
        assert f"next: {urls[1]}" in caplog.text and f"next: {urls[0]}" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spool.close()
