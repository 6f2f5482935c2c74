"""Sign checks, controlled substances and the sign review: pure, over document JSON."""

from __future__ import annotations

import pytest

from server.review.controlled import controlled_schedule, schedule_name
from server.review.diffing import DiffRun, word_runs
from server.review.document import OrderChange, apply_edit, document_from_draft
from server.review.signcheck import (
    BLOCKER,
    WARNING,
    SignCheck,
    acknowledged_checks,
    attestation,
    blocking,
    sign_checks,
    sign_review,
)
from tests.review.world import make_draft

ACCEPT_ALL = [OrderChange(o, "accepted") for o in ("o1", "o2", "o3")]


@pytest.fixture
def doc() -> dict:
    return document_from_draft(make_draft("enc-1"))


@pytest.fixture
def decided(doc: dict) -> dict:
    return apply_edit(doc, {}, ACCEPT_ALL)


def _ids(checks: list[SignCheck]) -> list[str]:
    return [c.id for c in checks]


def _by_id(checks: list[SignCheck]) -> dict[str, SignCheck]:
    return {c.id: c for c in checks}


def test_undecided_orders_block_and_cannot_be_acknowledged(doc: dict) -> None:
    checks = sign_checks(doc, patient_linked=True)
    assert _ids(checks) == ["pending-orders", "verify:o2", "verify-instruction:i2"]
    pending = checks[0]
    assert (pending.severity, pending.acknowledgeable, pending.ref) == (BLOCKER, False,
                                                                        "o1,o2,o3")
    assert pending.message == ("3 orders are not decided yet (lisinopril, cbc, cardiology): "
                               "accept or reject each")
    assert blocking(checks, ["pending-orders"]) == [pending]  # acknowledging does not help


def test_a_decided_note_has_only_the_recogniser_warnings(decided: dict) -> None:
    checks = sign_checks(decided, patient_linked=True)
    assert [(c.id, c.severity) for c in checks] == [("verify:o2", WARNING),
                                                    ("verify-instruction:i2", WARNING)]
    assert checks[0].message == ("Check the cbc order against the audio: the recogniser was "
                                 "unsure it heard 'cbc' (p=0.41)")
    assert checks[1].message.startswith('Check the patient instruction "Get a blood test')
    assert blocking(checks, []) == []  # warnings never block


def test_no_patient_blocks_until_acknowledged(decided: dict) -> None:
    checks = sign_checks(decided, patient_linked=False)
    [no_patient] = blocking(checks, [])
    assert no_patient == SignCheck("no-patient", BLOCKER, "No patient is linked to this visit")
    assert no_patient.acknowledgeable
    assert blocking(checks, ["no-patient"]) == []


def test_an_empty_required_section_blocks_one_missing_from_the_template_does_not(
        decided: dict) -> None:
    empty = apply_edit(decided, {"assessment": "  ", "history_of_present_illness": ""}, [])
    checks = _by_id(sign_checks(empty, patient_linked=True))
    assert "empty-section:history_of_present_illness" not in checks  # not required
    check = checks["empty-section:assessment"]
    assert (check.severity, check.message, check.ref, check.acknowledgeable) == (
        BLOCKER, "Assessment is empty", "assessment", True)
    no_plan = {**empty, "sections": [s for s in empty["sections"] if s["key"] != "plan"]}
    assert [c.id for c in blocking(sign_checks(no_plan, patient_linked=True), [])] == [
        "empty-section:assessment"]
    custom = sign_checks(empty, patient_linked=True,
                         required_sections=("history_of_present_illness",))
    assert _by_id(custom)["empty-section:history_of_present_illness"].message == (
        "History of present illness is empty")


def test_a_medication_without_dose_or_frequency_blocks_unless_stopped(decided: dict) -> None:
    bare = apply_edit(decided, {}, [OrderChange("o1", "accepted",
                                                {"dose": "", "frequency": " "})])
    check = _by_id(sign_checks(bare, patient_linked=True))["order-fields:o1"]
    assert (check.severity, check.acknowledgeable, check.ref) == (BLOCKER, True, "o1")
    assert check.message == "The lisinopril order is missing its dose and frequency"
    stopped = apply_edit(bare, {}, [OrderChange("o1", "accepted", {"status": "stop"})])
    assert "order-fields:o1" not in _ids(sign_checks(stopped, patient_linked=True))


def test_an_order_without_a_name_blocks_and_cannot_be_acknowledged(decided: dict) -> None:
    nameless = apply_edit(decided, {}, [OrderChange("o2", "accepted", {"name": ""}),
                                        OrderChange("o3", "accepted",
                                                    {"name": "", "specialty": ""})])
    checks = _by_id(sign_checks(nameless, patient_linked=True))
    assert checks["order-fields:o2"].message == "A lab order (o2) has no name: name it or reject it"
    assert checks["order-fields:o3"].severity == BLOCKER
    assert not checks["order-fields:o2"].acknowledgeable
    assert "verify:o2" not in checks  # one thing at a time: the name first


def _oxycodone(**fields: str) -> OrderChange:
    return OrderChange(None, "accepted", {"kind": "medication", "name": "oxycodone",
                                          "dose": "5", "unit": "mg", "route": "oral",
                                          "frequency": "every 6 hours as needed", **fields})


def test_a_controlled_substance_warns_and_needs_its_quantity(decided: dict) -> None:
    note = apply_edit(decided, {}, [_oxycodone()], author="Alice")
    checks = _by_id(sign_checks(note, patient_linked=True))
    warning = checks["controlled:o4"]
    assert (warning.severity, warning.message, warning.ref) == (
        WARNING, "Oxycodone is a Schedule II controlled substance", "o4")
    missing = checks["controlled-fields:o4"]
    assert (missing.severity, missing.acknowledgeable) == (BLOCKER, True)
    assert missing.message == ("Oxycodone is a controlled substance: the order is missing its "
                               "quantity")
    assert "order-fields:o4" not in checks  # one check names all that is missing
    bare = apply_edit(decided, {}, [_oxycodone(dose="", route="")])
    assert _by_id(sign_checks(bare, patient_linked=True))["controlled-fields:o4"].message.endswith(
        "missing its dose, route and quantity")
    complete = apply_edit(decided, {}, [_oxycodone(quantity="20")])
    assert [c.id for c in sign_checks(complete, patient_linked=True)
            if c.ref == "o4"] == ["controlled:o4"]


def test_rejected_orders_and_their_instructions_are_never_checked(decided: dict) -> None:
    note = apply_edit(decided, {}, [OrderChange("o2", "rejected", {"name": ""}),
                                    OrderChange("o1", "rejected", {"dose": ""}),
                                    OrderChange(None, "rejected", {"kind": "medication",
                                                                   "name": "oxycodone"})])
    assert sign_checks(note, patient_linked=True) == []
    pending_then_rejected = apply_edit(document_from_draft(make_draft("e")), {}, [
        OrderChange(o, "rejected") for o in ("o1", "o2", "o3")])
    assert sign_checks(pending_then_rejected, patient_linked=True) == []


def test_acknowledged_checks_and_the_attestation(decided: dict) -> None:
    empty = apply_edit(decided, {"assessment": ""}, [])
    checks = sign_checks(empty, patient_linked=False)
    acked = acknowledged_checks(checks, ["no-patient", "empty-section:assessment",
                                         "empty-section:plan", "verify:o2"])
    assert _ids(acked) == ["no-patient", "empty-section:assessment", "verify:o2"]
    assert attestation("Dr North", ["Alice", "Dr North"], acked[:2]) == (
        "I, Dr North, reviewed this note, including the changes made by Alice, Dr North, and "
        "attest that it is accurate. Acknowledged: No patient is linked to this visit; "
        "Assessment is empty.")
    assert attestation("Dr North", [], []) == (
        "I, Dr North, reviewed this note, including the changes made by no one, and attest "
        "that it is accurate. Acknowledged: none.")


@pytest.mark.parametrize(("name", "spoken", "schedule"), [
    ("oxycodone", "", "CII"),
    ("Oxycodone", "", "CII"),
    ("oxycodone-acetaminophen", "percocet", "CII"),
    ("", "OxyContin", "CII"),
    ("hydrocodone-acetaminophen", "vicodin", "CII"),
    ("morphine sulfate", "", "CII"),
    ("fentanyl", "duragesic", "CII"),
    ("dextroamphetamine", "", "CII"),
    ("amphetamine", "Adderall XR", "CII"),
    ("lisdexamfetamine", "vyvanse", "CII"),
    ("methylphenidate", "Concerta", "CII"),
    ("codeine", "", "CII"),
    ("acetaminophen-codeine", "tylenol #3", "CIII"),
    ("", "Tylenol with codeine", "CIII"),
    ("promethazine with codeine", "", "CV"),
    ("buprenorphine-naloxone", "suboxone", "CIII"),
    ("testosterone cypionate", "", "CIII"),
    ("ketamine", "", "CIII"),
    ("dronabinol", "", "CIII"),
    ("tramadol", "ultram", "CIV"),
    ("ALPRAZOLAM", "", "CIV"),
    ("", "xanax", "CIV"),
    ("zolpidem", "ambien", "CIV"),
    ("modafinil", "", "CIV"),
    ("carisoprodol", "soma", "CIV"),
    ("pregabalin", "Lyrica", "CV"),
    ("lacosamide", "", "CV"),
    ("marijuana", "", "CI"),
    ("lisinopril", "zestril", None),
    ("gabapentin", "neurontin", None),
    ("somatropin", "", None),  # not "soma"
    ("methylprednisolone", "", None),
    ("", "", None),
])
def test_controlled_schedule_by_generic_or_brand(name: str, spoken: str,
                                                 schedule: str | None) -> None:
    assert controlled_schedule(name, spoken) == schedule


def test_the_stricter_schedule_wins_and_has_a_name() -> None:
    assert controlled_schedule("tramadol", "oxycontin") == "CII"
    assert schedule_name("CIV") == "Schedule IV"


def test_word_runs_merge_kept_inserted_and_deleted_words() -> None:
    assert word_runs("Start lisinopril 10 mg daily.", "Start  lisinopril 20 mg daily. Recheck."
                     ) == [DiffRun("equal", "Start lisinopril"), DiffRun("delete", "10"),
                           DiffRun("insert", "20"), DiffRun("equal", "mg daily."),
                           DiffRun("insert", "Recheck.")]
    assert word_runs("a b c", "x y c") == [DiffRun("delete", "a b"), DiffRun("insert", "x y"),
                                           DiffRun("equal", "c")]
    assert word_runs("", "New text") == [DiffRun("insert", "New text")]
    assert word_runs("same", "same") == [DiffRun("equal", "same")]
    assert word_runs("", "") == []


def test_sign_review_shows_every_change_since_the_ai_draft(doc: dict) -> None:
    current = apply_edit(doc, {"plan": "Start lisinopril 20 mg daily. CBC and cardiology "
                                       "referral."},
                         [OrderChange("o1", "accepted", {"dose": "20"}),
                          OrderChange("o2", "accepted"), OrderChange("o3", "rejected"),
                          OrderChange(None, "accepted", {"kind": "imaging",
                                                         "name": "chest x-ray"})],
                         author="Alice")
    review = sign_review(doc, current, patient_linked=False, editors=["Alice"],
                         signer="Dr North")
    plan = next(s for s in review.sections if s.key == "plan")
    assert plan.changed and plan.ai_text == "Start lisinopril 10 mg daily. CBC and cardiology " \
                                            "referral."
    assert [(r.op, r.text) for r in plan.diff] == [
        ("equal", "Start lisinopril"), ("delete", "10"), ("insert", "20"),
        ("equal", "mg daily. CBC and cardiology referral.")]
    assert not next(s for s in review.sections if s.key == "assessment").changed
    assert [(o.id, o.change, o.fields, o.added_by) for o in review.orders] == [
        ("o1", "modified", {"dose": ("10", "20")}, ""),
        ("o2", "accepted", {}, ""),
        ("o3", "rejected", {}, ""),
        ("o4", "added", {"kind": ("", "imaging"), "name": ("", "chest x-ray"),
                         "status": ("", "new")}, "Alice")]
    assert [(i.id, i.change) for i in review.instructions] == [
        ("i1", "unchanged"), ("i2", "unchanged"), ("i3", "rejected")]
    assert review.editors == ["Alice"]
    assert review.blocking == []  # the preview acknowledges the acknowledgeable blockers
    assert review.attestation_preview.endswith(
        "changes made by Alice, and attest that it is accurate. "
        "Acknowledged: No patient is linked to this visit.")
    strict = sign_review(doc, current, patient_linked=False, editors=[], signer="Dr North",
                         acknowledged=[])
    assert strict.blocking == ["no-patient"]
    assert strict.attestation_preview.endswith("by no one, and attest that it is accurate. "
                                               "Acknowledged: none.")
