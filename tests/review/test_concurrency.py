"""Claims and edits under concurrency, on the real database (SQLite or PostgreSQL).

Two partners claiming the same draft at the same moment: exactly one wins and
the other is told who holds it. Two reviewers saving on the same version: one
409, and neither version is lost.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from server.db import Database
from server.models import utcnow
from server.review import directory, workflow
from server.review.auth import load_principal
from server.review.errors import ClaimHeld
from server.review.lifecycle import Action
from server.review.models import AuditEvent, NoteVersion, ReviewItem
from tests.review.world import UserClient, World, add_encounter
from tests.support import ServerThread

ROUNDS = 5


def _race(*calls: object) -> list[object]:
    """Run the calls at the same instant (a barrier), return their results."""
    barrier = threading.Barrier(len(calls))

    def run(fn):  # type: ignore[no-untyped-def]
        barrier.wait(timeout=10)
        return fn()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result(timeout=30) for f in [pool.submit(run, c) for c in calls]]


def test_two_partners_claim_at_once_over_http(server: ServerThread, world: World) -> None:
    alice = UserClient(server.http_url, "alice")
    bob = UserClient(server.http_url, "bob")
    for _ in range(ROUNDS):
        _, item = add_encounter(world.db, "exam-1")
        url = f"/api/v1/review/items/{item}/claim"
        results: list[httpx.Response] = _race(  # type: ignore[assignment]
            lambda url=url: alice.post(url), lambda url=url: bob.post(url))
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 409], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409).json()
        assert loser["error"] == "claim-held"
        winner = next(r for r in results if r.status_code == 200).json()
        assert loser["claimed_by"] == winner["claimed_by"]
        with world.db.session() as s:
            row = s.get(ReviewItem, item)
            assert row is not None and row.claimed_by == winner["claimed_by"]
            claims = s.query(AuditEvent).filter_by(item_id=item, action="claim").count()
            assert claims == 1  # the loser left no trace of a claim


def test_claim_race_in_the_service_layer(world: World) -> None:
    """The same race straight on the database, one session per partner."""
    db: Database = world.db
    for _ in range(ROUNDS):
        _, item = add_encounter(db, "exam-1")
        assert item is not None

        def claim(username: str, item: str = item) -> str:
            with db.session() as s:
                who = load_principal(s, directory.get_user(s, username), "test")
                try:
                    workflow.act(s, who, item, Action.CLAIM, utcnow())
                except ClaimHeld:
                    return "lost"
                return "won"

        assert sorted(_race(lambda: claim("alice"), lambda: claim("bob"))) == [  # type: ignore[type-var]
            "lost", "won"]


def test_stale_edit_gets_409_and_loses_nothing(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    base = f"/api/v1/review/items/{item}"
    alice = UserClient(server.http_url, "alice")
    physician = UserClient(server.http_url, "dr_north")
    assert alice.post(f"{base}/claim").status_code == 200
    r = alice.put(f"{base}/note", json={"base_version": 1,
                                        "sections": {"plan": "Alice's plan v2."}})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.headers["etag"] == '"2"'
    assert alice.post(f"{base}/send").status_code == 200

    # The physician opened version 1 earlier (If-Match "1") and saves now: refused.
    r = physician.put(f"{base}/note", headers={"If-Match": '"1"'},
                      json={"base_version": 1, "sections": {"plan": "Physician's plan."}})
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "version-conflict"
    assert (body["current_version"], body["your_version"]) == (2, 1)
    assert "Alice" in body["saved_by"]
    # Nothing was overwritten: version 2 is Alice's, and no version 3 exists.
    got = physician.get(base).json()
    assert got["version"] == 2
    plan = next(s for s in got["document"]["sections"] if s["key"] == "plan")
    assert plan["text"] == "Alice's plan v2."
    # On the current version the physician's save goes through as version 3.
    r = physician.put(f"{base}/note", json={"base_version": 2,
                                            "sections": {"plan": "Physician's plan."}})
    assert r.status_code == 200 and r.json()["version"] == 3
    versions = physician.get(f"{base}/versions").json()
    assert [(v["number"], v["kind"], v["author_name"]) for v in versions] == [
        (1, "ai_draft", "RoomScribe draft nlp=test-1"), (2, "edit", "Alice"),
        (3, "edit", "Dr North")]


def test_simultaneous_saves_on_one_version_one_wins(world: World) -> None:
    db: Database = world.db
    _, item = add_encounter(db, "exam-1")
    assert item is not None
    with db.session() as s:  # the physician's draft awaiting signature, edited twice at once
        who = load_principal(s, directory.get_user(s, "alice"), "test")
        workflow.act(s, who, item, Action.CLAIM, utcnow())
        workflow.act(s, who, item, Action.SEND, utcnow())

    def save(text: str) -> str:
        with db.session() as s:
            who = load_principal(s, directory.get_user(s, "dr_north"), "test")
            try:
                workflow.edit(s, who, item, 1, {"plan": text}, [], utcnow())
            except Exception as err:  # the loser's error is the result
                return type(err).__name__
            return "saved"

    results = _race(lambda: save("first"), lambda: save("second"))
    assert sorted(results) == ["VersionConflict", "saved"]  # type: ignore[type-var]
    with db.session() as s:
        assert s.query(NoteVersion).filter_by(item_id=item).count() == 2
