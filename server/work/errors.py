"""Errors of the durable work queue::

    WorkError
    └── LeaseLost      the job is not (or no longer) leased by this worker: another
                       took it after the lease lapsed, it was cancelled, or finished
"""

from __future__ import annotations

__all__ = ["LeaseLost", "WorkError"]


class WorkError(Exception):
    """Base of the work queue's errors."""


class LeaseLost(WorkError):
    """This worker does not hold the job's lease (any more)."""
