"""A draft's whole life over the API, and the queue's order, leases and turnaround."""

from __future__ import annotations

import io
import json
import wave
from datetime import timedelta

from fhir.resources.R4B.bundle import Bundle

from server.models import utcnow
from server.review import directory, workflow
from server.review.auth import load_principal
from server.review.document import OrderChange
from server.review.lifecycle import Action, ReviewState
from server.review.models import ReviewItem
from server.review.queue import list_queue, pool_turnaround
from server.settings import Settings
from tests.review.world import FRAME_BYTES, UserClient, World, add_encounter
from tests.support import ServerThread

#: The test world's drafts may have no patient linked: signing acknowledges that
#: (an id not raised is ignored).
SIGN_ACKS = ["no-patient"]


def test_partner_refines_physician_returns_then_signs_and_amends(
        server: ServerThread, world: World, settings: Settings) -> None:
    enc, item = add_encounter(world.db, "exam-1", seconds=3)
    base = f"/api/v1/review/items/{item}"
    alice, doc = UserClient(server.http_url, "alice"), UserClient(server.http_url, "dr_north")

    queue = alice.get("/api/v1/review/queue").json()
    assert [(q["item_id"], q["state"], q["pool_id"]) for q in queue] == [
        (item, "ready", "north-general")]
    claimed = alice.post(f"{base}/claim").json()
    assert claimed["state"] == "claimed" and claimed["allowed_actions"] == [
        "claim", "release", "save", "send"]
    r = alice.put(f"{base}/note", json={
        "base_version": 1,
        "sections": {"plan": "Start lisinopril 10 mg daily. CBC. Refer to cardiology."},
        "orders": [{"id": "o1", "decision": "accepted"}, {"id": "o2", "decision": "accepted"},
                   {"id": "o3", "decision": "accepted"}]})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert alice.post(f"{base}/send").json()["state"] == "awaiting_signature"
    assert doc.get("/api/v1/review/queue", params={"mine": "true"}).json()[0]["item_id"] == item

    r = doc.post(f"{base}/return", json={"comment": "Dose should be 20 mg."})
    assert r.json()["state"] == "returned" and r.json()["return_comment"] == "Dose should be 20 mg."
    assert alice.get("/api/v1/review/queue").json()[0]["return_comment"] == "Dose should be 20 mg."
    alice.post(f"{base}/claim")
    alice.put(f"{base}/note", json={"base_version": 2, "orders": [
        {"id": "o1", "decision": "accepted", "fields": {"dose": "20"}},
        {"id": "o3", "decision": "rejected"}]})
    alice.post(f"{base}/send")

    signed = doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS}).json()
    assert signed["state"] == "signed" and signed["version"] == 3
    assert signed["edit_distance"] > 0 and signed["draft_words"] > 20
    assert doc.get("/api/v1/review/queue").json() == []  # it left the queue
    assert doc.get("/api/v1/review/queue", params={"state": "signed"}).json()[0]["item_id"] == item

    bundle = doc.get(f"{base}/fhir").json()
    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Composition", "Practitioner", "MedicationRequest", "ServiceRequest"]
    assert bundle["entry"][2]["resource"]["dosageInstruction"][0]["text"].startswith("20 mg")
    on_disk = json.loads((settings.fhir_outbox / f"{enc}-v3.json").read_text())
    assert on_disk == bundle

    diff = doc.get(f"{base}/diff").json()
    assert diff["edit_distance"] == signed["edit_distance"]
    assert "+- new medication lisinopril 20 mg" in diff["unified_diff"]

    # A change after signing is an amendment: a new version and a new export.
    amended = doc.put(f"{base}/note", json={"base_version": 3,
                                            "sections": {"assessment": "BP 150/95, recheck."},
                                            "reason": "Added the recheck."})
    assert amended.json()["state"] == "amended" and amended.json()["version"] == 4
    assert doc.get(f"{base}/fhir").json()["entry"][0]["resource"]["status"] == "amended"
    assert (settings.fhir_outbox / f"{enc}-v4.json").exists()
    assert alice.put(f"{base}/note", json={"base_version": 4}).status_code == 403

    assert doc.get(base).status_code == 200
    admin = UserClient(server.http_url, "admin_north")
    trail = [(e["actor"], e["action"]) for e in
             reversed(admin.get("/api/v1/admin/audit", params={"item_id": item}).json())]
    assert trail[0] == ("system", "intake")
    for expected in [("alice", "claim"), ("alice", "edit"), ("alice", "send"),
                     ("dr_north", "return"), ("dr_north", "sign"), ("dr_north", "export"),
                     ("dr_north", "amend"), ("dr_north", "view")]:
        assert expected in trail, expected


def test_sign_needs_every_order_decided(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    doc = UserClient(server.http_url, "dr_north")
    base = f"/api/v1/review/items/{item}"
    assert doc.post(f"{base}/claim").status_code == 200
    r = doc.post(f"{base}/sign", json={"attest": True,
                                       "acknowledged": ["pending-orders", *SIGN_ACKS]})
    assert r.status_code == 422 and r.json()["orders"] == ["o1", "o2", "o3"]
    assert r.json()["error"] == "sign-blocked" and r.json()["blocking"] == ["pending-orders"]
    doc.put(f"{base}/note", json={"base_version": 1, "orders": [
        {"id": o, "decision": "accepted"} for o in ("o1", "o2", "o3")]})
    assert doc.post(f"{base}/send").status_code == 409  # the owner signs, never sends
    assert doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS}
                    ).json()["state"] == "signed"


def test_evidence_audio_span_is_the_right_bytes(server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1", seconds=3)
    alice = UserClient(server.http_url, "alice")
    r = alice.get(f"/api/v1/review/items/{item}/audio.wav", params={"start": 1.05, "end": 1.3})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (16000, 1)
        pcm = wav.readframes(wav.getnframes())
    # 1.05 s falls in frame 10 (byte value 10), 1.3 s is the start of frame 13.
    assert pcm == bytes([10]) * (FRAME_BYTES // 2) + bytes([11]) * FRAME_BYTES + bytes(
        [12]) * FRAME_BYTES
    assert alice.get(f"/api/v1/review/items/{item}/audio.wav",
                     params={"start": 2, "end": 1}).status_code == 422
    transcript = alice.get(f"/api/v1/review/items/{item}/transcript").json()
    assert transcript["segments"][3]["text"].startswith("Let's start lisinopril")


def test_lease_lapses_and_another_partner_takes_over(world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    assert item is not None
    t0 = utcnow()
    with world.db.session() as s:
        alice = load_principal(s, directory.get_user(s, "alice"), "t")
        bob = load_principal(s, directory.get_user(s, "bob"), "t")
        got = workflow.act(s, alice, item, Action.CLAIM, t0).item
        assert got.lease_expires_at == t0 + timedelta(minutes=20)  # the pool's lease
    with world.db.session() as s:
        [entry] = list_queue(s, bob, t0 + timedelta(minutes=21))
        assert entry.state is ReviewState.READY and entry.claimed_by is None
        got = workflow.act(s, bob, item, Action.CLAIM, t0 + timedelta(minutes=21)).item
        assert got.claimed_by == bob.user_id


def test_queue_puts_overdue_unclaimed_first_and_reports_turnaround(world: World) -> None:
    db = world.db
    items = [add_encounter(db, "exam-1")[1] for _ in range(4)]
    now = utcnow()
    later = now + timedelta(hours=5)  # past the pool's 4 h turnaround
    with db.session() as s:
        alice = load_principal(s, directory.get_user(s, "alice"), "t")
        doc = load_principal(s, directory.get_user(s, "dr_north"), "t")
        workflow.act(s, alice, items[3], Action.CLAIM, now)
        workflow.edit(s, alice, items[3], 1, {}, [OrderChange(o, "accepted")
                                                 for o in ("o1", "o2", "o3")], now)
        workflow.act(s, alice, items[3], Action.SEND, now)
        workflow.act(s, doc, items[3], Action.SIGN, now, attest=True,
                     acknowledged=SIGN_ACKS)  # signed in time
        workflow.act(s, alice, items[1], Action.CLAIM, now)  # its lease lapses before `later`
        workflow.act(s, alice, items[0], Action.CLAIM, later - timedelta(minutes=1))
    with db.session() as s:
        alice = load_principal(s, directory.get_user(s, "alice"), "t")
        queue = list_queue(s, alice, later)
        # overdue and unclaimed first (by due time), then overdue but held
        assert [e.item_id for e in queue] == [items[1], items[2], items[0]]
        assert [e.state for e in queue] == [ReviewState.READY, ReviewState.READY,
                                            ReviewState.CLAIMED]
        assert all(e.overdue for e in queue)
        # on time: ready before claimed
        assert [e.item_id for e in list_queue(s, alice, now)] == [items[2], items[0], items[1]]
        [stats] = pool_turnaround(s, alice, later)
        assert (stats.signed, stats.signed_in_time, stats.pct_in_time) == (1, 1, 100.0)
        assert stats.meets_target is True
        assert (stats.open, stats.open_overdue) == (3, 3)
        assert stats.over_target == {"(unclaimed)": 2, "Alice": 1}


def test_signing_attests_the_review_and_acknowledges_what_it_must(
        server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    base = f"/api/v1/review/items/{item}"
    alice, doc = UserClient(server.http_url, "alice"), UserClient(server.http_url, "dr_north")
    alice.post(f"{base}/claim")
    r = alice.put(f"{base}/note", json={
        "base_version": 1,
        "sections": {"assessment": "", "plan": "Start lisinopril 20 mg daily. CBC and "
                                               "cardiology referral."},
        "orders": [{"id": "o1", "decision": "accepted", "fields": {"dose": "20"}},
                   {"id": "o2", "decision": "accepted"}, {"id": "o3", "decision": "accepted"},
                   {"decision": "accepted", "fields": {"kind": "imaging",
                                                       "name": "chest x-ray"}}]})
    assert r.status_code == 200, r.text
    plan = r.json()["document"]["sections"][3]["sentences"]
    assert (plan[0]["origin"], plan[0]["edited_by"], plan[0]["ai_text"]) == (
        "edited", "Alice", "Start lisinopril 10 mg daily.")
    # the partner takes out the order they added; an AI-drafted one can only be rejected
    r = alice.put(f"{base}/note", json={"base_version": 2, "orders": [{"id": "o4",
                                                                       "remove": True}]})
    assert [o["id"] for o in r.json()["document"]["orders"]] == ["o1", "o2", "o3"]
    r = alice.put(f"{base}/note", json={"base_version": 3, "orders": [{"id": "o3",
                                                                       "remove": True}]})
    assert r.status_code == 422 and "reject it instead" in r.json()["detail"]
    alice.post(f"{base}/send")

    review = doc.get(f"{base}/sign-review").json()
    checks = {c["id"]: c for c in review["checks"]}
    assert checks["empty-section:assessment"] == {
        "id": "empty-section:assessment", "severity": "blocker", "message": "Assessment is empty",
        "ref": "assessment", "acknowledgeable": True}
    assert {"verify:o2", "verify-instruction:i2"} <= set(checks)
    assert "pending-orders" not in checks
    sections = {s["key"]: s for s in review["sections"]}
    assert sections["plan"]["changed"] and sections["plan"]["diff"] == [
        {"op": "equal", "text": "Start lisinopril"}, {"op": "delete", "text": "10"},
        {"op": "insert", "text": "20"},
        {"op": "equal", "text": "mg daily. CBC and cardiology referral."}]
    assert sections["assessment"] == {
        "key": "assessment", "title": "ASSESSMENT",
        "ai_text": "Blood pressure is elevated at 150/95.", "text": "", "changed": True,
        "diff": [{"op": "delete", "text": "Blood pressure is elevated at 150/95."}]}
    assert not sections["chief_complaint"]["changed"]
    assert [(o["id"], o["change"], o["fields"]) for o in review["orders"]] == [
        ("o1", "modified", {"dose": ["10", "20"]}), ("o2", "accepted", {}),
        ("o3", "accepted", {})]
    assert [(i["id"], i["change"]) for i in review["instructions"]] == [
        ("i1", "unchanged"), ("i2", "unchanged"), ("i3", "unchanged")]
    assert review["editors"] == ["Alice"]
    assert review["attestation_preview"].startswith(
        "I, Dr North, reviewed this note, including the changes made by Alice, and attest "
        "that it is accurate. Acknowledged: ")
    assert review["blocking"] == []

    r = doc.post(f"{base}/sign")
    assert r.status_code == 422 and r.json()["detail"] == (
        "confirm that you reviewed the note before signing")
    assert doc.post(f"{base}/sign", json={"attest": False}).status_code == 422
    r = doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS})
    assert r.status_code == 422 and r.json()["error"] == "sign-blocked"
    assert r.json()["blocking"] == ["empty-section:assessment"]
    assert "Assessment is empty" in r.json()["detail"]
    assert {c["id"] for c in r.json()["checks"]} == set(checks)

    acknowledged = ["empty-section:assessment", *SIGN_ACKS]
    r = doc.post(f"{base}/sign", json={"attest": True, "acknowledged": acknowledged})
    assert r.status_code == 200 and r.json()["state"] == "signed"
    with world.db.session() as s:
        row = s.get(ReviewItem, item)
        assert row is not None and row.signed_by_name == "Dr North"
        assert row.attestation == review["attestation_preview"]
        assert row.attestation.endswith("Assessment is empty.")

    admin = UserClient(server.http_url, "admin_north")
    trail = admin.get("/api/v1/admin/audit", params={"item_id": item}).json()
    [sign] = [e for e in trail if e["action"] == "sign"]
    assert sign["detail"].startswith("v3; acknowledged: ")
    assert "empty-section:assessment" in sign["detail"]
    assert any(e["action"] == "view_versions" and e["detail"] == "sign-review"
               and e["actor"] == "dr_north" for e in trail)


def test_a_signed_note_changes_only_by_an_amendment_with_a_reason(
        server: ServerThread, world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    base = f"/api/v1/review/items/{item}"
    doc = UserClient(server.http_url, "dr_north")
    doc.post(f"{base}/claim")
    doc.put(f"{base}/note", json={"base_version": 1, "orders": [
        {"id": o, "decision": "accepted"} for o in ("o1", "o2", "o3")]})
    assert doc.post(f"{base}/sign", json={"attest": True, "acknowledged": SIGN_ACKS}
                    ).json()["state"] == "signed"

    change = {"base_version": 2, "sections": {"plan": "Start lisinopril 10 mg daily."}}
    r = doc.put(f"{base}/note", json=change)
    assert r.status_code == 422 and r.json()["detail"] == "an amendment needs a reason"
    r = doc.put(f"{base}/note", json={**change, "reason": "   "})
    assert r.status_code == 422
    assert doc.put(f"{base}/note", json={**change, "reason": "x" * 2001}).status_code == 422
    # nothing changed, nothing to explain: the note stays as signed
    r = doc.put(f"{base}/note", json={"base_version": 2})
    assert r.status_code == 200 and (r.json()["state"], r.json()["version"]) == ("signed", 2)

    r = doc.put(f"{base}/note", json={**change, "reason": "Cardiology referral was not made."})
    assert r.status_code == 200 and (r.json()["state"], r.json()["version"]) == ("amended", 3)
    with world.db.session() as s:
        row = s.get(ReviewItem, item)
        assert row is not None
        version = workflow.current_version(s, row, 3)
        assert (version.kind, version.reason) == ("amend", "Cardiology referral was not made.")
        assert workflow.current_version(s, row, 2).reason == ""
    admin = UserClient(server.http_url, "admin_north")
    [amend] = [e for e in admin.get("/api/v1/admin/audit", params={"item_id": item}).json()
               if e["action"] == "amend"]
    # The admin view shows the reason's length only; the version keeps the text.
    assert amend["detail"].endswith("; reason (33 chars)")


def test_a_linked_patient_needs_no_acknowledgement_and_is_the_exports_subject(
        world: World) -> None:
    _, item = add_encounter(world.db, "exam-1")
    assert item is not None
    now = utcnow()
    with world.db.session() as s:
        doc = load_principal(s, directory.get_user(s, "dr_north"), "t")
        row = s.get(ReviewItem, item)
        assert row is not None
        row.patient_name, row.patient_dob, row.patient_mrn = "Maria Lopez", "1970-04-02", "A-1"
        s.flush()
        workflow.act(s, doc, item, Action.CLAIM, now)
        workflow.edit(s, doc, item, 1, {}, [OrderChange(o, "accepted")
                                            for o in ("o1", "o2", "o3")], now)
        review = workflow.review_of(s, row, doc)
        assert [c.id for c in review.checks] == ["verify:o2", "verify-instruction:i2"]
        assert review.editors == ["Dr North"]
        result = workflow.act(s, doc, item, Action.SIGN, now, attest=True)
        assert result.item.attestation == (
            "I, Dr North, reviewed this note, including the changes made by Dr North, and "
            "attest that it is accurate. Acknowledged: none.")
        assert result.export is not None
        patients = [e["resource"] for e in result.export.bundle["entry"]
                    if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1
        assert "A-1" in json.dumps(patients[0]) and "Maria Lopez" in json.dumps(patients[0])
