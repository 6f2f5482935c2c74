"""Note documents, pure edits, and the AI-draft → signed diff."""

from __future__ import annotations

import pytest

from server.review.diffing import compare, word_edit_distance, words
from server.review.document import (
    InstructionChange,
    OrderChange,
    apply_edit,
    document_from_draft,
    document_text,
    instructions_of,
    undecided_orders,
)
from server.review.errors import InvalidInput
from tests.review.world import make_draft


@pytest.fixture
def doc() -> dict:
    return document_from_draft(make_draft("enc-1"))


def test_document_keeps_sections_evidence_and_orders_but_not_small_talk(doc: dict) -> None:
    assert [s["key"] for s in doc["sections"]] == [
        "chief_complaint", "history_of_present_illness", "assessment", "plan"]
    hpi = doc["sections"][1]
    assert hpi["text"] == ("The patient reports chest tightness when climbing stairs. "
                           "Symptoms started two weeks ago.")
    assert hpi["sentences"][0]["evidence"][0]["segment_ids"] == [1]
    assert [(o["id"], o["kind"], o["decision"]) for o in doc["orders"]] == [
        ("o1", "medication", "pending"), ("o2", "lab", "pending"), ("o3", "referral", "pending")]
    assert undecided_orders(doc) == ["o1", "o2", "o3"]


def test_edit_realigns_evidence_to_the_sentences_that_survive(doc: dict) -> None:
    new = apply_edit(doc, {"history_of_present_illness":
                           "The patient reports chest tightness when climbing two flights of "
                           "stairs. Denies syncope."}, [])
    sentences = new["sections"][1]["sentences"]
    assert [s["text"] for s in sentences] == [
        "The patient reports chest tightness when climbing two flights of stairs.",
        "Denies syncope."]
    assert sentences[0]["evidence"][0]["segment_ids"] == [1]  # still points at its source
    assert sentences[1]["evidence"] == []  # the reviewer's own words have none
    assert doc["sections"][1]["sentences"][1]["text"] == "Symptoms started two weeks ago."


def test_order_decisions_modify_and_add(doc: dict) -> None:
    new = apply_edit(doc, {}, [
        OrderChange("o1", "accepted", {"dose": "20"}),  # changed fields → modified
        OrderChange("o2", "accepted"),
        OrderChange("o3", "rejected"),
        OrderChange(None, "accepted", {"kind": "imaging", "name": "chest x-ray"}),
    ])
    assert [(o["id"], o["decision"]) for o in new["orders"]] == [
        ("o1", "modified"), ("o2", "accepted"), ("o3", "rejected"), ("o4", "accepted")]
    assert new["orders"][0]["dose"] == "20" and new["orders"][3]["evidence"] == []
    assert undecided_orders(new) == []
    signed = document_text(new, decided_only=True)
    assert "lisinopril 20 mg" in signed and "cardiology" not in signed.split("ORDERS")[1]


@pytest.mark.parametrize(("sections", "orders", "message"), [
    ({"nonexistent": "x"}, [], "no section"),
    ({}, [OrderChange("o9", "accepted")], "no order"),
    ({}, [OrderChange("o1", "maybe")], "decision"),
    ({}, [OrderChange("o1", "accepted", {"price": "1"})], "unknown order field"),
    ({}, [OrderChange("o1", "accepted", {"kind": "magic"})], "order kind"),
    ({}, [OrderChange(None, "accepted", {"kind": "lab"})], "kind and a name"),
])
def test_bad_edits_are_refused_clearly(doc: dict, sections: dict, orders: list,
                                       message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        apply_edit(doc, sections, orders)


def test_word_edit_distance() -> None:
    assert word_edit_distance([], []) == 0
    assert word_edit_distance(words("start lisinopril 10 mg"), words("start lisinopril 20 mg")) == 1
    assert word_edit_distance(words("a b c"), words("a c")) == 1
    assert word_edit_distance(words("a b c"), words("x a b c y")) == 2
    assert word_edit_distance(words("kitten"), words("sitting")) == 1  # words, not characters


def test_compare_reports_distance_rate_and_diff() -> None:
    diff = compare("PLAN\nStart lisinopril 10 mg daily.", "PLAN\nStart lisinopril 20 mg daily.")
    assert (diff.edit_distance, diff.draft_words) == (1, 7)
    assert diff.rate == pytest.approx(1 / 7)
    assert "-Start lisinopril 10 mg daily." in diff.unified
    assert "+Start lisinopril 20 mg daily." in diff.unified
    assert compare("same text", "same text").edit_distance == 0


def test_document_holds_the_patient_instructions_with_evidence_and_their_orders(
        doc: dict) -> None:
    assert [(i["id"], i["kind"], i["order"]) for i in doc["instructions"]] == [
        ("i1", "medication", "o1"), ("i2", "test", "o2"), ("i3", "referral", "o3")]
    assert doc["instructions"][0]["text"] == "Start lisinopril 10 mg once a day."
    assert doc["instructions"][0]["evidence"][0]["segment_ids"] == [3]
    assert doc["instructions"][1]["verify"].startswith("the recogniser was unsure")


def test_instructions_are_edited_added_and_removed(doc: dict) -> None:
    new = apply_edit(doc, {}, [], [
        InstructionChange("i1", {"text": "Start lisinopril 20 mg  once a day."}),
        InstructionChange("i2", {"verify": ""}),  # checked against the audio
        InstructionChange("i3", remove=True),
        InstructionChange(None, {"kind": "warning",
                                 "text": "Call us if the chest tightness comes at rest."}),
    ])
    assert [(i["id"], i["kind"], i["text"]) for i in new["instructions"]] == [
        ("i1", "medication", "Start lisinopril 20 mg once a day."),
        ("i2", "test", "Get a blood test: complete blood count (CBC)."),
        ("i4", "warning", "Call us if the chest tightness comes at rest.")]
    assert new["instructions"][0]["evidence"] == doc["instructions"][0]["evidence"]
    assert new["instructions"][1]["verify"] == "" and new["instructions"][2]["evidence"] == []
    assert len(doc["instructions"]) == 3  # the old version is untouched
    # a later addition never reuses an id still in the list
    again = apply_edit(new, {}, [], [InstructionChange(None, {"kind": "other",
                                                             "text": "Rest."})])
    assert [i["id"] for i in again["instructions"]] == ["i1", "i2", "i4", "i5"]


@pytest.mark.parametrize(("change", "message"), [
    (InstructionChange("i9", {"text": "x"}), "no instruction 'i9'"),
    (InstructionChange("i9", remove=True), "no instruction 'i9'"),
    (InstructionChange(None, remove=True), "only an instruction that exists"),
    (InstructionChange("i1", {"dose": "20"}), "unknown instruction field"),
    (InstructionChange("i1", {"kind": "magic"}), "instruction kind must be one of"),
    (InstructionChange("i1", {"text": "   "}), "remove the instruction instead"),
    (InstructionChange(None, {"kind": "warning"}), "needs a kind and a text"),
    (InstructionChange(None, {"text": "Rest."}), "needs a kind and a text"),
    (InstructionChange("i1", {"text": "x" * 1001}), "at most 1,000 characters"),
])
def test_bad_instruction_edits_are_refused_clearly(doc: dict, change: InstructionChange,
                                                   message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        apply_edit(doc, {}, [], [change])


def test_documents_stored_before_instructions_still_edit_and_render(doc: dict) -> None:
    old = {k: v for k, v in doc.items() if k != "instructions"}
    assert instructions_of(old) == []
    unchanged = apply_edit(old, {}, [OrderChange("o1", "pending")])
    assert unchanged == old  # no empty list appears: a no-op save stays a no-op
    assert "PATIENT INSTRUCTIONS" not in document_text(old)
    added = apply_edit(old, {}, [], [InstructionChange(None, {"kind": "follow_up",
                                                              "text": "Come back in 2 weeks."})])
    assert [i["id"] for i in added["instructions"]] == ["i1"]


def test_signed_text_and_diff_show_instruction_changes(doc: dict) -> None:
    assert document_text(doc).endswith("PATIENT INSTRUCTIONS\n"
                                       "- Start lisinopril 10 mg once a day.\n"
                                       "- Get a blood test: complete blood count (CBC).\n"
                                       "- See cardiology (referral).")
    signed = apply_edit(doc, {}, [OrderChange("o1", "accepted"), OrderChange("o2", "accepted"),
                                  OrderChange("o3", "rejected")],
                        [InstructionChange("i1", {"text": "Start lisinopril 20 mg once a day."})])
    text = document_text(signed, decided_only=True)
    assert "See cardiology" not in text  # its order was rejected
    diff = compare(document_text(doc), text)
    assert "-- Start lisinopril 10 mg once a day." in diff.unified
    assert "+- Start lisinopril 20 mg once a day." in diff.unified
    assert "-- See cardiology (referral)." in diff.unified


def test_orders_a_reviewer_added_can_be_removed_and_ids_are_never_reused(doc: dict) -> None:
    added = apply_edit(doc, {}, [
        OrderChange(None, "accepted", {"kind": "imaging", "name": "chest x-ray"}),
        OrderChange(None, "accepted", {"kind": "lab", "name": "bmp"})], author="Alice")
    assert [(o["id"], o.get("added_by")) for o in added["orders"][3:]] == [
        ("o4", "Alice"), ("o5", "Alice")]
    removed = apply_edit(added, {}, [OrderChange("o4", remove=True)], author="Dr North")
    assert [o["id"] for o in removed["orders"]] == ["o1", "o2", "o3", "o5"]
    again = apply_edit(removed, {}, [OrderChange(None, "accepted", {"kind": "lab",
                                                                    "name": "lipid panel"})],
                       author="Dr North")
    assert [(o["id"], o["added_by"]) for o in again["orders"][3:]] == [
        ("o5", "Alice"), ("o6", "Dr North")]  # not o5 again (len + 1)
    # removed and re-added in one edit: the freed id is not handed out either
    swapped = apply_edit(again, {}, [OrderChange("o6", remove=True),
                                     OrderChange(None, "accepted", {"kind": "lab",
                                                                    "name": "a1c"})])
    assert [o["id"] for o in swapped["orders"][3:]] == ["o5", "o7"]


@pytest.mark.parametrize("change", [OrderChange("o1", remove=True),
                                    OrderChange("o2", "rejected", remove=True)])
def test_an_ai_drafted_order_cannot_be_removed(doc: dict, change: OrderChange) -> None:
    with pytest.raises(InvalidInput, match="reject it instead: an AI-drafted order stays on "
                                           "record"):
        apply_edit(doc, {}, [change])
    with pytest.raises(InvalidInput, match="only an order that exists"):
        apply_edit(doc, {}, [OrderChange("o9", remove=True)])


@pytest.mark.parametrize(("fields", "message"), [
    ({"quantity": "-1"}, "quantity must be a number of 0 or more"),
    ({"quantity": "ten"}, "quantity must be a number"),
    ({"quantity": "inf"}, "quantity must be a number"),
    ({"refills": "1.5"}, "refills must be a whole number"),
    ({"refills": "-2"}, "refills must be a whole number"),
])
def test_quantity_and_refills_are_counts(doc: dict, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        apply_edit(doc, {}, [OrderChange("o1", "accepted", fields)])


def test_quantity_and_refills_are_order_fields_old_documents_read_as_empty(doc: dict) -> None:
    new = apply_edit(doc, {}, [OrderChange("o1", "accepted", {"quantity": "30",
                                                              "refills": "2"})])
    assert (new["orders"][0]["quantity"], new["orders"][0]["refills"]) == ("30", "2")
    assert new["orders"][0]["decision"] == "modified"
    assert (doc["orders"][0]["quantity"], doc["orders"][0]["refills"]) == ("", "")
    old = {**doc, "orders": [{k: v for k, v in o.items() if k not in ("quantity", "refills")}
                             for o in doc["orders"]]}
    same = apply_edit(old, {}, [OrderChange("o1", "accepted", {"quantity": "", "refills": ""})])
    assert same["orders"][0]["decision"] == "accepted"  # '' is what was there


def test_sentences_a_human_changes_say_so_and_keep_the_ai_text(doc: dict) -> None:
    ai_plan = doc["sections"][3]["sentences"]
    first = apply_edit(doc, {"plan": "Start lisinopril 20 mg daily.  CBC and  cardiology "
                                     "referral. Recheck in 2 weeks."}, [], author="Alice")
    edited, kept, added = first["sections"][3]["sentences"]
    assert edited == {"text": "Start lisinopril 20 mg daily.", "evidence": ai_plan[0]["evidence"],
                      "origin": "edited", "edited_by": "Alice",
                      "ai_text": "Start lisinopril 10 mg daily."}
    assert kept == ai_plan[1]  # the same sentence (spaces aside) stays the AI's
    assert added == {"text": "Recheck in 2 weeks.", "evidence": [], "origin": "added",
                     "edited_by": "Alice"}
    second = apply_edit(first, {"plan": "Start lisinopril 25 mg daily. CBC and cardiology "
                                        "referral. Recheck in 3 weeks."}, [],
                        author="Dr North")
    edited, kept, added = second["sections"][3]["sentences"]
    assert (edited["text"], edited["edited_by"], edited["ai_text"]) == (
        "Start lisinopril 25 mg daily.", "Dr North", "Start lisinopril 10 mg daily.")
    assert kept == ai_plan[1]
    # a human sentence changed again is still a human sentence, without an AI source
    assert added == {"text": "Recheck in 3 weeks.", "evidence": [], "origin": "added",
                     "edited_by": "Dr North"}
    third = apply_edit(second, {"assessment": "Blood pressure is elevated at 150/95."}, [])
    assert third["sections"][3] == second["sections"][3]  # untouched sections stay as they are
