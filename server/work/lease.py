"""A stage job's lease, as a pure state machine: no clock, no database (pass ``now``).

::

    queued ──claim──▶ leased ──finish──▶ done
      ▲  (not before       │  ├──fail────▶ failed
      │   ``until``)       │  └──renew───▶ leased (until = now + ttl)
      └──release───────────┤
                           └──lease lapses (the worker died): claimable again;
                              the next claim counts one more attempt
    queued | leased ──cancel──▶ cancelled (consent withdrawn: the holder's next renew
                                fails; it keeps its name on the job until it says it
                                ``stopped``, or its lease lapses)

A job claimed ``max_attempts`` times without finishing (it kills every worker that
takes it) is not claimed again; :meth:`server.work.queue.WorkQueue.claim` marks it
failed. Times are seconds since the epoch (``time.time()``); workers' clocks are
assumed to agree to well within a lease (NTP), as PostgreSQL advisory designs do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from server.work.errors import LeaseLost

__all__ = ["DEFAULT_MAX_ATTEMPTS", "JobState", "Lease", "cancel", "claim", "claimable",
           "exhausted", "fail", "finish", "holding", "release", "renew", "stopped"]

DEFAULT_MAX_ATTEMPTS = 5


class JobState(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Lease:
    state: JobState = JobState.QUEUED
    owner: str = ""
    #: leased: the lease's end; queued: not claimable before (0 = at once)
    until: float = 0.0
    attempts: int = 0


def claimable(lease: Lease, now: float, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> bool:
    """Queued and due, or leased by a worker whose lease has lapsed; attempts left."""
    if lease.attempts >= max_attempts:
        return False
    if lease.state is JobState.QUEUED:
        return lease.until <= now
    return lease.state is JobState.LEASED and lease.until <= now


def exhausted(lease: Lease, now: float, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> bool:
    """Due, but every attempt was used: to be marked failed, never claimed."""
    due = lease.state in (JobState.QUEUED, JobState.LEASED) and lease.until <= now
    return due and lease.attempts >= max_attempts


def claim(lease: Lease, owner: str, now: float, ttl: float,
          max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Lease:
    if not owner:
        raise ValueError("a lease needs an owner")
    if not claimable(lease, now, max_attempts):
        raise LeaseLost(f"not claimable: {lease.state} by {lease.owner or 'nobody'} "
                        f"until {lease.until}, attempt {lease.attempts}")
    return Lease(JobState.LEASED, owner, now + ttl, lease.attempts + 1)


def _held(lease: Lease, owner: str) -> None:
    if lease.state is not JobState.LEASED or lease.owner != owner:
        raise LeaseLost(f"held by {lease.owner or 'nobody'} ({lease.state}), not {owner}")


def renew(lease: Lease, owner: str, now: float, ttl: float) -> Lease:
    """Extend the holder's lease. A lapsed lease nobody took yet is still the holder's
    (the claim and the renewal are one conditional write each: whichever lands first
    wins)."""
    _held(lease, owner)
    return replace(lease, until=max(lease.until, now + ttl))


def finish(lease: Lease, owner: str) -> Lease:
    _held(lease, owner)
    return replace(lease, state=JobState.DONE, until=0.0)


def fail(lease: Lease, owner: str) -> Lease:
    _held(lease, owner)
    return replace(lease, state=JobState.FAILED, until=0.0)


def release(lease: Lease, owner: str, not_before: float = 0.0) -> Lease:
    """Give the job back (shutting down): queued again, claimable from ``not_before``;
    the attempt is not counted against it."""
    _held(lease, owner)
    return Lease(JobState.QUEUED, "", not_before, max(0, lease.attempts - 1))


def cancel(lease: Lease) -> Lease:
    """Nobody may work on it any more (consent withdrawn); finished jobs stay finished.
    A holder stays named until it has :func:`stopped` (or its lease lapses)."""
    if lease.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
        return lease
    return replace(lease, state=JobState.CANCELLED)


def stopped(lease: Lease, owner: str) -> Lease:
    """The holder of a cancelled job has stopped working on it."""
    if lease.state is not JobState.CANCELLED or lease.owner != owner:
        raise LeaseLost(f"not a cancelled job held by {owner}")
    return replace(lease, owner="", until=0.0)


def holding(lease: Lease, now: float) -> bool:
    """Someone may still be working on a cancelled job: named, lease not lapsed."""
    return lease.state is JobState.CANCELLED and bool(lease.owner) and lease.until > now
