"""Devices across nodes: the newest connection wins everywhere, commands reach the node
that holds the device, presence forgets a dead node. Two nodes in one process on an
in-process broker (the same messages Redis would carry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from protocol import CloseCode, Command, ConsentWithdrawn, DiagnosticsRequest, Event
from server.bus import InProcessBus, LocalBroker
from server.bus.devices import ConnectedDevices
from server.bus.presence import DevicePresence
from server.ingest.store import DeviceIdentity

WAIT = 5.0


async def until(predicate: Callable[[], bool], within: float = WAIT) -> None:
    """Bounded polling for state that no event announces."""
    for _ in range(int(within / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError(f"condition not met within {within} s")


@dataclass(eq=False)
class FakeSession:
    """A device connection as ConnectedDevices sees it."""

    device: DeviceIdentity | None
    session_id: str
    attached_at: float = 0.0
    sent: list[Event] = field(default_factory=list)
    closed: tuple[int, str] | None = None
    broken: bool = False

    async def send(self, event: Event) -> None:
        if self.broken:
            raise ConnectionError("gone")
        self.sent.append(event)

    async def close(self, code: CloseCode, reason: str) -> None:
        self.closed = (int(code), reason)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Nodes:
    a: ConnectedDevices
    b: ConnectedDevices
    clock: Clock
    wall: Clock


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    broker = LocalBroker()
    bus_a, bus_b = InProcessBus("node-a", broker), InProcessBus("node-b", broker)
    await bus_a.start()
    await bus_b.start()
    clock, wall = Clock(), Clock()
    a = ConnectedDevices(bus_a, command_timeout_s=0.5, presence_every_s=10, clock=clock,
                         wallclock=wall)
    b = ConnectedDevices(bus_b, command_timeout_s=0.5, presence_every_s=10, clock=clock,
                         wallclock=wall)
    yield Nodes(a, b, clock, wall)
    for devices in (a, b):
        await devices.aclose()
    await bus_a.aclose()
    await bus_b.aclose()


async def test_second_connection_on_another_node_closes_the_first(nodes: Nodes) -> None:
    first = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s1")
    assert nodes.a.attach(first) is None
    await until(lambda: nodes.b.is_connected("dev-1"))  # b heard of it
    nodes.wall.now += 1
    second = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s2")
    assert nodes.b.attach(second) is None
    await until(lambda: first.closed is not None)
    assert first.closed == (int(CloseCode.REPLACED), "device connected to another node")
    assert second.closed is None
    assert not nodes.a.held_here("dev-1") and nodes.b.held_here("dev-1")
    assert nodes.a.is_connected("dev-1")  # on b, as a knows
    nodes.a.detach(first)  # the old session's run() ends: the newer one stays everywhere
    await asyncio.sleep(0.02)
    assert nodes.a.is_connected("dev-1") and nodes.b.held_here("dev-1")


async def test_a_stale_announcement_never_closes_a_newer_session(nodes: Nodes) -> None:
    newer = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s-new")
    nodes.wall.now = 2000.0
    nodes.a.attach(newer)
    nodes.a._from_bus({"kind": "device-attached", "device_id": "dev-1", "node": "node-b",
                       "session": "s-old", "at": 1999.0})  # delayed from before
    await asyncio.sleep(0.02)
    assert newer.closed is None and nodes.a.held_here("dev-1")


async def test_commands_reach_the_node_that_holds_the_device(nodes: Nodes) -> None:
    session = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s1")
    nodes.b.attach(session)
    await until(lambda: nodes.a.is_connected("dev-1"))
    assert await asyncio.wait_for(nodes.a.send_command("dev-1", "stop"), WAIT) is True
    assert [(e.type, e.data["action"]) for e in session.sent] == [(Command.TYPE, "stop")]
    # unknown anywhere: False at once, without waiting for an answer
    assert await nodes.a.send_command("dev-nowhere", "stop") is False
    # held, but the socket died before the node noticed: not delivered
    session.broken = True
    assert await asyncio.wait_for(nodes.a.send_command("dev-1", "mute"), WAIT) is False


async def test_any_event_reaches_the_node_that_holds_the_device(nodes: Nodes) -> None:
    session = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s1")
    nodes.b.attach(session)
    await until(lambda: nodes.a.is_connected("dev-1"))
    withdrawn = ConsentWithdrawn("5b0e8c1e-3c1a-4f5e-9a55-0f6f1e0b7d21", "Dr Lee", 1)
    assert await asyncio.wait_for(nodes.a.send_event("dev-1", withdrawn.to_event()),
                                  WAIT) is True
    assert session.sent == [withdrawn.to_event()]
    # a node of the previous release sends only the command's action: still delivered
    nodes.b._from_bus({"kind": "device-command", "device_id": "dev-1", "action": "stop",
                       "request": "r-old", "node": "node-old"})
    await until(lambda: len(session.sent) == 2)
    assert session.sent[1] == Command("stop").to_event()


async def test_a_device_answers_the_node_that_asked(nodes: Nodes) -> None:
    session = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s1")
    nodes.b.attach(session)
    await until(lambda: nodes.a.is_connected("dev-1"))
    asking = asyncio.create_task(nodes.a.ask(
        "dev-1", lambda request: DiagnosticsRequest(request).to_event(), timeout_s=WAIT))
    await until(lambda: len(session.sent) == 1)
    request = session.sent[0].data["request"]
    nodes.b.answered("dev-2", request, {"request": request, "bundle": {"x": 1}})  # not asked
    nodes.b.answered("dev-1", request, {"request": request, "bundle": {"x": 2}})
    assert await asyncio.wait_for(asking, WAIT) == {"request": request, "bundle": {"x": 2}}
    assert await nodes.a.ask("dev-nowhere", lambda r: DiagnosticsRequest(r).to_event(),
                             timeout_s=WAIT) is None
    with pytest.raises(TimeoutError):  # held, but the agent never answers (too old)
        await nodes.a.ask("dev-1", lambda r: DiagnosticsRequest(r).to_event(), timeout_s=0.05)


async def test_presence_forgets_a_node_that_stopped_saying_it_holds_devices(
        nodes: Nodes) -> None:
    session = FakeSession(DeviceIdentity("dev-1", "exam-1"), "s1")
    nodes.b.attach(session)
    await until(lambda: nodes.a.is_connected("dev-1"))
    nodes.clock.now += 29  # within three beats: still there
    assert nodes.a.is_connected("dev-1")
    nodes.clock.now += 2  # node b went silent (killed): forgotten
    assert not nodes.a.is_connected("dev-1")
    nodes.b.detach(session)
    await asyncio.sleep(0.02)
    assert not nodes.b.is_connected("dev-1")


async def test_without_a_bus_it_is_one_process(nodes: Nodes) -> None:
    alone = ConnectedDevices()
    one = FakeSession(DeviceIdentity("dev-9", "exam-1"), "x1")
    two = FakeSession(DeviceIdentity("dev-9", "exam-1"), "x2")
    assert alone.attach(one) is None
    assert alone.attach(two) is one
    assert await alone.send_command("dev-9", "start") is True
    assert [e.data["action"] for e in two.sent] == ["start"] and one.sent == []
    assert await alone.send_command("dev-0", "start") is False


def test_presence_is_a_pure_record_of_what_nodes_said() -> None:
    p = DevicePresence(ttl_s=30)
    p.attached("web-a", "dev-1", now=0)
    p.heartbeat("web-b", ["dev-2", "dev-3"], now=5)
    assert (p.holder("dev-1", 10), p.holder("dev-2", 10)) == ("web-a", "web-b")
    p.attached("web-b", "dev-1", now=11)  # moved: only the newest holder counts
    assert p.holder("dev-1", 12) == "web-b"
    p.detached("web-b", "dev-3", now=12)
    assert p.holder("dev-3", 12) is None
    p.heartbeat("web-b", [], now=13)  # holds nothing any more
    assert p.holder("dev-1", 13) is None and p.holder("dev-2", 13) is None
    p.heartbeat("web-c", ["dev-4"], now=20)
    assert p.holder("dev-4", 49.9) == "web-c" and p.holder("dev-4", 50) is None
    with pytest.raises(ValueError):
        DevicePresence(ttl_s=0)
