"""The intake seam: routing rules, room owners, re-drafts, the stored transcript fallback."""

from __future__ import annotations

import asyncio

import pytest

from server.models import utcnow
from server.review import directory, submit_draft
from server.review.errors import Conflict, NotFound
from server.review.intake import receive_draft
from server.review.models import NoteVersion, ReviewItem, RoutingRule
from server.services import Services
from server.settings import Settings
from server.transcripts.tables import TranscriptSegmentRow
from tests.review.world import World, add_encounter, make_draft, make_transcript


def test_routing_rules_lowest_priority_match_wins(world: World) -> None:
    with world.db.session() as s:
        directory.add_pool(s, "north-clinic", "Cardiology", specialty="cardiology",
                           pool_id="north-cardio")
        directory.add_pool(s, "north-clinic", "ACI template", pool_id="north-aci")
        directory.add_routing_rule(s, "north-cardio", priority=10, room_id="exam-2")
        directory.add_routing_rule(s, "north-aci", priority=20, template="aci")
        with pytest.raises(Exception, match="not a room of clinic"):
            directory.add_routing_rule(s, "north-aci", room_id="south-1")
    _, item2 = add_encounter(world.db, "exam-2")
    enc1, _ = add_encounter(world.db, "exam-1", draft=False)
    with world.db.session() as s:
        assert s.get(ReviewItem, item2).pool_id == "north-cardio"  # type: ignore[union-attr]
        aci = make_draft(enc1)
        aci = type(aci)(aci.encounter_id, "aci", aci.sections, aci.orders, {})
        item = receive_draft(s, enc1, aci)
        assert item.pool_id == "north-aci"
        assert item.physician_id == directory.get_user(s, "dr_north").id
        hours = (item.due_at - item.received_at).total_seconds() / 3600
        assert hours == pytest.approx(24.0)  # the ACI pool's default turnaround


def test_no_matching_rule_leaves_it_to_the_physician(world: World) -> None:
    with world.db.session() as s:
        s.query(RoutingRule).delete()
    _, item = add_encounter(world.db, "exam-1")
    with world.db.session() as s:
        assert s.get(ReviewItem, item).pool_id is None  # type: ignore[union-attr]


def test_redraft_replaces_untouched_ai_draft_and_is_refused_after(world: World) -> None:
    enc, item = add_encounter(world.db, "exam-1")
    draft = make_draft(enc)
    with world.db.session() as s:
        again = receive_draft(s, enc, draft, None)
        assert again.id == item and again.version == 1
        assert s.query(NoteVersion).filter_by(item_id=item).count() == 1
        again.state = "claimed"
    with world.db.session() as s, pytest.raises(Conflict, match="already under review"):
        receive_draft(s, enc, draft)
    with world.db.session() as s, pytest.raises(NotFound):
        receive_draft(s, "no-such-encounter", draft)


def test_transcript_falls_back_to_the_stored_segments(world: World) -> None:
    enc, _ = add_encounter(world.db, "exam-1", draft=False)
    with world.db.session() as s:
        for seg in make_transcript(enc).segments:
            s.add(TranscriptSegmentRow(encounter_id=enc, segment_id=seg.id, start_s=seg.start_s,
                                       end_s=seg.end_s, text=seg.text, speaker=seg.speaker,
                                       words=[]))
    with world.db.session() as s:
        item = receive_draft(s, enc, make_draft(enc))
        assert item.transcript is not None
        assert [x["id"] for x in item.transcript["segments"]] == [0, 1, 2, 3, 4]


async def test_submit_draft_commits_and_publishes(world: World, settings: Settings) -> None:
    from server.review.auth import load_principal
    from server.review.live import hub_of

    enc, _ = add_encounter(world.db, "exam-1", draft=False)
    services = Services.build(settings)
    try:
        with world.db.session() as s:
            who = load_principal(s, directory.get_user(s, "alice"), "t")
        sub = hub_of(services).subscribe(who, {"north-general"})
        item = await submit_draft(services, enc, make_draft(enc), make_transcript(enc))
        message = await asyncio.wait_for(sub.queue.get(), timeout=5)
        assert message["item_id"] == item.id and message["action"] == "intake"
        with world.db.session() as s:  # committed before the push
            assert s.get(ReviewItem, item.id) is not None
        assert item.received_at <= utcnow()
    finally:
        await services.aclose()
