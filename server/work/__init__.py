"""Durable hand-offs between pipeline stages, so stages can run in other processes.

    lease.py    a job's lease as a pure state machine (claim, renew, finish, release)
    queue.py    the ``stage_jobs`` table: PostgreSQL ``FOR UPDATE SKIP LOCKED`` claims,
                conditional updates on SQLite
    runner.py   StageRunner (claims, heartbeats, runs handlers) and JobBoard (posts)
    fence.py    a stage's writes only while this process holds the lease
    worker.py   ``roomscribe worker``: the runner with no HTTP
    errors.py   WorkError ─ LeaseLost
"""

from server.work.errors import LeaseLost, WorkError
from server.work.lease import JobState, Lease
from server.work.queue import ClaimedJob, WorkQueue
from server.work.runner import JobBoard, RunnerLimits, StageRunner

__all__ = ["ClaimedJob", "JobBoard", "JobState", "Lease", "LeaseLost", "RunnerLimits",
           "StageRunner", "WorkError", "WorkQueue"]
