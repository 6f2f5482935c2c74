"""The live hubs across nodes, in one process: review changes and transcript events
published on node A reach node B's subscribers through the bus, under node B's own
authorisation rule, and nobody gets one twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from server.bus import InProcessBus, LocalBroker
from server.review.auth import Principal
from server.review.lifecycle import Role
from server.review.live import ItemChange
from server.review.live import LiveHub as ReviewHub
from server.transcripts.live import LiveHub as TranscriptHub

WAIT = 5.0
NORTH = "clinic-north"


def change(**overrides: Any) -> ItemChange:
    values: dict[str, Any] = dict(item_id="item-1", clinic_id=NORTH, pool_id="pool-1",
                                  physician_id=7, state="in-review", version=3,
                                  action="edit", actor="pat", actor_name="Pat Partner")
    values.update(overrides)
    return ItemChange(**values)


async def drain(queue: asyncio.Queue[Any], settle: float = 0.05) -> list[Any]:
    """Everything that arrived, after a moment for stragglers (e.g. a double delivery)."""
    await asyncio.sleep(settle)
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


@dataclass
class Pair:
    bus_a: InProcessBus
    bus_b: InProcessBus


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    broker = LocalBroker()
    a, b = InProcessBus("node-a", broker), InProcessBus("node-b", broker)
    await a.start()
    await b.start()
    yield Pair(a, b)
    await a.aclose()
    await b.aclose()


async def test_a_partners_edit_on_node_a_reaches_the_physician_on_node_b(pair: Pair) -> None:
    hub_a, hub_b = ReviewHub(bus=pair.bus_a), ReviewHub(bus=pair.bus_b)
    physician = Principal(7, "dr_north", "Dr North", {NORTH: Role.PHYSICIAN})
    other_doc = Principal(8, "dr_west", "Dr West", {NORTH: Role.PHYSICIAN})
    partner_in = Principal(20, "pat", "Pat", {NORTH: Role.PARTNER})
    partner_out = Principal(21, "sam", "Sam", {NORTH: Role.PARTNER})
    stranger = Principal(30, "eve", "Eve", {"clinic-south": Role.PHYSICIAN})
    on_b = {p.username: hub_b.subscribe(p, pools) for p, pools in (
        (physician, set()), (other_doc, set()), (partner_out, {"pool-2"}),
        (stranger, set()))}
    partner_on_a = hub_a.subscribe(partner_in, {"pool-1"})

    # from a route's worker thread on node A, after commit
    thread = threading.Thread(target=hub_a.publish, args=(change(),))
    thread.start()
    thread.join()
    got = await asyncio.wait_for(on_b["dr_north"].queue.get(), WAIT)
    assert got == change().to_json()
    assert await drain(on_b["dr_north"].queue) == []  # once
    for name in ("dr_west", "sam", "eve"):  # the same rule as on the node that made it
        assert await drain(on_b[name].queue) == [], name
    assert await drain(partner_on_a.queue) == [change().to_json()]  # local: once, no echo


async def test_garbage_from_the_bus_is_ignored(pair: Pair) -> None:
    hub_b = ReviewHub(bus=pair.bus_b)
    sub = hub_b.subscribe(Principal(7, "dr", "Dr", {NORTH: Role.PHYSICIAN}), set())
    for bad in ({"type": "resync"}, {**change().to_json(), "version": "3"},
                {**change().to_json(), "physician_id": True}):
        pair.bus_a.publish("review", bad)
    pair.bus_a.publish("review", change(version=4).to_json())
    got = await asyncio.wait_for(sub.queue.get(), WAIT)
    assert got["version"] == 4 and await drain(sub.queue) == []
    old = change().to_json()
    del old["actor_name"]  # from a node one release behind
    assert ItemChange.from_json(old).actor_name == ""


async def test_transcript_events_from_a_worker_reach_viewers_on_any_node(pair: Pair) -> None:
    worker, web = TranscriptHub(bus=pair.bus_a), TranscriptHub(bus=pair.bus_b)
    with web.subscribe("enc-1") as viewer, web.subscribe("enc-2") as other, \
            worker.subscribe("enc-1") as local:
        worker.publish("enc-1", "final", {"id": 1, "text": "chest pain"})
        worker.publish("enc-1", "transcript-complete", {"segments": 1})
        first = await asyncio.wait_for(viewer.queue.get(), WAIT)
        second = await asyncio.wait_for(viewer.queue.get(), WAIT)
        assert first == {"type": "final", "data": {"id": 1, "text": "chest pain"}}
        assert second is not None and second["type"] == "transcript-complete"
        assert await drain(viewer.queue) == [] and await drain(other.queue) == []
        assert len(await drain(local.queue)) == 2  # the worker's own viewer: once each
        pair.bus_a.publish("transcripts", {"encounter_id": "enc-1", "type": 3})  # garbage
        assert await drain(viewer.queue) == []


async def test_without_a_bus_the_hubs_are_what_they_were() -> None:
    hub = TranscriptHub()
    with hub.subscribe("enc-1") as viewer:
        hub.publish("enc-1", "partial", {"text": "a"})
        assert viewer.queue.get_nowait() == {"type": "partial", "data": {"text": "a"}}
    review = ReviewHub()
    sub = review.subscribe(Principal(7, "dr", "Dr", {NORTH: Role.PHYSICIAN}), set())
    review.publish(change())
    assert await drain(sub.queue) == [change().to_json()]
