"""The durable queue of stage hand-offs: one ``stage_jobs`` row per (stage, encounter).

Blocking calls, one transaction each (run them in the database worker pool). Every
transition is :mod:`server.work.lease`'s, written as one conditional statement, so two
workers racing for a job (or a holder's renewal racing a taker after a lapse) are
decided by the database: exactly one write matches.

- PostgreSQL: :meth:`WorkQueue.claim` picks the oldest due job with ``SELECT … FOR
  UPDATE SKIP LOCKED`` — workers claiming at once skip each other's rows instead of
  queueing behind them — then leases it.
- SQLite (the one-process default): no ``SKIP LOCKED``; the candidate is leased with
  ``UPDATE … WHERE id = ? AND <still claimable>``, and a lost race just tries the next.

Everything takes ``now`` (epoch seconds) from the caller, so tests move time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server.db import Database
from server.models import StageJob, utcnow
from server.work import lease as leases
from server.work.lease import DEFAULT_MAX_ATTEMPTS, JobState, Lease

__all__ = ["ClaimedJob", "WorkQueue"]


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    encounter_id: str
    owner: str
    until: float
    #: 1 on the first take; more when a worker died holding it (or gave it back)
    attempts: int


def _lease(job: StageJob) -> Lease:
    return Lease(JobState(job.state), job.owner, job.lease_until, job.attempts)


class WorkQueue:
    def __init__(self, db: Database, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.db = db
        self.max_attempts = max_attempts

    # ----------------------------------------------------------------- enqueue

    def enqueue(self, kind: str, encounter_id: str, *, not_before: float = 0.0) -> bool:
        """Add the job unless it exists (any state): True if it was added. Idempotent, so
        every node that hears of the visit may call it."""
        values: dict[str, Any] = {
            "kind": kind, "encounter_id": encounter_id, "state": JobState.QUEUED.value,
            "owner": "", "lease_until": not_before, "attempts": 0, "error": "",
            "created_at": utcnow(), "updated_at": utcnow()}
        insert = postgresql.insert if not self.db.is_sqlite else sqlite.insert
        stmt = insert(StageJob).values(**values).on_conflict_do_nothing(
            index_elements=["kind", "encounter_id"]).returning(StageJob.id)
        with self.db.session() as s:
            return s.execute(stmt).scalar() is not None

    # ------------------------------------------------------------------- claim

    def _claimable(self, now: float) -> ColumnElement[bool]:
        """SQL of :func:`server.work.lease.claimable`."""
        return and_(
            StageJob.attempts < self.max_attempts,
            StageJob.lease_until <= now,
            or_(StageJob.state == JobState.QUEUED.value,
                StageJob.state == JobState.LEASED.value))

    def claim(self, kinds: Collection[str], owner: str, now: float, ttl: float,
              exclude: Collection[int] = ()) -> ClaimedJob | None:
        """Lease the oldest due job of ``kinds`` to ``owner`` until ``now + ttl``; None
        when there is none. Jobs out of attempts are marked failed on the way."""
        self._fail_exhausted(kinds, now)
        for _ in range(20):  # SQLite: another process may win a candidate; try the next
            with self.db.session() as s:
                stmt = (select(StageJob).where(StageJob.kind.in_(list(kinds)),
                                               self._claimable(now))
                        .order_by(StageJob.id).limit(1))
                if exclude:
                    stmt = stmt.where(StageJob.id.not_in(list(exclude)))
                if not self.db.is_sqlite:
                    stmt = stmt.with_for_update(skip_locked=True)
                job = s.scalars(stmt).first()
                if job is None:
                    return None
                new = leases.claim(_lease(job), owner, now, ttl, self.max_attempts)
                won = s.execute(
                    update(StageJob).where(StageJob.id == job.id, self._claimable(now))
                    .values(state=new.state.value, owner=new.owner, lease_until=new.until,
                            attempts=new.attempts, updated_at=utcnow())
                    .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
                if won:
                    return ClaimedJob(job.id, job.kind, job.encounter_id, owner, new.until,
                                      new.attempts)
        return None

    def _fail_exhausted(self, kinds: Collection[str], now: float) -> None:
        due = and_(StageJob.kind.in_(list(kinds)), StageJob.attempts >= self.max_attempts,
                   StageJob.lease_until <= now,
                   StageJob.state.in_([JobState.QUEUED.value, JobState.LEASED.value]))
        with self.db.session() as s:  # a read first: idle polls write nothing
            if s.scalars(select(StageJob.id).where(due).limit(1)).first() is None:
                return
            s.execute(update(StageJob).where(due)
                .values(state=JobState.FAILED.value, owner="", lease_until=0.0,
                        error="given up: every attempt's worker stopped before the end",
                        updated_at=utcnow())
                .execution_options(synchronize_session=False))

    # ---------------------------------------------------------- the holder's

    def _held(self, job_id: int, owner: str) -> ColumnElement[bool]:
        return and_(StageJob.id == job_id, StageJob.owner == owner,
                    StageJob.state == JobState.LEASED.value)

    def _write(self, job_id: int, owner: str, **values: Any) -> bool:
        with self.db.session() as s:
            return bool(s.execute(
                update(StageJob).where(self._held(job_id, owner))
                .values(updated_at=utcnow(), **values)
                .execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]

    def renew(self, job_id: int, owner: str, now: float, ttl: float) -> float | None:
        """Extend the lease; the new end, or None when ``owner`` no longer holds it
        (taken over after a lapse, or cancelled): stop working on it."""
        until = now + ttl
        return until if self._write(job_id, owner, lease_until=until) else None

    def finish(self, job_id: int, owner: str) -> bool:
        new = leases.finish(Lease(JobState.LEASED, owner), owner)
        return self._write(job_id, owner, state=new.state.value, lease_until=new.until)

    def fail(self, job_id: int, owner: str, error: str) -> bool:
        new = leases.fail(Lease(JobState.LEASED, owner), owner)
        return self._write(job_id, owner, state=new.state.value, lease_until=new.until,
                           error=error[:2000])

    def release(self, job_id: int, owner: str, not_before: float = 0.0) -> bool:
        """Give the job back (shutting down): another worker may take it from
        ``not_before``; this attempt does not count."""
        with self.db.session() as s:
            return bool(s.execute(
                update(StageJob).where(self._held(job_id, owner))
                .values(state=JobState.QUEUED.value, owner="", lease_until=not_before,
                        attempts=StageJob.attempts - 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------- anyone's

    def cancel(self, encounter_id: str) -> int:
        """Cancel the encounter's unfinished jobs (consent withdrawn): queued ones are
        never taken, a holder's next renewal fails and it stops. The number cancelled.
        A holder keeps its name on the job until it says it stopped (:meth:`stopped`)
        or its lease lapses: :meth:`holders` counts them."""
        with self.db.session() as s:
            return int(s.execute(
                update(StageJob).where(
                    StageJob.encounter_id == encounter_id,
                    StageJob.state.in_([JobState.QUEUED.value, JobState.LEASED.value]))
                .values(state=JobState.CANCELLED.value, updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]

    def stopped(self, job_id: int, owner: str) -> bool:
        """The holder of a cancelled job stopped working on it."""
        with self.db.session() as s:
            return bool(s.execute(
                update(StageJob).where(StageJob.id == job_id, StageJob.owner == owner,
                                       StageJob.state == JobState.CANCELLED.value)
                .values(owner="", lease_until=0.0, updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount)  # type: ignore[attr-defined]

    def holders(self, encounter_id: str, now: float) -> int:
        """Workers that may still be working on the encounter's cancelled jobs: they have
        not said they stopped, and their lease has not lapsed."""
        from sqlalchemy import func

        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(StageJob).where(
                StageJob.encounter_id == encounter_id,
                StageJob.state == JobState.CANCELLED.value, StageJob.owner != "",
                StageJob.lease_until > now)) or 0)

    def get(self, kind: str, encounter_id: str) -> Lease | None:
        with self.db.session() as s:
            job = s.scalars(select(StageJob).where(StageJob.kind == kind,
                                                   StageJob.encounter_id == encounter_id)
                            ).first()
            return _lease(job) if job is not None else None

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: jobs}} (status pages, benchmarks)."""
        from sqlalchemy import func

        out: dict[str, dict[str, int]] = {}
        with self.db.session() as s:
            for kind, state, n in s.execute(select(StageJob.kind, StageJob.state,
                                                   func.count())
                                            .group_by(StageJob.kind, StageJob.state)):
                out.setdefault(kind, {})[state] = n
        return out
