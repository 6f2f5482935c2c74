"""Pure policies: reconnect back-off, server failover and log throttling.

None reads a clock nor sleeps: the caller passes a random generator or the
current monotonic time, so all are tested without waiting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff", "Failover", "Throttle"]


@dataclass(slots=True)
class Backoff:
    """Exponential back-off with full jitter (AWS architecture blog's "Full Jitter").

    The n-th consecutive failure waits ``uniform(0, min(cap, base * 2**n))``.
    :meth:`reset` after a healthy session starts over at ``base``.
    """

    base: float = 0.5
    cap: float = 30.0
    attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("need 0 < base <= cap")

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        # 2**attempt overflows float math only for absurd attempt counts; clamp first.
        return min(self.cap, self.base * 2 ** min(self.attempt, 64))

    def next_delay(self, rng: random.Random) -> float:
        """Delay before the next attempt; each call counts one more failure."""
        delay = rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def cap_delay(self, rng: random.Random) -> float:
        """A delay near the cap (for failures a fast retry cannot fix, e.g. a bad token).

        Jittered in ``[cap/2, cap]`` so a fleet of rejected devices does not
        reconnect in lock-step.
        """
        self.attempt += 1
        return rng.uniform(self.cap / 2, self.cap)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class Throttle:
    """Let an action through at most once per ``interval`` seconds.

    Counts what it held back, so a rate-limited log line can say "N more".
    """

    interval: float
    _last: float | None = field(default=None, init=False)
    suppressed: int = field(default=0, init=False)

    def allow(self, now: float) -> bool:
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        n, self.suppressed = self.suppressed, 0
        return n


@dataclass(slots=True)
class Failover:
    """Which server node to connect to next (``server_urls`` in room.toml).

    Every ended session moves on to the next URL (a node that just failed is the
    least likely to answer); the agent resumes there from the server's last ack.
    :meth:`moved_on` says whether to back off first: only once every node has
    failed in a row, so a dead node costs one quick retry, not a back-off.
    """

    urls: tuple[str, ...]
    index: int = field(default=0, init=False)
    _failed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("need at least one server URL")

    @property
    def current(self) -> str:
        return self.urls[self.index]

    def moved_on(self, healthy: bool) -> bool:
        """The session on :attr:`current` ended (``healthy``: it had worked). Move to
        the next URL; True when all of them have now failed in a row: back off."""
        self.index = (self.index + 1) % len(self.urls)
        if healthy:
            self._failed = 0
            return False
        self._failed += 1
        if self._failed >= len(self.urls):
            self._failed = 0
            return True
        return False
