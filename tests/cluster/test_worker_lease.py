"""A stage job's lease as a pure state machine (server/work/lease.py): no clock, ``now``
is passed in."""

from __future__ import annotations

import pytest

from server.work import lease as L
from server.work.errors import LeaseLost
from server.work.lease import JobState, Lease

TTL = 10.0


def test_claim_renew_finish() -> None:
    job = L.claim(Lease(), "w1", now=100.0, ttl=TTL)
    assert job == Lease(JobState.LEASED, "w1", 110.0, 1)
    assert not L.claimable(job, 109.9)  # held: nobody else may take it
    job = L.renew(job, "w1", now=105.0, ttl=TTL)
    assert job.until == 115.0
    assert L.renew(job, "w1", now=101.0, ttl=TTL).until == 115.0  # never shortened
    done = L.finish(job, "w1")
    assert done.state is JobState.DONE and not L.claimable(done, 1e12)


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_is_refused() -> None:
    held = L.claim(Lease(), "w1", now=100.0, ttl=TTL)
    assert L.claimable(held, 110.0)  # w1 died: its lease lapsed at 110
    taken = L.claim(held, "w2", now=110.0, ttl=TTL)
    assert (taken.owner, taken.attempts, taken.until) == ("w2", 2, 120.0)
    for write in (lambda: L.renew(taken, "w1", 111.0, TTL), lambda: L.finish(taken, "w1"),
                  lambda: L.fail(taken, "w1"), lambda: L.release(taken, "w1")):
        with pytest.raises(LeaseLost):
            write()


def test_a_lapsed_lease_nobody_took_is_still_its_holders() -> None:
    held = L.claim(Lease(), "w1", now=100.0, ttl=TTL)
    assert L.renew(held, "w1", now=130.0, ttl=TTL).until == 140.0


def test_queued_jobs_wait_for_their_time_and_release_gives_back_the_attempt() -> None:
    later = Lease(until=50.0)
    assert not L.claimable(later, 49.0) and L.claimable(later, 50.0)
    with pytest.raises(LeaseLost):
        L.claim(later, "w1", now=49.0, ttl=TTL)
    held = L.claim(later, "w1", now=50.0, ttl=TTL)
    back = L.release(held, "w1", not_before=0.0)
    assert back == Lease(JobState.QUEUED, "", 0.0, 0)
    assert L.claimable(back, 0.0)


def test_a_job_that_kills_every_worker_is_given_up() -> None:
    job = Lease()
    now = 0.0
    for attempt in range(1, 4):
        job = L.claim(job, f"w{attempt}", now=now, ttl=TTL, max_attempts=3)
        now = job.until  # each holder dies
    assert not L.claimable(job, now, max_attempts=3)
    assert L.exhausted(job, now, max_attempts=3)
    assert not L.exhausted(job, now - 1, max_attempts=3)  # the last one may still live


def test_cancel_stops_holders_but_keeps_finished_jobs() -> None:
    held = L.claim(Lease(), "w1", now=0.0, ttl=TTL)
    cancelled = L.cancel(held)
    assert cancelled.state is JobState.CANCELLED and not L.claimable(cancelled, 1e12)
    with pytest.raises(LeaseLost):
        L.renew(cancelled, "w1", 1.0, TTL)
    assert L.holding(cancelled, now=1.0)  # w1 may still write until it says it stopped
    assert not L.holding(cancelled, now=TTL)  # ... or its lease lapsed (it died)
    with pytest.raises(LeaseLost):
        L.stopped(cancelled, "w2")
    assert not L.holding(L.stopped(cancelled, "w1"), now=1.0)
    assert not L.holding(L.cancel(Lease()), now=0.0)  # nobody ever held it
    done = L.finish(held, "w1")
    assert L.cancel(done) == done
    with pytest.raises(ValueError):
        L.claim(Lease(), "", 0.0, TTL)
