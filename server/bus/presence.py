"""Which other node holds which device: a pure record of what the ``devices`` channel said.

Nodes announce a device when it attaches and when it leaves, and every few
seconds repeat the list they hold (a heartbeat). A node that stops repeating
(killed, cut off) is forgotten after ``ttl_s``, so its devices stop counting
as connected. Never reads a clock: the caller passes ``now`` (monotonic).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["DevicePresence"]


@dataclass
class _Node:
    expires: float
    devices: set[str] = field(default_factory=set)


class DevicePresence:
    def __init__(self, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._nodes: dict[str, _Node] = {}

    def _node(self, node: str, now: float) -> _Node:
        entry = self._nodes.get(node)
        if entry is None or entry.expires <= now:
            entry = self._nodes[node] = _Node(now + self.ttl_s)
        entry.expires = now + self.ttl_s
        return entry

    def attached(self, node: str, device_id: str, now: float) -> None:
        """``node`` holds ``device_id`` now, and no other node does."""
        self.forget(device_id)
        self._node(node, now).devices.add(device_id)

    def detached(self, node: str, device_id: str, now: float) -> None:
        self._node(node, now).devices.discard(device_id)

    def heartbeat(self, node: str, devices: Iterable[str], now: float) -> None:
        """``node`` holds exactly ``devices`` (an empty list: it holds none)."""
        held = set(devices)
        if not held:
            self._nodes.pop(node, None)
            return
        self._node(node, now).devices = held

    def forget(self, device_id: str) -> None:
        """The device attached here (or elsewhere): no earlier holder counts any more."""
        for entry in self._nodes.values():
            entry.devices.discard(device_id)

    def holder(self, device_id: str, now: float) -> str | None:
        """The node that holds ``device_id`` as far as we heard, or None."""
        for node, entry in list(self._nodes.items()):
            if entry.expires <= now:
                del self._nodes[node]
                continue
            if device_id in entry.devices:
                return node
        return None
