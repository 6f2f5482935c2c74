"""The review lifecycle as a pure state machine: no clock, no database, no socket.

::

    ready ──claim──▶ claimed ──send──▶ awaiting_signature ──sign──▶ signed ──amend──▶ amended
      ▲  ◀─release/──┘  ▲ │                 │  ▲                                    │  ▲
      │    lease lapse  │ └──sign (physician holding the claim)──▶ signed           └──┘ amend
      │                 └──claim── returned ◀──return(comment)──┘
      └───────────────────────────────────── (a lapsed claim on a returned draft → ready)

``decide(item, action, actor, now, lease)`` returns the :class:`Outcome` or
raises :class:`~server.review.errors.IllegalTransition` (or
:class:`~server.review.errors.ClaimHeld`, or ``Forbidden`` for a role that may
never do it) with a message a reviewer can act on. ``now`` is passed in, so a
claim's lease is a plain comparison and tests never sleep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from server.review.errors import ClaimHeld, Forbidden, IllegalTransition, InvalidInput

__all__ = [
    "Action",
    "Actor",
    "ItemFacts",
    "Outcome",
    "ReviewState",
    "Role",
    "allowed_actions",
    "decide",
    "effective",
]


class ReviewState(StrEnum):
    READY = "ready"
    CLAIMED = "claimed"
    AWAITING_SIGNATURE = "awaiting_signature"
    RETURNED = "returned"
    SIGNED = "signed"
    AMENDED = "amended"


class Role(StrEnum):
    PHYSICIAN = "physician"  # local: owns the encounters of their rooms, signs
    PARTNER = "partner"  # remote physician partner: claims, edits, sends; never signs
    ADMIN = "admin"  # IT: clinics, rooms, devices, users, pools; no notes


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    SAVE = "save"  # an edit of the draft before signing: a new version
    SEND = "send"  # to the responsible physician for signature
    RETURN = "return"  # back to the pool with a comment
    SIGN = "sign"
    AMEND = "amend"  # a change after signing: a new version


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the lifecycle needs to know about one review item."""

    state: ReviewState
    physician_id: int | None = None  # responsible physician; None: any physician of the clinic
    claimed_by: int | None = None
    lease_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    state: ReviewState
    claimed_by: int | None
    lease_expires_at: datetime | None
    new_version: bool = False  # the action writes a note version
    comment: str | None = None  # set by RETURN (a return comment), cleared by SIGN


#: States in which the note is still a draft (editable by its reviewer).
OPEN_STATES = frozenset({ReviewState.READY, ReviewState.CLAIMED, ReviewState.RETURNED,
                         ReviewState.AWAITING_SIGNATURE})
FINAL_STATES = frozenset({ReviewState.SIGNED, ReviewState.AMENDED})


def effective(item: ItemFacts, now: datetime) -> ItemFacts:
    """The item as it stands at ``now``: a claim whose lease has lapsed is gone."""
    if (item.state is ReviewState.CLAIMED and item.lease_expires_at is not None
            and item.lease_expires_at <= now):
        return replace(item, state=ReviewState.READY, claimed_by=None, lease_expires_at=None)
    return item


def _is_responsible(item: ItemFacts, actor: Actor) -> bool:
    return actor.role is Role.PHYSICIAN and item.physician_id in (None, actor.user_id)


def _holds(item: ItemFacts, actor: Actor) -> bool:
    return item.state is ReviewState.CLAIMED and item.claimed_by == actor.user_id


def _refuse(item: ItemFacts, action: Action, why: str) -> IllegalTransition:
    return IllegalTransition(f"cannot {action} a draft that is {item.state}: {why}",
                             state=str(item.state), action=str(action))


def decide(item: ItemFacts, action: Action, actor: Actor, now: datetime,
           lease: timedelta = timedelta(minutes=30), comment: str = "") -> Outcome:
    """The outcome of ``actor`` doing ``action`` to ``item`` at ``now``, or an error."""
    if actor.role is Role.ADMIN:
        raise Forbidden("admins manage clinics, rooms and users; they have no access to notes")
    if actor.role is Role.PARTNER and action in (Action.SIGN, Action.RETURN, Action.AMEND):
        raise Forbidden(f"a partner cannot {action}: only the responsible physician can")
    if actor.role is Role.PHYSICIAN and not _is_responsible(item, actor):
        raise Forbidden(f"only the responsible physician can {action} this note")

    item = effective(item, now)
    state = item.state
    keep = Outcome(state, item.claimed_by, item.lease_expires_at)

    if action is Action.CLAIM:
        if state in (ReviewState.READY, ReviewState.RETURNED):
            return Outcome(ReviewState.CLAIMED, actor.user_id, now + lease)
        if _holds(item, actor):  # claiming again renews the lease
            return replace(keep, lease_expires_at=now + lease)
        if state is ReviewState.CLAIMED:
            raise ClaimHeld("another reviewer holds this draft", claimed_by=item.claimed_by,
                            lease_expires_at=str(item.lease_expires_at))
        raise _refuse(item, action, "only a ready or returned draft can be claimed")

    if action is Action.RELEASE:
        if _holds(item, actor):
            return Outcome(ReviewState.READY, None, None)
        raise _refuse(item, action, "only the reviewer holding the claim can release it")

    if action is Action.SAVE:
        if _holds(item, actor):
            return Outcome(ReviewState.CLAIMED, actor.user_id, now + lease, new_version=True)
        if state is ReviewState.AWAITING_SIGNATURE and _is_responsible(item, actor):
            return replace(keep, new_version=True)
        if state in FINAL_STATES:
            raise _refuse(item, action, "a signed note changes only by an amendment")
        if state is ReviewState.CLAIMED:
            raise ClaimHeld("another reviewer holds this draft", claimed_by=item.claimed_by)
        raise _refuse(item, action, "claim the draft before editing it")

    if action is Action.SEND:
        if not _holds(item, actor):
            raise _refuse(item, action, "only the reviewer holding the claim can send it")
        if _is_responsible(item, actor) and item.physician_id is not None:
            raise _refuse(item, action, "you are the responsible physician: sign it instead")
        return Outcome(ReviewState.AWAITING_SIGNATURE, None, None)

    if action is Action.RETURN:
        if not comment.strip():
            raise InvalidInput("a return needs a comment for the partner")
        if state is ReviewState.AWAITING_SIGNATURE:
            return Outcome(ReviewState.RETURNED, None, None, comment=comment.strip())
        raise _refuse(item, action, "only a draft awaiting signature can be returned")

    if action is Action.SIGN:
        if state is ReviewState.AWAITING_SIGNATURE or _holds(item, actor):
            return Outcome(ReviewState.SIGNED, None, None, comment="")
        if state in FINAL_STATES:
            raise _refuse(item, action, "it is already signed; amend it to change it")
        raise _refuse(item, action, "claim it or wait until it is sent for signature")

    if action is Action.AMEND:
        if state in FINAL_STATES:
            return Outcome(ReviewState.AMENDED, None, None, new_version=True)
        raise _refuse(item, action, "only a signed note can be amended; edit the draft")

    raise InvalidInput(f"unknown action {action!r}")


def allowed_actions(item: ItemFacts, actor: Actor, now: datetime) -> list[Action]:
    """What ``actor`` may do now (for buttons; the server still decides on each request)."""
    allowed = []
    for action in Action:
        try:
            decide(item, action, actor, now, comment="-")
        except (IllegalTransition, Forbidden):
            continue
        allowed.append(action)
    return allowed
