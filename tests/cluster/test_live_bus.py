"""The bus: envelope, outbox, back-off, the in-process bus, and Redis pub/sub for real.

The Redis tests (skipped without ROOMSCRIBE_TEST_REDIS_URL) use a channel prefix of
their own and a TCP proxy to play a Redis restart.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from server.bus import InProcessBus, LocalBroker, RedisBus, make_bus
from server.bus.envelope import decode, encode
from server.bus.outbox import Outbox
from server.bus.redis_pubsub import backoff_delay
from server.settings import Settings
from tests.cluster.conftest import TcpProxy, via_proxy

WAIT = 10.0


async def until(predicate: Callable[[], bool], within: float = WAIT) -> None:
    """Bounded polling for state that no event announces."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"condition not met within {within} s")


# ------------------------------------------------------------------ pure parts


def test_envelope_round_trip_and_garbage() -> None:
    env = decode(encode("node-a", "src1", {"x": [1, "é"]}))
    assert env is not None and (env.node, env.src, env.body) == ("node-a", "src1", {"x": [1, "é"]})
    for bad in (b"\xff", "not json", "[1]", '{"node": 1, "src": "s", "body": {}}',
                '{"node": "n", "src": "s", "body": []}'):
        assert decode(bad) is None


def test_outbox_is_bounded_drops_and_counts_and_wakes_once() -> None:
    wakes: list[int] = []
    box = Outbox(3)
    assert all(box.put("c", str(i), lambda: wakes.append(1)) for i in range(3))
    assert not box.put("c", "3", lambda: wakes.append(1))
    assert (len(box), box.dropped, len(wakes)) == (3, 1, 1)  # woken on empty → non-empty only
    assert box.peek(2) == [("c", "0"), ("c", "1")]
    box.pop(2)
    assert box.peek(5) == [("c", "2")]
    box.pop(5)
    assert len(box) == 0 and box.put("c", "4", lambda: wakes.append(1)) and len(wakes) == 2


def test_backoff_delay_is_jittered_and_capped() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        delay = backoff_delay(attempt, rng, base=0.1, cap=5.0)
        assert 0 <= delay <= min(5.0, 0.1 * 2 ** attempt)


def test_make_bus_picks_the_engine_from_settings(tmp_path: Any) -> None:
    local = make_bus(Settings(data_dir=tmp_path, node_id="web-1"))
    assert isinstance(local, InProcessBus) and local.node_id == "web-1"
    remote = make_bus(Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0",
                               bus_channel_prefix="clinic-a"))
    assert isinstance(remote, RedisBus) and remote.prefix == "clinic-a"
    assert remote.node_id  # hostname-pid when not set
    with pytest.raises(ValueError):
        RedisBus("redis://x", "n", "a:b")


# ------------------------------------------------------------------ in-process


async def test_in_process_bus_reaches_the_other_nodes_never_itself() -> None:
    broker = LocalBroker()
    a, b, c = (InProcessBus(name, broker) for name in ("a", "b", "c"))
    for bus in (a, b, c):
        await bus.start()
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
    for name, bus in (("a", a), ("b", b), ("c", c)):
        bus.subscribe("review", got[name].append)
    unsubscribe_c = c.subscribe("transcripts", got["c"].append)
    a.publish("review", {"n": 1})
    threading.Thread(target=a.publish, args=("review", {"n": 2})).start()  # any thread
    await until(lambda: len(got["b"]) == 2 and len(got["c"]) == 2)
    assert got["a"] == [] and got["b"] == [{"n": 1}, {"n": 2}]
    unsubscribe_c()
    b.publish("transcripts", {"n": 3})
    await asyncio.sleep(0.05)
    assert got["c"] == [{"n": 1}, {"n": 2}]
    a.publish("review", {"when": object()})  # a bug upstream never breaks the publisher
    assert a.stats.dropped == 1
    alone = InProcessBus("solo")  # make_bus's: a broker of its own
    await alone.start()
    alone.publish("review", {"n": 4})
    assert alone.stats.sent == 0 and alone.stats.published == 1
    for bus in (a, b, c, alone):
        await bus.aclose()


# ------------------------------------------------------------------ Redis


async def _pair(url: str, prefix: str) -> tuple[RedisBus, RedisBus]:
    a = RedisBus(url, "node-a", prefix, backoff_cap_s=0.2)
    b = RedisBus(url, "node-b", prefix, backoff_cap_s=0.2)
    return a, b


async def test_redis_bus_delivers_to_other_nodes_in_order_without_echo(
        redis_url: str, channel_prefix: str) -> None:
    a, b = await _pair(redis_url, channel_prefix)
    got_a: list[dict[str, Any]] = []
    got_b: list[dict[str, Any]] = []
    a.subscribe("review", got_a.append)
    b.subscribe("review", got_b.append)
    await a.start()
    await b.start()
    try:
        assert a.subscribed is not None and b.subscribed is not None
        await asyncio.wait_for(asyncio.gather(a.subscribed.wait(), b.subscribed.wait()), WAIT)
        for n in range(200):
            a.publish("review", {"n": n, "from": "a"})
        threading.Thread(target=b.publish, args=("review", {"n": 0, "from": "b"})).start()
        await until(lambda: len(got_b) == 200 and len(got_a) == 1)
        assert [m["n"] for m in got_b] == list(range(200))  # one publisher: in order
        assert got_a == [{"n": 0, "from": "b"}]  # never its own
        assert await a.ready()
        other = RedisBus(redis_url, "node-c", channel_prefix + "x")  # another deployment
        got_other: list[dict[str, Any]] = []
        other.subscribe("review", got_other.append)
        await other.start()
        assert other.subscribed is not None
        await asyncio.wait_for(other.subscribed.wait(), WAIT)
        late = RedisBus(redis_url, "worker-1", channel_prefix)  # started as a publisher only
        await late.start()
        got_late: list[dict[str, Any]] = []
        late.subscribe("review", got_late.append)  # then a consumer: it subscribes now
        assert late.subscribed is not None
        await asyncio.wait_for(late.subscribed.wait(), WAIT)
        a.publish("review", {"n": "late"})
        await until(lambda: len(got_b) == 201 and len(got_late) == 1)
        assert got_other == [] and got_late == [{"n": "late"}]
        await other.aclose()
        await late.aclose()
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_restart_both_connections_come_back_and_queued_events_go_out(
        redis_url: str, redis_proxy: TcpProxy, channel_prefix: str) -> None:
    """Through a proxy: cut every connection and refuse new ones for a moment. A publisher
    behind it keeps its events and sends them after; a subscriber behind it subscribes
    again (what was published while it was away is lost: pub/sub, and browsers reload)."""
    flaky = via_proxy(redis_url, redis_proxy)
    pub_flaky = RedisBus(flaky, "node-a", channel_prefix, backoff_cap_s=0.2)
    sub_flaky = RedisBus(flaky, "node-b", channel_prefix, backoff_cap_s=0.2)
    pub_direct = RedisBus(redis_url, "node-c", channel_prefix, backoff_cap_s=0.2)
    sub_direct = RedisBus(redis_url, "node-d", channel_prefix, backoff_cap_s=0.2)
    behind: list[dict[str, Any]] = []
    direct: list[dict[str, Any]] = []
    sub_flaky.subscribe("review", behind.append)
    sub_direct.subscribe("review", direct.append)
    buses = (pub_flaky, sub_flaky, pub_direct, sub_direct)
    for bus in buses:
        await bus.start()
    try:
        assert sub_flaky.subscribed is not None and sub_direct.subscribed is not None
        await asyncio.wait_for(asyncio.gather(sub_flaky.subscribed.wait(),
                                              sub_direct.subscribed.wait()), WAIT)
        pub_flaky.publish("review", {"n": 0})
        await until(lambda: len(behind) == 1 and len(direct) == 1)
        redis_proxy.refusing = True
        redis_proxy.cut()
        await until(lambda: not sub_flaky.subscribed.is_set())  # type: ignore[union-attr]
        for n in range(1, 4):  # while Redis is away: kept in the outbox, publisher not blocked
            pub_flaky.publish("review", {"n": n})
        await until(lambda: pub_flaky.stats.reconnects >= 1)
        assert [m["n"] for m in direct] == [0]
        redis_proxy.refusing = False
        await until(lambda: len(direct) == 4)
        assert [m["n"] for m in direct] == [0, 1, 2, 3] and pub_flaky.stats.dropped == 0
        await asyncio.wait_for(sub_flaky.subscribed.wait(), WAIT)
        pub_direct.publish("review", {"n": 4})
        await until(lambda: behind[-1] == {"n": 4})
        assert sub_flaky.stats.reconnects >= 1
    finally:
        for bus in buses:
            await bus.aclose()


async def test_redis_unreachable_publisher_never_blocks_and_counts_drops(
        channel_prefix: str) -> None:
    """No Redis needed: nothing listens on port 1."""
    bus = RedisBus("redis://127.0.0.1:1/0", "node-a", channel_prefix, outbox_size=5,
                   backoff_cap_s=0.05)
    await bus.start()
    try:
        for n in range(50):  # synchronous: returns at once whatever Redis does
            bus.publish("review", {"n": n})
        assert bus.stats.dropped == 45
        bus.publish("review", {"when": object()})  # not JSON: dropped, not raised
        assert bus.stats.dropped == 46
        await until(lambda: bus.stats.reconnects >= 2)
        assert not await bus.ready()
    finally:
        await bus.aclose()
