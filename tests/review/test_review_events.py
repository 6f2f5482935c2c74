"""The review stage's pipeline events: ``review-start`` when a draft enters the queue,
``review-end`` when a physician signs it, to the same ``on_event`` sink the other stages
are given by the composition root (server/services.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from server.db import Database
from server.models import utcnow
from server.pipeline.events import EventType, PipelineEvent, Stage
from server.review import directory, workflow
from server.review.auth import load_principal
from server.review.document import OrderChange
from server.review.intake import submit_draft
from server.review.lifecycle import Action
from server.review.live import LiveHub
from server.review.models import ReviewItem
from server.settings import Settings
from tests.review.world import UserClient, World, add_encounter, make_draft, make_transcript
from tests.support import running_server

SIGN_ACKS = ["no-patient"]
T = TypeVar("T")


def test_signing_over_the_api_emits_review_end_once(settings: Settings, world: World) -> None:
    enc, item = add_encounter(world.db, "exam-1")
    events: list[PipelineEvent] = []
    with running_server(settings, on_event=events.append) as server:
        doc = UserClient(server.http_url, "dr_north")
        base = f"/api/v1/review/items/{item}"
        assert doc.post(f"{base}/claim").status_code == 200
        # refused (orders undecided): the review has not ended
        assert doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS}
                        ).status_code == 422
        assert doc.put(f"{base}/note", json={"base_version": 1, "orders": [
            {"id": o, "decision": "accepted"} for o in ("o1", "o2", "o3")]}).status_code == 200
        assert events == []  # claims and edits are not stage boundaries
        signed = doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS})
        assert signed.status_code == 200
        # an amendment after signing changes the note, not the stage
        assert doc.put(f"{base}/note", json={
            "base_version": 2, "sections": {"plan": "Start lisinopril 5 mg daily."},
            "reason": "dose corrected"}).status_code == 200
        doc.close()
    assert events == [PipelineEvent(EventType.REVIEW_END, Stage.REVIEW, enc,
                                    {"item": item, "version": 2})]
    assert events[0].to_dict()["type"] == "review-end"


def test_the_workflow_carries_review_end_only_for_a_signature(world: World) -> None:
    enc, item = add_encounter(world.db, "exam-1")
    assert item is not None
    now = utcnow()
    with world.db.session() as s:
        doc = load_principal(s, directory.get_user(s, "dr_north"), "t")
        assert workflow.act(s, doc, item, Action.CLAIM, now).events == []
        workflow.edit(s, doc, item, 1, {}, [OrderChange(o, "accepted")
                                            for o in ("o1", "o2", "o3")], now)
        signed = workflow.act(s, doc, item, Action.SIGN, now, attest=True,
                              acknowledged=SIGN_ACKS)
        assert [e.to_dict() for e in signed.events] == [
            {"type": "review-end", "stage": "review", "encounter_id": enc,
             "data": {"item": item, "version": 2}}]


async def test_a_queued_draft_emits_review_start(world: World) -> None:
    enc, _ = add_encounter(world.db, "exam-2", draft=False)
    events: list[PipelineEvent] = []

    @dataclass
    class Intake:  # what the composition root hands the intake (server/services.py)
        db: Database
        review_hub: LiveHub

        async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
            return fn(*args)

    item = await submit_draft(Intake(world.db, LiveHub()), enc, make_draft(enc),
                              make_transcript(enc), on_event=events.append)
    assert isinstance(item, ReviewItem)
    assert events == [PipelineEvent.start(Stage.REVIEW, enc, item=item.id,
                                          pool="north-general")]
