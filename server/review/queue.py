"""The queue as a reviewer sees it, and each pool's turnaround against its target.

Order: overdue drafts nobody holds first, then other overdue ones, then
returned, ready, claimed and awaiting signature, each by due time; signed notes
only when asked for. A claim whose lease has lapsed shows as ready. Pure
ordering (:func:`queue_rank`) over rows read with the access rule's WHERE clause.

Each entry names its patient (from the schedule or a reviewer; empty while
unknown), the visit's length and its chief complaint (the note's first
sentence of it, else the booked visit reason), so visits in one room can be
told apart at a glance.

Listing a queue shows patient names, so each list writes one ``view_queue``
audit row with the number of entries (``audit=False`` for internal reads).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from server.models import Encounter, Room
from server.review.access import facts_of, visible_clause
from server.review.audit import AuditAction, record
from server.review.auth import Principal
from server.review.lifecycle import FINAL_STATES, ReviewState, effective
from server.review.models import NoteVersion, Pool, ReviewItem, User
from server.review.patients import chief_complaint, encounter_seconds

__all__ = ["PoolTurnaround", "QueueEntry", "list_queue", "pool_turnaround", "queue_rank"]

_STATE_RANK = {ReviewState.RETURNED: 0, ReviewState.READY: 1, ReviewState.CLAIMED: 2,
               ReviewState.AWAITING_SIGNATURE: 3, ReviewState.SIGNED: 4, ReviewState.AMENDED: 4}
UNCLAIMED = (ReviewState.READY, ReviewState.RETURNED)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class QueueEntry:
    item_id: str
    encounter_id: str
    clinic_id: str
    room_id: str
    room_name: str
    pool_id: str | None
    pool_name: str
    state: ReviewState
    version: int
    claimed_by: str | None
    physician: str | None
    received_at: datetime
    due_at: datetime
    lease_expires_at: datetime | None
    overdue: bool
    return_comment: str
    mine: bool
    patient_name: str = ""
    patient_dob: str = ""
    patient_mrn: str = ""
    appointment_at: datetime | None = None
    visit_reason: str = ""
    visit_seconds: float | None = None
    chief_complaint: str = ""


def queue_rank(state: ReviewState, overdue: bool, due_at: datetime) -> tuple[int, int, datetime]:
    if overdue and state in UNCLAIMED:
        first = 0
    elif overdue and state not in FINAL_STATES:
        first = 1
    else:
        first = 2
    return (first, _STATE_RANK[state], due_at)


def list_queue(s: Session, who: Principal, now: datetime, *, clinic_id: str | None = None,
               pool_id: str | None = None, states: set[ReviewState] | None = None,
               mine: bool = False, limit: int = 500, audit: bool = True) -> list[QueueEntry]:
    stmt = select(ReviewItem).where(visible_clause(s, who))
    if clinic_id:
        stmt = stmt.where(ReviewItem.clinic_id == clinic_id)
    if pool_id:
        stmt = stmt.where(ReviewItem.pool_id == pool_id)
    if not states or not states & FINAL_STATES:
        stmt = stmt.where(ReviewItem.state.not_in([s.value for s in FINAL_STATES]))
    items = list(s.scalars(stmt.order_by(ReviewItem.due_at).limit(limit * 2)))
    users = {u.id: u.display_name or u.username for u in s.scalars(select(User).where(
        User.id.in_({i.claimed_by for i in items} | {i.physician_id for i in items})))}
    pools = {p.id: p.name for p in s.scalars(select(Pool).where(
        Pool.id.in_({i.pool_id for i in items if i.pool_id})))}
    rooms = {r.id: r.name for r in s.scalars(select(Room).where(
        Room.id.in_({i.room_id for i in items})))}
    seconds = {e.id: encounter_seconds(e) for e in s.scalars(select(Encounter).where(
        Encounter.id.in_({i.encounter_id for i in items})))}
    entries = []
    for item in items:
        facts = effective(facts_of(item), now)
        if states and facts.state not in states:
            continue
        overdue = facts.state not in FINAL_STATES and _aware(item.due_at) <= now
        is_mine = facts.claimed_by == who.user_id or (
            item.physician_id == who.user_id and facts.state is ReviewState.AWAITING_SIGNATURE)
        if mine and not is_mine:
            continue
        entries.append(QueueEntry(
            item.id, item.encounter_id, item.clinic_id, item.room_id,
            rooms.get(item.room_id, item.room_id), item.pool_id,
            pools.get(item.pool_id or "", ""), facts.state, item.version,
            users.get(facts.claimed_by) if facts.claimed_by else None,
            users.get(item.physician_id) if item.physician_id else None,
            _aware(item.received_at), _aware(item.due_at), facts.lease_expires_at, overdue,
            item.return_comment, is_mine, item.patient_name, item.patient_dob,
            item.patient_mrn, _aware(item.appointment_at) if item.appointment_at else None,
            item.visit_reason, seconds.get(item.encounter_id), item.visit_reason))
    entries.sort(key=lambda e: queue_rank(e.state, e.overdue, e.due_at))
    shown = _with_complaints(s, entries[:limit])
    if audit:
        clinics = {e.clinic_id for e in shown} or ({clinic_id} if clinic_id else set())
        record(s, who, AuditAction.VIEW_QUEUE,
               detail=f"{len(shown)} entries" + (f" of pool {pool_id}" if pool_id else ""),
               clinic_id=next(iter(clinics)) if len(clinics) == 1 else "", now=now)
        s.flush()
    return shown


def _with_complaints(s: Session, entries: list[QueueEntry]) -> list[QueueEntry]:
    """Each entry's chief complaint from its current note version (read only for these)."""
    if not entries:
        return entries
    documents = {v.item_id: v.document for v in s.scalars(select(NoteVersion).where(
        tuple_(NoteVersion.item_id, NoteVersion.number).in_(
            [(e.item_id, e.version) for e in entries])))}
    return [replace(e, chief_complaint=chief_complaint(documents.get(e.item_id),
                                                       e.visit_reason)) for e in entries]


@dataclass(frozen=True)
class PoolTurnaround:
    pool_id: str
    name: str
    clinic_id: str
    turnaround_h: float
    target_pct: float
    signed: int  # signed in the window
    signed_in_time: int
    open: int
    open_overdue: int
    #: Reviewers (claimants, or the responsible physician when awaiting signature) who hold
    #: overdue drafts, with how many.
    over_target: dict[str, int]

    @property
    def pct_in_time(self) -> float | None:
        return round(100.0 * self.signed_in_time / self.signed, 1) if self.signed else None

    @property
    def meets_target(self) -> bool | None:
        pct = self.pct_in_time
        return None if pct is None else pct >= self.target_pct


def pool_turnaround(s: Session, who: Principal, now: datetime,
                    window: timedelta = timedelta(days=30)) -> list[PoolTurnaround]:
    """For each pool whose items ``who`` can see: signed in time vs target, and who is late."""
    items = list(s.scalars(select(ReviewItem).where(visible_clause(s, who),
                                                    ReviewItem.pool_id.is_not(None))))
    names = {u.id: u.display_name or u.username for u in s.scalars(select(User))}
    out = []
    for pool in s.scalars(select(Pool).where(Pool.id.in_({i.pool_id for i in items}))
                          .order_by(Pool.name)):
        mine = [i for i in items if i.pool_id == pool.id]
        limit = timedelta(hours=pool.turnaround_h)
        signed = [i for i in mine if i.signed_at and _aware(i.signed_at) >= now - window]
        in_time = [i for i in signed if _aware(i.signed_at) - _aware(i.received_at) <= limit]  # type: ignore[arg-type]
        open_items = [i for i in mine if ReviewState(i.state) not in FINAL_STATES]
        overdue = [i for i in open_items if _aware(i.due_at) <= now]
        late: dict[str, int] = {}
        for i in overdue:
            facts = effective(facts_of(i), now)
            holder = facts.claimed_by or (i.physician_id if facts.state is
                                          ReviewState.AWAITING_SIGNATURE else None)
            key = names.get(holder, "?") if holder else "(unclaimed)"
            late[key] = late.get(key, 0) + 1
        out.append(PoolTurnaround(pool.id, pool.name, pool.clinic_id, pool.turnaround_h,
                                  pool.target_pct, len(signed), len(in_time), len(open_items),
                                  len(overdue), late))
    return out
