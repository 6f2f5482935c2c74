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
