"""FHIR export: a document Bundle that fhir.resources (R4B, 4.3.0) validates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from server.review import fhir
from server.review.document import (
    InstructionChange,
    OrderChange,
    apply_edit,
    document_from_draft,
)
from server.review.errors import InvalidInput
from tests.review.world import make_draft

SIGNED_AT = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _decided() -> dict:
    doc = document_from_draft(make_draft("enc-9"))
    return apply_edit(doc, {}, [OrderChange("o1", "accepted"),
                                OrderChange("o2", "accepted", {"name": "cbc with differential"}),
                                OrderChange("o3", "rejected"),
                                OrderChange(None, "accepted", {"kind": "medication",
                                                               "name": "metformin",
                                                               "status": "stop"})])


def _bundle(amended: bool = False) -> dict:
    return fhir.build_bundle(item_id="item-1", encounter_id="enc-9", version=3,
                             document=_decided(), signer_id=7, signer_name="Dr North",
                             signed_at=SIGNED_AT, amended=amended)


def test_bundle_validates_and_holds_note_and_accepted_orders() -> None:
    bundle = _bundle()
    Bundle.model_validate(bundle)  # parses again from the JSON we store and serve
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types == ["Composition", "Practitioner", "MedicationRequest", "ServiceRequest",
                     "MedicationRequest"]  # o3 (rejected) is not exported
    comp = bundle["entry"][0]["resource"]
    assert bundle["type"] == "document" and comp["status"] == "final"
    assert comp["type"]["coding"][0]["code"] == "11506-3"
    assert comp["encounter"]["identifier"]["value"] == "enc-9"
    titles = [s["title"] for s in comp["section"]]
    assert titles == ["CHIEF COMPLAINT", "HISTORY OF PRESENT ILLNESS", "ASSESSMENT", "PLAN",
                      "Orders", "Patient instructions"]
    assert comp["section"][1]["code"]["coding"][0]["code"] == "10164-2"
    assert "chest tightness" in comp["section"][1]["text"]["div"]
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert {r["reference"] for r in comp["section"][-2]["entry"]} <= urls
    med = bundle["entry"][2]["resource"]
    assert (med["status"], med["intent"]) == ("draft", "order")
    assert med["medicationCodeableConcept"]["text"] == "lisinopril"
    assert med["dosageInstruction"][0]["text"] == "10 mg oral once a day"
    lab = bundle["entry"][3]["resource"]
    assert lab["code"]["text"] == "cbc with differential"
    assert lab["category"][0]["coding"][0]["code"] == "108252007"
    assert bundle["entry"][4]["resource"]["doNotPerform"] is True  # a "stop" order


def test_amended_and_deterministic() -> None:
    assert _bundle(amended=True)["entry"][0]["resource"]["status"] == "amended"
    assert fhir.bundle_digest(_bundle()) == fhir.bundle_digest(_bundle())


def test_narrative_is_escaped() -> None:
    doc = apply_edit(_decided(), {"plan": "BP <140/90> & recheck"}, [])
    bundle = fhir.build_bundle(item_id="i", encounter_id="e", version=1, document=doc,
                               signer_id=1, signer_name="Dr <b>", signed_at=SIGNED_AT)
    plan = next(s for s in bundle["entry"][0]["resource"]["section"] if s["title"] == "PLAN")
    assert "BP &lt;140/90&gt; &amp; recheck" in plan["text"]["div"]


def test_structural_errors_do_not_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    # An order resource missing its required subject must fail validation.
    real = fhir._order_resource
    monkeypatch.setattr(fhir, "_order_resource",
                        lambda order, common: {k: v for k, v in real(order, common).items()
                                               if k != "subject"})
    with pytest.raises(ValidationError, match="subject"):
        _bundle()


def test_empty_note_cannot_be_exported() -> None:
    doc = {"sections": [{"key": "plan", "title": "PLAN", "text": " ", "sentences": []}],
           "orders": []}
    with pytest.raises(InvalidInput):
        fhir.build_bundle(item_id="i", encounter_id="e", version=1, document=doc, signer_id=1,
                          signer_name="x", signed_at=SIGNED_AT)


def test_outbox_write_is_whole(tmp_path: Path) -> None:
    path = fhir.write_outbox(tmp_path / "outbox", "enc-9-v3.json", _bundle())
    assert json.loads(path.read_text())["type"] == "document"
    assert [p.name for p in path.parent.iterdir()] == ["enc-9-v3.json"]


def test_medication_code_and_reasons_travel() -> None:
    doc = apply_edit(document_from_draft(make_draft("enc-9")), {}, [
        OrderChange("o1", "accepted", {"spoken": "zestril", "code": "DB00722",
                                       "code_system": "https://go.drugbank.com/drugs",
                                       "reason": "high blood pressure"}),
        OrderChange("o2", "accepted", {"reason": "fatigue"}),
        OrderChange("o3", "rejected")])
    bundle = fhir.build_bundle(item_id="i", encounter_id="e", version=1, document=doc,
                               signer_id=1, signer_name="Dr North", signed_at=SIGNED_AT)
    Bundle.model_validate(bundle)
    med, lab = (e["resource"] for e in bundle["entry"][2:4])
    assert med["medicationCodeableConcept"]["coding"] == [
        {"system": "https://go.drugbank.com/drugs", "code": "DB00722"}]
    assert med["reasonCode"] == [{"text": "high blood pressure"}]
    assert lab["reasonCode"] == [{"text": "fatigue"}]


def _instructions_section(document: dict) -> dict | None:
    bundle = fhir.build_bundle(item_id="i", encounter_id="e", version=1, document=document,
                               signer_id=1, signer_name="Dr North", signed_at=SIGNED_AT)
    Bundle.model_validate(bundle)
    sections = bundle["entry"][0]["resource"]["section"]
    return next((s for s in sections if s["title"] == "Patient instructions"), None)


def test_patient_instructions_are_a_loinc_section_of_escaped_narrative() -> None:
    doc = apply_edit(_decided(), {}, [], [
        InstructionChange("i1", {"text": "Start lisinopril 10 mg once a day <b>& rest</b>."}),
        InstructionChange(None, {"kind": "warning",
                                 "text": "Call us if you have chest pain."})])
    section = _instructions_section(doc)
    assert section is not None
    assert section["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "69730-0", "display": "Instructions"}]
    div = section["text"]["div"]
    assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml"><ul><li>')
    assert "<li>Start lisinopril 10 mg once a day &lt;b&gt;&amp; rest&lt;/b&gt;.</li>" in div
    assert "<li>Get a blood test: complete blood count (CBC).</li>" in div
    assert "<li>Call us if you have chest pain.</li>" in div
    # o3 (the cardiology referral) was rejected: its line does not reach the patient
    assert "cardiology" not in div


def test_no_instructions_no_section_and_old_documents_still_export() -> None:
    doc = _decided()
    removed = apply_edit(doc, {}, [], [InstructionChange(i["id"], remove=True)
                                       for i in doc["instructions"]])
    assert _instructions_section(removed) is None
    old = {k: v for k, v in doc.items() if k != "instructions"}  # stored before the summary
    assert _instructions_section(old) is None


PATIENT = {"name": "Maria de la Cruz", "dob": "1961-04-12", "mrn": "A-1001",
           "clinic_id": "north-clinic"}


def test_known_patient_is_a_patient_resource_every_subject_references() -> None:
    bundle = fhir.build_bundle(item_id="item-1", encounter_id="enc-9", version=3,
                               document=_decided(), signer_id=7, signer_name="Dr North",
                               signed_at=SIGNED_AT, patient=PATIENT)
    Bundle.model_validate(bundle)
    [entry] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    patient = entry["resource"]
    assert entry["fullUrl"].startswith("urn:uuid:")
    [mrn] = patient["identifier"]
    assert (mrn["system"], mrn["value"]) == ("urn:roomscribe:mrn:north-clinic", "A-1001")
    assert mrn["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR",
        "display": "Medical record number"}
    assert patient["name"] == [{"text": "Maria de la Cruz", "family": "Cruz",
                                "given": ["Maria", "de", "la"]}]
    assert patient["birthDate"] == "1961-04-12"
    subjects = [e["resource"]["subject"] for e in bundle["entry"] if "subject" in e["resource"]]
    assert len(subjects) == 4  # the Composition and its three orders
    assert all(s == {"reference": entry["fullUrl"], "display": "Maria de la Cruz"}
               for s in subjects)
    again = fhir.build_bundle(item_id="item-1", encounter_id="enc-9", version=3,
                              document=_decided(), signer_id=7, signer_name="Dr North",
                              signed_at=SIGNED_AT, patient=PATIENT)
    assert fhir.bundle_digest(again) == fhir.bundle_digest(bundle)


def test_unknown_patient_keeps_the_subject_by_display() -> None:
    for patient in (None, {"name": " ", "dob": "", "mrn": "", "clinic_id": "c"}):
        bundle = fhir.build_bundle(item_id="i", encounter_id="enc-9", version=1,
                                   document=_decided(), signer_id=1, signer_name="Dr",
                                   signed_at=SIGNED_AT, patient=patient)
        assert "Patient" not in {e["resource"]["resourceType"] for e in bundle["entry"]}
        assert bundle["entry"][0]["resource"]["subject"] == {
            "display": "Patient seen in encounter enc-9"}
    assert fhir.patient_resource({"name": "Lopez, Maria Elena", "mrn": "", "dob": ""}) == {
        "resourceType": "Patient",
        "name": [{"text": "Lopez, Maria Elena", "family": "Lopez",
                  "given": ["Maria", "Elena"]}]}


def test_medication_quantity_and_refills_become_a_dispense_request() -> None:
    doc = _decided()
    doc["orders"][0].update(quantity="30", refills="2")
    doc["orders"][3].update(quantity="a box", refills="")
    bundle = fhir.build_bundle(item_id="i", encounter_id="e", version=1, document=doc,
                               signer_id=1, signer_name="Dr", signed_at=SIGNED_AT)
    Bundle.model_validate(bundle)
    meds = [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"]
    assert meds[0]["dispenseRequest"] == {"quantity": {"value": 30, "unit": "mg"},
                                          "numberOfRepeatsAllowed": 2}
    assert "dispenseRequest" not in meds[1]
    assert {"text": "dispense quantity as written: a box"} in meds[1]["note"]
