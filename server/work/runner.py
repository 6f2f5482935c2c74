"""Takes stage jobs from the durable queue, runs them, and keeps their leases alive.

One :class:`StageRunner` per process that runs stages (``roomscribe serve`` with its
stages in-process, or ``roomscribe worker``)::

    claim       the oldest due job of its stages, while it has room (``capacity``)
    run         the stage's handler, as a task of this process
    heartbeat   every ``heartbeat_s`` each held job's lease is renewed to now + lease_s;
                a renewal that fails (another worker took the job after the lease
                lapsed, or the visit was cancelled) stops the handler at once
    finish      done, or failed with the error; a handler stopped because its lease
                was lost writes nothing
    close       the jobs still held are given back (claimable at once by others)

A worker that dies (kill -9, a lost machine) renews nothing: its jobs become
claimable ``lease_s`` after their last renewal, and the next taker resumes them from
what is stored. :meth:`StageRunner.holds` is the fence the stages' writes check
(server/work/fence.py), so a worker that was paused past its lease writes nothing.

:class:`JobBoard` posts jobs (any node, with or without a runner) and wakes the
local runner so a job posted here starts without waiting for a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from server.ingest.handoff import CHANNEL
from server.pipeline.events import Stage
from server.work.queue import ClaimedJob, WorkQueue

if TYPE_CHECKING:
    from server.bus import Bus

__all__ = ["HeldJobs", "JobBoard", "JobHandler", "RunnerLimits", "StageRunner"]

log = logging.getLogger(__name__)
T = TypeVar("T")

RunDb = Callable[..., Awaitable[Any]]
#: Runs one claimed job to its end (raises: the job failed).
JobHandler = Callable[[ClaimedJob], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    capacity: int = 64  # jobs held at once
    lease_s: float = 15.0  # a lease lasts this long after its last renewal
    heartbeat_s: float = 2.0  # renewals this often (well under lease_s)
    poll_s: float = 0.5  # look for new jobs this often when not woken


@dataclass
class _Held:
    job: ClaimedJob
    until: float
    task: asyncio.Task[None] | None = None
    lost: bool = False


class HeldJobs:
    """The jobs this process holds and, by its own clock, until when: the runner keeps
    it, the fence (server/work/fence.py) reads it. Built first, so both get it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.jobs: dict[int, _Held] = {}

    def holds(self, kind: Stage, encounter_id: str) -> bool:
        """This process holds the job's lease, by its own clock, now."""
        now = self.clock()
        return any(h.job.kind == kind and h.job.encounter_id == encounter_id
                   and not h.lost and h.until > now for h in self.jobs.values())


class StageRunner:
    def __init__(self, queue: WorkQueue, owner: str, handlers: Mapping[Stage, JobHandler],
                 run_db: RunDb, limits: RunnerLimits | None = None, *,
                 held: HeldJobs | None = None, wake: asyncio.Event | None = None) -> None:
        """``held``: shared with the fence; ``wake``: set by whoever posts a job here
        (:class:`JobBoard`), so it is claimed at once."""
        self.queue = queue
        self.owner = owner
        self.handlers = dict(handlers)
        self.run_db = run_db
        self.limits = limits or RunnerLimits()
        self.held_jobs = held or HeldJobs()
        self.clock = self.held_jobs.clock
        self._held = self.held_jobs.jobs
        self._wake = wake or asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._closing = False
        self.taken = 0  # jobs claimed since start
        self.lost = 0  # leases lost (taken over or cancelled)

    @property
    def kinds(self) -> list[str]:
        return sorted(k.value for k in self.handlers)

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        """Start claiming (on the running loop)."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._claim_loop(), name="stage-runner")
            self._beat_task = asyncio.create_task(self._heartbeat(), name="stage-heartbeat")

    def poke(self) -> None:
        """A job was posted (or a slot freed): look now, not at the next poll."""
        self._wake.set()

    def holds(self, kind: Stage, encounter_id: str) -> bool:
        return self.held_jobs.holds(kind, encounter_id)

    @property
    def held(self) -> list[ClaimedJob]:
        return [h.job for h in self._held.values()]

    async def aclose(self) -> None:
        """Stop claiming, stop the handlers, give their jobs back."""
        self._closing = True
        for t in (self._loop_task, self._beat_task):
            if t is not None:
                t.cancel()
        tasks = [h.task for h in self._held.values() if h.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(t for t in (self._loop_task, self._beat_task) if t),
                             *tasks, return_exceptions=True)
        for h in list(self._held.values()):
            if not h.lost:
                try:
                    await self.run_db(self.queue.release, h.job.id, self.owner)
                except Exception:  # its lease lapses instead
                    log.exception("giving back job %s failed", h.job.id)
        self._held.clear()

    # ---------------------------------------------------------------- internal

    async def _claim_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                while len(self._held) < self.limits.capacity and not self._closing:
                    job = await self.run_db(self.queue.claim, self.kinds, self.owner,
                                            self.clock(), self.limits.lease_s)
                    if job is None:
                        break
                    self._start(job)
            except Exception:  # the database is away: try again at the next poll
                log.exception("claiming stage jobs failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.limits.poll_s)

    def _start(self, job: ClaimedJob) -> None:
        self.taken += 1
        held = _Held(job, job.until)
        self._held[job.id] = held
        held.task = asyncio.create_task(self._run(held), name=f"{job.kind}-{job.encounter_id}")
        if job.attempts > 1:
            log.info("encounter %s: %s taken over (attempt %d); resuming from what is "
                     "stored", job.encounter_id, job.kind, job.attempts)

    async def _run(self, held: _Held) -> None:
        job = held.job
        try:
            await self.handlers[Stage(job.kind)](job)
        except asyncio.CancelledError:
            if held.lost:
                log.warning("encounter %s: %s stopped here: its lease was lost",
                            job.encounter_id, job.kind)
            if not self._closing:  # lost, or stopped here (consent withdrawn): say so if
                try:               # it was cancelled; closing: aclose gives it back
                    await self.run_db(self.queue.stopped, job.id, self.owner)
                except Exception:  # its lease lapses instead
                    log.exception("recording that job %s stopped failed", job.id)
            return
        except Exception as err:
            log.exception("encounter %s: %s failed", job.encounter_id, job.kind)
            if not held.lost:
                await self._settle(held, self.queue.fail, f"{type(err).__name__}: {err}")
        else:
            if not held.lost:
                await self._settle(held, self.queue.finish)
        finally:
            if not self._closing:
                self._held.pop(job.id, None)
                self.poke()

    async def _settle(self, held: _Held, fn: Callable[..., bool], *args: Any) -> None:
        try:
            if not await self.run_db(fn, held.job.id, self.owner, *args):
                log.warning("encounter %s: %s ended after its lease was lost",
                            held.job.encounter_id, held.job.kind)
        except Exception:  # the lease lapses and another worker finds the work stored
            log.exception("recording the end of job %s failed", held.job.id)

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.limits.heartbeat_s)
            for held in list(self._held.values()):
                if held.lost or held.task is None or held.task.done():
                    continue
                try:
                    until = await self.run_db(self.queue.renew, held.job.id, self.owner,
                                              self.clock(), self.limits.lease_s)
                except Exception:  # keep working while the lease lasts; fence stops writes
                    log.exception("renewing the lease of job %s failed", held.job.id)
                    continue
                if until is None:
                    self._lose(held)
                else:
                    held.until = until

    def _lose(self, held: _Held) -> None:
        held.lost = True
        self.lost += 1
        if held.task is not None:
            held.task.cancel()


class JobBoard:
    """Posts hand-offs to the queue (``server.ingest.handoff.JobBoard``) and wakes the
    local runner, if this process has one, and with a bus the other nodes' runners
    (``job-posted`` on the ``stages`` channel): a posted job is taken at once, not at
    the next poll."""

    def __init__(self, queue: WorkQueue, run_db: RunDb,
                 wake: asyncio.Event | None = None, bus: Bus | None = None) -> None:
        """``wake``: the local runner's (None: no runner here)."""
        self.queue = queue
        self.run_db = run_db
        self.wake = wake
        self.bus = bus
        if bus is not None and wake is not None:
            bus.subscribe(CHANNEL, self._from_bus)

    async def submit(self, kind: Stage, encounter_id: str) -> None:
        if await self.run_db(self.queue.enqueue, kind.value, encounter_id):
            log.debug("encounter %s: %s queued", encounter_id, kind.value)
            if self.bus is not None:
                self.bus.publish(CHANNEL, {"type": "job-posted", "kind": kind.value,
                                           "encounter_id": encounter_id})
        if self.wake is not None:
            self.wake.set()

    def _from_bus(self, message: dict[str, Any]) -> None:
        if message.get("type") == "job-posted" and self.wake is not None:
            self.wake.set()

    async def cancel(self, encounter_id: str) -> None:
        """Cancel the visit's jobs: every holder's next renewal fails."""
        await self.run_db(self.queue.cancel, encounter_id)

    async def wait_stopped(self, encounter_id: str, within_s: float) -> bool:
        """Until every worker that held one of the visit's cancelled jobs has stopped (or
        its lease lapsed, or ``within_s``): then nothing of the visit is written any
        more. True if they all stopped in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while await self.run_db(self.queue.holders, encounter_id, time.time()):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.1)
        return True
