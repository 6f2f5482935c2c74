"""A bounded, thread-safe queue of messages waiting for the broker.

``put`` never blocks: when full, the message is dropped and counted (live
events are a convenience; a viewer that missed one resyncs on reconnect). The
sender on the event loop is woken through ``wake`` only when the queue goes
from empty to non-empty.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

__all__ = ["Outbox"]


class Outbox:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, channel: str, data: str, wake: Callable[[], None] | None) -> bool:
        with self._lock:
            if len(self._items) >= self.maxsize:
                self.dropped += 1
                return False
            was_empty = not self._items
            self._items.append((channel, data))
        if was_empty and wake is not None:
            wake()
        return True

    def peek(self, n: int) -> list[tuple[str, str]]:
        """The oldest ``n`` messages (or fewer), left in place until :meth:`pop`."""
        with self._lock:
            return [self._items[i] for i in range(min(n, len(self._items)))]

    def pop(self, n: int) -> None:
        """Forget the oldest ``n`` messages: they reached the broker."""
        with self._lock:
            for _ in range(min(n, len(self._items))):
                self._items.popleft()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
