"""The pure lifecycle: every (state, action, actor) combination, without a clock or a DB.

The table LEGAL lists every transition that is allowed; every other
combination must be refused with an error from server.review.errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.review.errors import (
    ClaimHeld,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    ReviewError,
)
from server.review.lifecycle import (
    Action,
    Actor,
    ItemFacts,
    ReviewState,
    Role,
    allowed_actions,
    decide,
    effective,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=20)
PHYSICIAN, OTHER_PHYSICIAN, PARTNER, OTHER_PARTNER, ADMIN = 1, 2, 3, 4, 5
ACTORS = {
    "physician": Actor(PHYSICIAN, Role.PHYSICIAN),  # responsible for the item
    "other_physician": Actor(OTHER_PHYSICIAN, Role.PHYSICIAN),
    "partner": Actor(PARTNER, Role.PARTNER),
    "other_partner": Actor(OTHER_PARTNER, Role.PARTNER),
    "admin": Actor(ADMIN, Role.ADMIN),
}
S = ReviewState
#: The claim holder of a CLAIMED item in each scenario (other states: nobody).
HOLDERS = {"partner": PARTNER, "physician": PHYSICIAN}

# (state, holder, action, actor) -> resulting state
LEGAL: dict[tuple[S, str | None, Action, str], S] = {}
for who in ("physician", "partner", "other_partner"):
    for st in (S.READY, S.RETURNED):
        LEGAL[(st, None, Action.CLAIM, who)] = S.CLAIMED
for holder in HOLDERS:
    LEGAL[(S.CLAIMED, holder, Action.CLAIM, holder)] = S.CLAIMED  # renew
    LEGAL[(S.CLAIMED, holder, Action.RELEASE, holder)] = S.READY
    LEGAL[(S.CLAIMED, holder, Action.SAVE, holder)] = S.CLAIMED
LEGAL[(S.CLAIMED, "partner", Action.SEND, "partner")] = S.AWAITING_SIGNATURE
LEGAL[(S.CLAIMED, "physician", Action.SIGN, "physician")] = S.SIGNED
LEGAL[(S.AWAITING_SIGNATURE, None, Action.SAVE, "physician")] = S.AWAITING_SIGNATURE
LEGAL[(S.AWAITING_SIGNATURE, None, Action.SIGN, "physician")] = S.SIGNED
LEGAL[(S.AWAITING_SIGNATURE, None, Action.RETURN, "physician")] = S.RETURNED
LEGAL[(S.SIGNED, None, Action.AMEND, "physician")] = S.AMENDED
LEGAL[(S.AMENDED, None, Action.AMEND, "physician")] = S.AMENDED

SCENARIOS = [(st, None) for st in S if st is not S.CLAIMED] + [(S.CLAIMED, h) for h in HOLDERS]


def facts(state: S, holder: str | None, physician_id: int | None = PHYSICIAN) -> ItemFacts:
    if holder is None:
        return ItemFacts(state, physician_id)
    return ItemFacts(state, physician_id, HOLDERS[holder], NOW + timedelta(minutes=5))


@pytest.mark.parametrize(("state", "holder"), SCENARIOS)
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("who", list(ACTORS))
def test_every_combination(state: S, holder: str | None, action: Action, who: str) -> None:
    item = facts(state, holder)
    expected = LEGAL.get((state, holder, action, who))
    if expected is None:
        with pytest.raises(ReviewError) as err:
            decide(item, action, ACTORS[who], NOW, LEASE, comment="please fix the plan")
        assert isinstance(err.value, IllegalTransition | Forbidden | InvalidInput)
        assert err.value.message  # a message a reviewer can act on
    else:
        out = decide(item, action, ACTORS[who], NOW, LEASE, comment="please fix the plan")
        assert out.state is expected
        assert out.new_version == (action in (Action.SAVE, Action.AMEND))
        if expected is S.CLAIMED:
            assert out.claimed_by == ACTORS[who].user_id
            assert out.lease_expires_at == NOW + LEASE
        else:
            assert out.claimed_by is None and out.lease_expires_at is None


def test_roles_that_may_never_act_get_forbidden_not_illegal() -> None:
    item = facts(S.AWAITING_SIGNATURE, None)
    with pytest.raises(Forbidden, match="partner cannot sign"):
        decide(item, Action.SIGN, ACTORS["partner"], NOW)
    with pytest.raises(Forbidden, match="admins"):
        decide(facts(S.READY, None), Action.CLAIM, ACTORS["admin"], NOW)
    with pytest.raises(Forbidden, match="responsible physician"):
        decide(item, Action.SIGN, ACTORS["other_physician"], NOW)


def test_claim_held_by_someone_else_names_the_holder() -> None:
    with pytest.raises(ClaimHeld) as err:
        decide(facts(S.CLAIMED, "partner"), Action.CLAIM, ACTORS["other_partner"], NOW)
    assert err.value.extra["claimed_by"] == PARTNER
    assert err.value.status == 409


def test_lapsed_lease_frees_the_draft() -> None:
    held = ItemFacts(S.CLAIMED, PHYSICIAN, PARTNER, NOW - timedelta(seconds=1))
    assert effective(held, NOW).state is S.READY
    out = decide(held, Action.CLAIM, ACTORS["other_partner"], NOW, LEASE)
    assert (out.state, out.claimed_by) == (S.CLAIMED, OTHER_PARTNER)
    # ... and the old holder can no longer save or send on the lapsed claim.
    with pytest.raises(IllegalTransition):
        decide(held, Action.SEND, ACTORS["partner"], NOW)
    live = ItemFacts(S.CLAIMED, PHYSICIAN, PARTNER, NOW + timedelta(seconds=1))
    assert effective(live, NOW) == live


def test_return_needs_a_comment_and_keeps_it() -> None:
    item = facts(S.AWAITING_SIGNATURE, None)
    with pytest.raises(InvalidInput, match="comment"):
        decide(item, Action.RETURN, ACTORS["physician"], NOW, comment="  ")
    out = decide(item, Action.RETURN, ACTORS["physician"], NOW, comment=" dose? ")
    assert (out.state, out.comment) == (S.RETURNED, "dose?")
    assert decide(item, Action.SIGN, ACTORS["physician"], NOW).comment == ""


def test_room_without_owner_any_clinic_physician_signs_and_may_send() -> None:
    item = ItemFacts(S.AWAITING_SIGNATURE, None)
    assert decide(item, Action.SIGN, ACTORS["other_physician"], NOW).state is S.SIGNED
    claimed = ItemFacts(S.CLAIMED, None, OTHER_PHYSICIAN, NOW + LEASE)
    out = decide(claimed, Action.SEND, ACTORS["other_physician"], NOW)
    assert out.state is S.AWAITING_SIGNATURE


def test_allowed_actions_match_decide() -> None:
    assert allowed_actions(facts(S.READY, None), ACTORS["partner"], NOW) == [Action.CLAIM]
    assert allowed_actions(facts(S.CLAIMED, "partner"), ACTORS["partner"], NOW) == [
        Action.CLAIM, Action.RELEASE, Action.SAVE, Action.SEND]
    assert allowed_actions(facts(S.AWAITING_SIGNATURE, None), ACTORS["physician"], NOW) == [
        Action.SAVE, Action.RETURN, Action.SIGN]
    assert allowed_actions(facts(S.SIGNED, None), ACTORS["partner"], NOW) == []
    assert allowed_actions(facts(S.READY, None), ACTORS["admin"], NOW) == []
