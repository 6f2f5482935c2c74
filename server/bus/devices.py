"""The device connections of a cluster: which node holds which device.

:class:`ConnectedDevices` keeps this node's sessions by device id (a second
connection of a device closes the first). With a bus (several nodes) the nodes
tell each other on the ``devices`` channel:

- ``device-attached`` {device_id, node, session, at}: a device attached there;
  a node holding an older session of it closes that one (newest attach wins);
- ``device-detached`` {device_id, node, session};
- ``device-presence`` {node, devices}: repeated while a node holds devices, so
  a node that died stops counting after three missed beats;
- ``device-command`` {device_id, event {type, data}, action, request, node} → the
  holding node sends the event (an older node's message has only the ``command``
  ``action``) and answers ``device-command-result`` {request, delivered};
- ``device-answer`` {device_id, request, data, node}: a device's answer to a request
  (``diagnostics``, ``config-result``) asked from another node (:meth:`ask`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from protocol import CloseCode, Command, Event
from server.bus.presence import DevicePresence

if TYPE_CHECKING:
    from server.bus.interface import Bus
    from server.ingest.store import DeviceIdentity

__all__ = ["DEVICES_CHANNEL", "ConnectedDevices", "HeldSession"]

log = logging.getLogger(__name__)

#: The bus channel of device hand-over, presence and relayed commands.
DEVICES_CHANNEL = "devices"


class HeldSession(Protocol):
    """What this module needs of a device connection (server/ingest/session.py)."""

    device: DeviceIdentity | None
    session_id: str
    attached_at: float

    async def send(self, event: Event) -> None: ...

    async def close(self, code: CloseCode, reason: str) -> None: ...


class ConnectedDevices:
    """The live device connections of this server process, by device id.

    With a bus (several nodes) the nodes tell each other on the ``devices``
    channel: a device that attaches here closes its older session on any other
    node (``device-attached``, newest attach wins), a command for a device held
    elsewhere is relayed to its node (``device-command`` → ``device-command-result``),
    and each node holding devices repeats their list every ``presence_every_s``
    (``device-presence``), so :meth:`is_connected` answers for the whole cluster
    and forgets a node that died.
    """

    def __init__(self, bus: Bus | None = None, *, command_timeout_s: float = 2.0,
                 presence_every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, HeldSession] = {}
        self.bus = bus
        self.node_id = bus.node_id if bus is not None else ""
        self.command_timeout_s = command_timeout_s
        self.presence_every_s = presence_every_s
        self._clock = clock
        self._wallclock = wallclock
        self._presence = DevicePresence(ttl_s=3 * presence_every_s)
        self._pending: dict[str, asyncio.Future[bool]] = {}
        #: request id -> (device asked, its answer to come)
        self._asked: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        if bus is not None:
            bus.subscribe(DEVICES_CHANNEL, self._from_bus)

    def attach(self, session: HeldSession) -> HeldSession | None:
        assert session.device is not None
        device_id = session.device.device_id
        old = self._sessions.get(device_id)
        self._sessions[device_id] = session
        session.attached_at = self._wallclock()
        self._presence.forget(device_id)
        if self.bus is not None:
            self.bus.publish(DEVICES_CHANNEL, {
                "kind": "device-attached", "device_id": device_id, "node": self.node_id,
                "session": session.session_id, "at": session.attached_at})
            self._ensure_heartbeat()
        return old

    def detach(self, session: HeldSession) -> None:
        if session.device and self._sessions.get(session.device.device_id) is session:
            del self._sessions[session.device.device_id]
            if self.bus is not None:
                self.bus.publish(DEVICES_CHANNEL, {
                    "kind": "device-detached", "device_id": session.device.device_id,
                    "node": self.node_id, "session": session.session_id})

    def is_connected(self, device_id: str) -> bool:
        """Connected here, or (with a bus) to a node that said so and is still alive."""
        return (device_id in self._sessions
                or self._presence.holder(device_id, self._clock()) is not None)

    def held(self) -> list[HeldSession]:
        """The device connections this node holds now."""
        return list(self._sessions.values())

    def held_here(self, device_id: str) -> bool:
        return device_id in self._sessions

    async def send_command(self, device_id: str, action: str) -> bool:
        """Send ``command`` {action} to the device wherever it is connected (see
        :meth:`send_event`)."""
        return await self.send_event(device_id, Command(action).to_event())

    async def send_event(self, device_id: str, event: Event) -> bool:
        """Send ``event`` to the device wherever it is connected; False when it is not (or
        its node did not confirm within ``command_timeout_s``)."""
        session = self._sessions.get(device_id)
        if session is not None:
            await session.send(event)
            return True
        if self.bus is None or self._presence.holder(device_id, self._clock()) is None:
            return False
        request = secrets.token_hex(8)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        message: dict[str, object] = {
            "kind": "device-command", "device_id": device_id, "request": request,
            "node": self.node_id, "event": {"type": event.type, "data": event.data}}
        if event.type == Command.TYPE:
            message["action"] = event.data.get("action")  # what an older node reads
        self.bus.publish(DEVICES_CHANNEL, message)
        try:
            return await asyncio.wait_for(future, self.command_timeout_s)
        except TimeoutError:
            log.warning("device %s: no node confirmed the %s event", device_id, event.type)
            return False
        finally:
            self._pending.pop(request, None)

    async def ask(self, device_id: str, make: Callable[[str], Event], *,
                  timeout_s: float) -> dict[str, Any] | None:
        """Send the request ``make(request_id)`` to the device wherever it is connected and
        wait for its answer's data. None: the device is not connected; TimeoutError: no
        answer within ``timeout_s`` (an agent older than the request ignores it)."""
        request = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._asked[request] = (device_id, answer)
        try:
            if not await self.send_event(device_id, make(request)):
                return None
            return await asyncio.wait_for(answer, timeout_s)
        finally:
            self._asked.pop(request, None)

    def answered(self, device_id: str, request: str, data: dict[str, Any]) -> None:
        """A device connected here answered ``request``: to the asker, here or (with a bus)
        on its node. An answer from a device other than the one asked is dropped."""
        if request in self._asked:
            self._resolve(device_id, request, data)
        elif self.bus is not None:
            self.bus.publish(DEVICES_CHANNEL, {
                "kind": "device-answer", "device_id": device_id, "request": request,
                "data": data, "node": self.node_id})

    def _resolve(self, device_id: str, request: str, data: dict[str, Any]) -> None:
        asked = self._asked.get(request)
        if asked is None:
            return
        wanted, answer = asked
        if wanted != device_id:
            log.warning("device %s answered a request made of device %s; dropped",
                        device_id, wanted)
        elif not answer.done():
            answer.set_result(data)

    async def aclose(self) -> None:
        tasks = [*self._tasks, *([self._heartbeat] if self._heartbeat else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ from other nodes

    def _from_bus(self, message: dict[str, object]) -> None:
        kind, device_id, node = message.get("kind"), message.get("device_id"), message.get("node")
        if not isinstance(node, str):
            return
        now = self._clock()
        if kind == "device-presence":
            devices = message.get("devices")
            if isinstance(devices, list):
                self._presence.heartbeat(node, [d for d in devices if isinstance(d, str)], now)
            return
        if kind == "device-command-result":
            future = self._pending.get(str(message.get("request")))
            if future is not None and not future.done():
                future.set_result(message.get("delivered") is True)
            return
        if not isinstance(device_id, str):
            return
        if kind == "device-attached":
            self._presence.attached(node, device_id, now)
            self._replaced_elsewhere(device_id, message)
        elif kind == "device-detached":
            self._presence.detached(node, device_id, now)
        elif kind == "device-answer":
            data = message.get("data")
            if isinstance(data, dict):
                self._resolve(device_id, str(message.get("request")), data)
        elif kind == "device-command":
            session = self._sessions.get(device_id)
            if session is not None:
                self._spawn(self._relay_command(session, message))

    def _replaced_elsewhere(self, device_id: str, message: dict[str, object]) -> None:
        """Close our session of ``device_id`` if the one on the other node is newer."""
        session = self._sessions.get(device_id)
        at, other = message.get("at"), message.get("session")
        if session is None or not isinstance(at, int | float) or not isinstance(other, str):
            return
        if (session.attached_at, session.session_id) >= (at, other):
            return  # ours is the newer one: theirs will be closed there
        del self._sessions[device_id]
        log.info("device %s connected to node %s: closing its older session here",
                 device_id, message.get("node"))
        self._spawn(session.close(CloseCode.REPLACED, "device connected to another node"))

    async def _relay_command(self, session: HeldSession, message: dict[str, object]) -> None:
        delivered = True
        try:
            await session.send(_relayed_event(message))
        except Exception:  # the device went away meanwhile, or a bad event
            log.info("device %s: relayed event not delivered", message.get("device_id"))
            delivered = False
        if self.bus is not None:
            self.bus.publish(DEVICES_CHANNEL, {
                "kind": "device-command-result", "request": message.get("request"),
                "node": self.node_id, "delivered": delivered})

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is not None and not self._heartbeat.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._heartbeat = loop.create_task(self._repeat_presence(), name="device-presence")

    async def _repeat_presence(self) -> None:
        """While this node holds devices, say which every ``presence_every_s``."""
        assert self.bus is not None
        while True:
            held = sorted(self._sessions)
            self.bus.publish(DEVICES_CHANNEL, {"kind": "device-presence", "node": self.node_id,
                                               "devices": held})
            if not held:
                return
            await asyncio.sleep(self.presence_every_s)


def _relayed_event(message: dict[str, object]) -> Event:
    """The event a ``device-command`` message carries (an older node sends only an
    ``action``)."""
    event = message.get("event")
    if isinstance(event, dict):
        kind, data = event.get("type"), event.get("data")
        if isinstance(kind, str) and isinstance(data, dict):
            return Event(kind, data)
        raise ValueError("malformed relayed event")
    return Command(str(message.get("action"))).to_event()
