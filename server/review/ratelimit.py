"""Login throttles: per-address failure windows, the account lock's back-off, trusted
devices, and a bound on password hashing.

Four guards stand in front of a password check (``server/review/auth.py``):

- **per client address** (:class:`FailureWindow`): failed logins in a sliding window;
  beyond the limit the address is refused (HTTP 429 with ``Retry-After``) for a pause
  that doubles with each repeat. In-process: on a multi-node deployment each node
  keeps its own window, so an address gets the limit once per node.
- **per account**: the ``users.failed_logins`` counter and ``locked_until`` in the
  database (PostgreSQL in production), so that limit is global across nodes. This
  module only computes its back-off (:func:`lock_duration`); the lock always expires.
  It holds only *untrusted* clients (OWASP, "Slow Down Online Guessing Attacks with
  Device Cookies"): a browser that logged in to the account before carries a signed
  device cookie (``auth.device_cookie``), and its attempts are counted per device
  (:attr:`LoginGuard.devices`, the same limit and back-off) instead, so a stranger
  who locks a named account does not lock its owner out of their own browser.
- **password hashing** (:class:`HashGate`): argon2id takes ~64 MiB and a core for a
  fraction of a second, so at most ``concurrency`` run at once and at most ``queue``
  logins wait; the rest are refused at once (HTTP 503). Memory stays bounded, and the
  worker threads stay free for requests that authenticate by a token hash. The async
  login route takes its place in the queue (:meth:`HashGate.admission`) and the
  per-address allowance on the event loop, so a refused login never takes a worker
  thread, a database connection or a hash.

Pure state machines over a ``now`` the caller passes (seconds, monotonic), thread safe.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import timedelta

from server.review.errors import AuthError
from server.settings import Settings

__all__ = [
    "FailureWindow",
    "HashGate",
    "LoginGuard",
    "LoginThrottled",
    "guard_for",
    "lock_duration",
]


class LoginThrottled(AuthError):
    """A login refused before its password was looked at: the address failed too often
    (429) or every hashing slot is taken (503). ``retry_after`` in whole seconds.

    An :class:`AuthError`, so a login form shows it as a failed login."""

    code = "rate-limited"

    def __init__(self, message: str, retry_after: int, status: int = 429) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.retry_after = retry_after


def lock_duration(lock_number: int, base_s: float, max_s: float) -> timedelta:
    """How long the ``lock_number``-th lock in a row (1, 2, ...) lasts: doubling, capped."""
    exponent = min(max(lock_number, 1) - 1, 32)
    return timedelta(seconds=min(base_s * 2 ** exponent, max_s))


@dataclass
class _Key:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    strikes: int = 0


class FailureWindow:
    """At most ``limit`` failures per ``window_s`` for each key (a client address).

    :meth:`attempt` reserves a failure *before* the password is checked, so parallel
    requests cannot all slip under the limit; :meth:`succeeded` hands it back. Over
    the limit, the key is blocked for ``window_s × 2^(strikes-1)`` (capped at
    ``max_block_s``); strikes are forgotten once a whole window passes without a
    failure. At most ``max_keys`` keys are kept (the quietest are dropped first).
    """

    def __init__(self, limit: int, window_s: float, max_block_s: float = 3600.0,
                 max_keys: int = 10_000) -> None:
        self.limit, self.window_s = limit, window_s
        self.max_block_s, self.max_keys = max_block_s, max_keys
        self._keys: OrderedDict[str, _Key] = OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, key: str, now: float) -> float | None:
        """Reserve one failure for ``key``; None if allowed, else seconds to wait."""
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _Key()
                self._evict(now)
            self._keys.move_to_end(key)
            if state.blocked_until > now:
                return state.blocked_until - now
            while state.failures and state.failures[0] <= now - self.window_s:
                state.failures.popleft()
            if not state.failures and state.blocked_until <= now - self.window_s:
                state.strikes = 0
            if len(state.failures) >= self.limit:
                state.strikes += 1
                pause = min(self.window_s * 2 ** min(state.strikes - 1, 32), self.max_block_s)
                state.blocked_until = now + pause
                return pause
            state.failures.append(now)
            return None

    def succeeded(self, key: str, at: float) -> None:
        """The attempt reserved at ``at`` was a good login: it does not count."""
        with self._lock:
            state = self._keys.get(key)
            if state is not None:
                with suppress(ValueError):
                    state.failures.remove(at)

    def _evict(self, now: float) -> None:
        if len(self._keys) <= self.max_keys:
            return
        for key in [k for k, v in self._keys.items()
                    if v.blocked_until <= now and (not v.failures
                                                   or v.failures[-1] <= now - self.window_s)]:
            del self._keys[key]
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)


class HashGate:
    """At most ``concurrency`` password hashes at once, at most ``queue`` waiting."""

    def __init__(self, concurrency: int, queue: int, wait_s: float) -> None:
        self.concurrency, self.queue, self.wait_s = concurrency, queue, wait_s
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Logins hashing or waiting to."""
        return self._admitted

    @contextmanager
    def admission(self) -> Iterator[None]:
        """A place among the ``concurrency + queue`` logins allowed to hash or wait;
        :class:`LoginThrottled` (503) at once when there is none. Never blocks."""
        with self._lock:
            if self._admitted >= self.concurrency + self.queue:
                raise LoginThrottled("the server is busy checking passwords; try again "
                                     "shortly", retry_after=1, status=503)
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def slot(self, admitted: bool = False) -> Iterator[None]:
        """Hold a hashing slot (taking an :meth:`admission` first unless ``admitted``);
        :class:`LoginThrottled` (503) when the queue is full or no slot frees up within
        ``wait_s``."""
        with nullcontext() if admitted else self.admission():
            if not self._slots.acquire(timeout=self.wait_s):
                raise LoginThrottled("the server is busy checking passwords; try again "
                                     "shortly", retry_after=math.ceil(self.wait_s), status=503)
            try:
                yield
            finally:
                self._slots.release()


@dataclass(frozen=True)
class LoginGuard:
    """The in-process guards of one server: per-address failures, per trusted device
    failures (keyed by the device cookie's nonce) and the hash gate."""

    addresses: FailureWindow
    hashing: HashGate
    devices: FailureWindow

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginGuard:
        return cls(FailureWindow(settings.login_ip_failures, settings.login_ip_window_s,
                                 max_block_s=settings.login_lockout_max_s),
                   HashGate(settings.password_hash_concurrency, settings.password_hash_queue,
                            settings.password_hash_wait_s),
                   FailureWindow(settings.login_max_failures, settings.login_lockout_s,
                                 max_block_s=settings.login_lockout_max_s))


_guards: OrderedDict[Settings, LoginGuard] = OrderedDict()
_guards_lock = threading.Lock()


def guard_for(settings: Settings) -> LoginGuard:
    """The guard of the server built from ``settings`` (one per process in production;
    tests that build a server per test get a fresh one each). Settings are frozen and
    hashable; the few most recent are kept."""
    with _guards_lock:
        guard = _guards.get(settings)
        if guard is None:
            guard = _guards[settings] = LoginGuard.from_settings(settings)
            while len(_guards) > 8:
                _guards.popitem(last=False)
        _guards.move_to_end(settings)
        return guard
