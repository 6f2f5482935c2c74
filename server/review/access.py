"""Who may see which review item. Every read and every change goes through here.

- a **physician** sees the items of the rooms they own in their clinics (and
  items of rooms nobody owns, so a room without an owner is never orphaned);
- a **partner** sees the items of the pools they belong to, in their clinics;
- an **admin** sees no notes at all.

Outside your clinics an item does not exist for you (404, never 403), so one
clinic cannot even learn another's item ids.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from server.review.auth import Principal
from server.review.errors import Forbidden, NotFound
from server.review.lifecycle import Actor, ItemFacts, ReviewState, Role
from server.review.models import PoolMember, ReviewItem

__all__ = ["facts_of", "item_for", "partner_pools", "visible", "visible_clause"]


def partner_pools(s: Session, user_id: int) -> set[str]:
    return set(s.scalars(select(PoolMember.pool_id).where(PoolMember.user_id == user_id)))


def visible_clause(s: Session, who: Principal) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the items ``who`` may see."""
    conds: list[ColumnElement[bool]] = []
    pools = None
    for clinic_id, role in who.roles.items():
        if role is Role.PHYSICIAN:
            conds.append(and_(ReviewItem.clinic_id == clinic_id,
                              or_(ReviewItem.physician_id == who.user_id,
                                  ReviewItem.physician_id.is_(None))))
        elif role is Role.PARTNER:
            pools = partner_pools(s, who.user_id) if pools is None else pools
            conds.append(and_(ReviewItem.clinic_id == clinic_id, ReviewItem.pool_id.in_(pools)))
    return or_(*conds) if conds else false()


def visible(who: Principal, item: ReviewItem, pools: set[str]) -> bool:
    role = who.role_in(item.clinic_id)
    if role is Role.PHYSICIAN:
        return item.physician_id in (None, who.user_id)
    if role is Role.PARTNER:
        return item.pool_id in pools
    return False


def item_for(s: Session, who: Principal, item_id: str, *, lock: bool = False,
             ) -> tuple[ReviewItem, Actor]:
    """The item and ``who`` as its actor, or NotFound / Forbidden.

    ``lock`` reads it ``FOR UPDATE`` (row lock on PostgreSQL; SQLite serialises
    writers itself and the revision guard catches the rest) and refreshes it.
    """
    stmt = select(ReviewItem).where(ReviewItem.id == item_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    item = s.scalars(stmt).one_or_none()
    role = who.role_in(item.clinic_id) if item is not None else None
    if item is None or role is None:
        raise NotFound("this note does not exist, or it is not shared with you")
    if role is Role.ADMIN:
        raise Forbidden("admins have no access to notes or transcripts")
    pools = partner_pools(s, who.user_id) if role is Role.PARTNER else set()
    if not visible(who, item, pools):
        raise NotFound("this note does not exist, or it is not shared with you")
    return item, Actor(who.user_id, role)


def facts_of(item: ReviewItem) -> ItemFacts:
    """What the lifecycle needs to know of ``item``."""
    return ItemFacts(ReviewState(item.state), item.physician_id, item.claimed_by,
                     item.lease_expires_at)
