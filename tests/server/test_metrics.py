"""``GET /metrics`` on a running server: who may read it, what a streaming room and the
review queue show, and that nothing in it names a visit."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from protocol import (
    Ack,
    AudioFrame,
    EncounterStart,
    Hello,
    Ready,
    Status,
    encode_event,
    parse_event,
)
from server import registry
from server.db import Database
from server.metrics import DRAFT_LATENCY, observe_draft_latency
from server.models import utcnow
from server.review.models import ReviewItem
from server.settings import Settings
from tests.review.conftest import quick_password_hashing  # noqa: F401 - autouse fixture
from tests.review.world import World, add_encounter, build_world
from tests.support import (
    TEST_DATABASE_URL,
    ServerThread,
    enrol_device,
    make_settings,
    reset_database,
    running_server,
)

TOKEN = "scrape-token-0123456789"
WAIT = 10.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if TEST_DATABASE_URL:
        reset_database(TEST_DATABASE_URL)
    return make_settings(tmp_path / "server", metrics_token=TOKEN)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def server(settings: Settings, world: World) -> Iterator[ServerThread]:
    with running_server(settings) as srv:
        yield srv


def _scrape(server: ServerThread, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.http_url}/metrics", headers=headers, timeout=10)


def _samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_only_the_scrape_token_or_the_it_key_may_read(server: ServerThread,
                                                      db: Database) -> None:
    assert _scrape(server, None).status_code == 401
    assert _scrape(server, "wrong-token-0123456789").status_code == 401
    with db.session() as s:
        it_key = registry.create_api_key(s, "it")
        reviewer_key = registry.create_api_key(s, "intake", role="ingest")
    assert _scrape(server, reviewer_key).status_code == 401
    for token in (TOKEN, it_key):
        r = _scrape(server, token)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")


def test_review_queue_and_overdue_per_clinic(server: ServerThread, db: Database) -> None:
    encounters = [add_encounter(db, "exam-1", 0.5) for _ in range(3)]
    with db.session() as s:
        late = s.get(ReviewItem, encounters[0][1])
        assert late is not None
        late.due_at = utcnow() - timedelta(hours=1)
    text = _scrape(server).text
    samples = _samples(text)
    assert samples[("roomscribe_review_items",
                    (("clinic", "north-clinic"), ("state", "ready")))] == 3
    assert samples[("roomscribe_review_overdue", (("clinic", "north-clinic"),))] == 1
    for enc, item in encounters:  # no visit is named
        assert enc not in text and str(item) not in text


async def test_a_streaming_room_shows_its_audio_spool_and_connection(
        server: ServerThread, db: Database) -> None:
    dev = enrol_device(db, "exam-2")
    enc = str(uuid.uuid4())
    before = _samples((await asyncio.to_thread(_scrape, server)).text)
    ingested = ("roomscribe_audio_ingested_seconds_total", (("room", "exam-2"),))
    async with connect(server.ws_url) as ws:
        await ws.send(encode_event(Hello(dev.device_id, dev.token, dev.room_id).to_event()))
        assert isinstance(parse_event(await asyncio.wait_for(ws.recv(), WAIT)), Ready)
        await ws.send(encode_event(Status("listening", enc, spool_bytes=64_000).to_event()))
        await ws.send(encode_event(EncounterStart(enc, 1).to_event()))
        for seq in range(10):  # one second of audio
            await ws.send(AudioFrame(enc, seq, 1 + seq * 100_000, b"\x01\x00" * 1600
                                     ).to_bytes())
        while True:
            body = parse_event(await asyncio.wait_for(ws.recv(), WAIT))
            if isinstance(body, Ack) and body.seq == 9:
                break
        text = (await asyncio.to_thread(_scrape, server)).text
    samples = _samples(text)
    assert samples[ingested] - before.get(ingested, 0.0) == pytest.approx(1.0)
    node = server.services.devices.node_id or "local"
    assert samples[("roomscribe_devices_connected", (("node", node),))] == 1
    assert samples[("roomscribe_rooms_streaming", (("node", node),))] == 1
    assert samples[("roomscribe_device_spool_bytes",
                    (("device", dev.device_id), ("room", "exam-2")))] == 64_000
    assert ("roomscribe_bus_dropped_total", (("node", node),)) in samples
    assert enc not in text


def test_draft_latency_is_a_histogram() -> None:
    count = DRAFT_LATENCY._sum.get()
    observe_draft_latency(42.0)
    assert DRAFT_LATENCY._sum.get() - count == pytest.approx(42.0)


def test_the_sample_dashboard_asks_only_for_metrics_the_server_has() -> None:
    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "docs" / "grafana-roomscribe.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {re.sub(r"_(total|bucket|sum|count)$", "", name)
             for e in exprs for name in re.findall(r"roomscribe_[a-z_]+", e)}
    source = (root / "server" / "metrics.py").read_text()
    defined = set(re.findall(r'"(roomscribe_[a-z_]+)"', source))
    defined |= {f"roomscribe_bus_{n}" for n in re.findall(r'\("(\w+)", stats\.', source)}
    assert asked and asked <= defined, asked - defined
