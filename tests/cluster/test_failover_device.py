"""A device streaming to node A; node A is killed -9 mid-visit; the agent (a real
``roomscribe-device run`` process with ``server_urls`` = [A, B]) reconnects to node B,
resumes from the cluster's last durable ack, and the stored audio is byte-identical.

Skipped unless ROOMSCRIBE_TEST_DATABASE_URL and ROOMSCRIBE_TEST_REDIS_URL are set.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster.conftest import WebNodes
from tests.device.fakes import write_wav

pytestmark = pytest.mark.slow
WAIT = 60.0
VISIT_S = 8.0
SPEED = 2.0  # the WAV plays at twice real time: a 4 s visit


def _ws(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/ws/device"


def test_node_killed_mid_visit_the_agent_finishes_on_the_other_node(
        web_nodes: WebNodes, tmp_path: Path) -> None:
    a, b = web_nodes["web-a"], web_nodes["web-b"]
    room = a.add_room("exam-failover")  # enrolled through node A
    with room.config.open("a") as fh:
        fh.write(f'server_urls = ["{_ws(a.http_url)}", "{_ws(b.http_url)}"]\n')
    pcm = write_wav(tmp_path / "visit.wav", VISIT_S)
    agent = a.start_agent(room, tmp_path / "visit.wav", speed=SPEED)
    try:
        deadline = time.monotonic() + WAIT
        stored = 0
        while time.monotonic() < deadline:  # until node A has stored about a second
            encounters = b.encounters("exam-failover")  # asked of node B: one database
            stored = encounters[0]["frames_stored"] if encounters else 0
            if stored >= 10:
                break
            time.sleep(0.05)
        assert 10 <= stored < VISIT_S * 10, "node A stored no audio, or all of it, first"
        a.stop_server(kill=True)  # kill -9 mid-visit
        assert agent.wait(timeout=WAIT) == 0  # --exit-when-done: everything acked
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    [encounter] = b.encounters("exam-failover")
    assert (encounter["status"], encounter["last_seq"]) == ("audio_complete", VISIT_S * 10 - 1)
    assert encounter["frames_stored"] == VISIT_S * 10 and encounter["gaps"] == []
    assert b.stored_audio(encounter["id"]) == pcm  # byte-identical, nothing twice
    log = room.config.with_name("agent.log").read_text()
    assert f"next: {_ws(b.http_url)}" in log and f"connected to {_ws(b.http_url)}" in log
