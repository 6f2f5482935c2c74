"""Back-off and throttling: pure, tested without sleeping."""

from __future__ import annotations

import random

import pytest

from device.backoff import Backoff, Throttle


def test_ceiling_doubles_up_to_the_cap() -> None:
    b = Backoff(base=0.5, cap=30.0)
    rng = random.Random(1)
    ceilings = []
    for _ in range(10):
        ceilings.append(b.ceiling())
        b.next_delay(rng)
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    b = Backoff(base=0.5, cap=30.0)
    rng = random.Random(7)
    delays = []
    for _ in range(200):
        ceiling = b.ceiling()
        d = b.next_delay(rng)
        assert 0.0 <= d <= ceiling
        delays.append(d)
    late = delays[20:]
    assert min(late) < 10 and max(late) > 20, "jitter spreads over the whole range"


def test_reset_starts_over() -> None:
    b = Backoff()
    rng = random.Random(0)
    for _ in range(5):
        b.next_delay(rng)
    b.reset()
    assert b.ceiling() == 0.5


def test_cap_delay_is_near_the_cap() -> None:
    b = Backoff(base=0.5, cap=30.0)
    rng = random.Random(3)
    assert all(15.0 <= b.cap_delay(rng) <= 30.0 for _ in range(100))


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(base=0.5, cap=30.0)
    b.attempt = 10_000
    assert b.ceiling() == 30.0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError):
        Backoff(base=2, cap=1)


def test_throttle_lets_one_through_per_interval_and_counts_the_rest() -> None:
    t = Throttle(10.0)
    assert t.allow(100.0)
    assert not t.allow(105.0)
    assert not t.allow(109.9)
    assert t.take_suppressed() == 2
    assert t.allow(110.0)
    assert t.take_suppressed() == 0
