"""FHIR R4 export of a signed note: a document Bundle, validated, and the outbox.

The Bundle (type ``document``) holds a ``Composition`` (LOINC 11506-3 progress
note; ``final`` when signed, ``amended`` after an amendment) with one section
per note section, the signing ``Practitioner``, and a *draft*
``MedicationRequest`` (medication orders) or ``ServiceRequest`` (labs, imaging,
referrals, procedures, follow-ups) for each accepted or modified order, which
the Composition's "Orders" section references, and the patient's after-visit
summary as a "Patient instructions" section (LOINC 69730-0, a narrative list).
Built as plain JSON, then
validated by parsing it with the ``fhir.resources`` models (FHIR 4.3.0, R4B,
the current release of the R4 line), so a malformed export never leaves.

When the visit's patient is known (``patient=``: from the schedule or set by a
reviewer) the Bundle holds a ``Patient`` (the MRN as an ``MR`` identifier in
the clinic's system ``urn:roomscribe:mrn:<clinic>``, name, birth date) that
every resource's ``subject`` references; without one the subject is a
reference by display. The encounter is a reference by identifier
(``urn:roomscribe:encounter``), for the EHR interface to resolve. A medication
order with a ``quantity`` or ``refills`` gets a ``dispenseRequest``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from server.review.document import instructions_of
from server.review.errors import InvalidInput

__all__ = ["ENCOUNTER_SYSTEM", "FHIR_VERSION", "MRN_SYSTEM", "build_bundle", "bundle_digest",
           "patient_resource", "write_outbox"]

FHIR_VERSION = "4.3.0"
ENCOUNTER_SYSTEM = "urn:roomscribe:encounter"
_LOINC = "http://loinc.org"
#: LOINC 69730-0 "Instructions": the after-visit summary's section
INSTRUCTIONS_CODE = ("69730-0", "Instructions")
_SNOMED = "http://snomed.info/sct"
_NS = uuid.UUID("6f1c9a52-3f3e-4a8e-9d1f-8d3a2b7c5e10")
#: A patient's MRN is an identifier in its clinic's system: ``urn:roomscribe:mrn:<clinic id>``.
MRN_SYSTEM = "urn:roomscribe:mrn:"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

#: Note sections → LOINC section codes.
SECTION_CODES: dict[str, tuple[str, str]] = {
    "chief_complaint": ("10154-3", "Chief complaint Narrative - Reported"),
    "history_of_present_illness": ("10164-2", "History of Present illness Narrative"),
    "review_of_systems": ("10187-3", "Review of systems Narrative - Reported"),
    "past_medical_history": ("11348-0", "History of Past illness Narrative"),
    "medications": ("10160-0", "History of Medication use Narrative"),
    "allergies": ("48765-2", "Allergies and adverse reactions Document"),
    "social_history": ("29762-2", "Social history Narrative"),
    "family_history": ("10157-6", "History of family member diseases Narrative"),
    "physical_exam": ("29545-1", "Physical findings Narrative"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    "assessment": ("51848-0", "Evaluation note"),
    "plan": ("18776-5", "Plan of care note"),
}
#: Order kinds (other than medication) → ServiceRequest category (SNOMED CT).
SERVICE_CATEGORIES: dict[str, tuple[str, str]] = {
    "lab": ("108252007", "Laboratory procedure"),
    "imaging": ("363679005", "Imaging"),
    "referral": ("3457005", "Patient referral"),
    "procedure": ("387713003", "Surgical procedure"),
    "follow_up": ("390906007", "Follow-up encounter"),
    "other": ("71388002", "Procedure"),
}


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '/'.join(str(p) for p in parts))}"


def _narrative(*paragraphs: str) -> dict[str, str]:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p) or "<p>(empty)</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _list_narrative(items: list[str]) -> dict[str, str]:
    body = "".join(f"<li>{html.escape(i)}</li>" for i in items)
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{body}</ul></div>'}


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _human_name(text: str) -> dict[str, Any]:
    """"Maria Lopez" or "Lopez, Maria": the full text, family and given names."""
    name: dict[str, Any] = {"text": text}
    family, comma, given = text.partition(",")
    if not comma:
        given, _, family = text.rpartition(" ")
    if family.strip():
        name["family"] = family.strip()
    if given.split():
        name["given"] = given.split()
    return name


def patient_resource(patient: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Patient`` for ``patient`` (keys name, dob, mrn, clinic_id; empty ones left out)."""
    res: dict[str, Any] = {"resourceType": "Patient"}
    if patient.get("mrn"):
        res["identifier"] = [{
            "use": "usual",
            "type": {"coding": [{"system": _V2_0203, "code": "MR",
                                 "display": "Medical record number"}]},
            "system": f"{MRN_SYSTEM}{patient.get('clinic_id', '')}",
            "value": patient["mrn"]}]
    if str(patient.get("name", "")).strip():
        res["name"] = [_human_name(str(patient["name"]).strip())]
    if patient.get("dob"):
        res["birthDate"] = patient["dob"]
    return res


def _dispense(order: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``dispenseRequest`` from the order's ``quantity`` and ``refills``, and notes for any
    that are not numbers (kept as written rather than lost)."""
    dispense: dict[str, Any] = {}
    notes = []
    quantity = str(order.get("quantity") or "").strip()
    if quantity:
        try:
            value = Decimal(quantity)
            if not value.is_finite() or value <= 0:
                raise InvalidOperation
            dispense["quantity"] = {"value": int(value) if value == value.to_integral_value()
                                    else float(value)}
            if order.get("unit"):
                dispense["quantity"]["unit"] = order["unit"]
        except InvalidOperation:
            notes.append(f"dispense quantity as written: {quantity}")
    refills = str(order.get("refills") or "").strip()
    if refills:
        if refills.isdigit():
            dispense["numberOfRepeatsAllowed"] = int(refills)
        else:
            notes.append(f"refills as written: {refills}")
    return dispense, notes


def _order_resource(order: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    status = order.get("status", "new")
    notes = [f"spoken in the visit as a {status} order"] + (
        ["reviewer modified the drafted order"] if order["decision"] == "modified" else [])
    if order["kind"] == "medication":
        dosage = _join(order.get("dose", ""), order.get("unit", ""), order.get("route", ""),
                       order.get("frequency", ""), order.get("duration", ""))
        dispense, dispense_notes = _dispense(order)
        notes += dispense_notes
        medication: dict[str, Any] = {"text": order["name"]}
        if order.get("code") and order.get("code_system"):
            medication["coding"] = [{"system": order["code_system"], "code": order["code"]}]
        res: dict[str, Any] = {
            "resourceType": "MedicationRequest", "status": "draft", "intent": "order",
            "medicationCodeableConcept": medication,
            **common, "note": [{"text": n} for n in notes],
        }
        if order.get("reason"):
            res["reasonCode"] = [{"text": order["reason"]}]
        if status == "stop":
            res["doNotPerform"] = True
        if dosage:
            instruction: dict[str, Any] = {"text": dosage}
            if order.get("route"):
                instruction["route"] = {"text": order["route"]}
            res["dosageInstruction"] = [instruction]
        if dispense:
            res["dispenseRequest"] = dispense
        return res
    code, display = SERVICE_CATEGORIES.get(order["kind"], SERVICE_CATEGORIES["other"])
    res = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "order",
        "category": [{"coding": [{"system": _SNOMED, "code": code, "display": display}]}],
        "code": {"text": _join(order["name"], order.get("specialty", ""))}, **common,
        "note": [{"text": n} for n in notes],
    }
    if order.get("reason"):
        res["reasonCode"] = [{"text": order["reason"]}]
    site = _join(order.get("laterality", ""), order.get("body_site", ""))
    if site:
        res["bodySite"] = [{"text": site}]
    instruction_text = _join(order.get("interval", "") and f"in {order['interval']}",
                             order.get("frequency", ""), order.get("duration", ""))
    if instruction_text:
        res["patientInstruction"] = instruction_text
    if status == "stop":
        res["doNotPerform"] = True
    return res


def build_bundle(*, item_id: str, encounter_id: str, version: int, document: dict[str, Any],
                 signer_id: int, signer_name: str, signed_at: datetime,
                 amended: bool = False,
                 patient: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The validated document Bundle for one signed version, as JSON-ready dict.

    ``patient``: name, dob (YYYY-MM-DD), mrn and clinic_id of the visit's patient
    (:func:`server.review.patients.patient_of` gives it); None: not known."""
    stamp = signed_at.isoformat()
    practitioner_url = _urn("practitioner", signer_id)
    subject: dict[str, str] = {"display": f"Patient seen in encounter {encounter_id}"}
    patient_entries: list[dict[str, Any]] = []
    if patient and (patient.get("mrn") or str(patient.get("name", "")).strip()):
        patient_url = _urn("patient", patient.get("clinic_id", ""), patient.get("mrn", ""),
                           item_id if not patient.get("mrn") else "")
        subject = {"reference": patient_url}
        if str(patient.get("name", "")).strip():
            subject["display"] = str(patient["name"]).strip()
        patient_entries.append({"fullUrl": patient_url, "resource": patient_resource(patient)})
    encounter = {"identifier": {"system": ENCOUNTER_SYSTEM, "value": encounter_id}}
    common = {"subject": subject, "encounter": encounter, "authoredOn": stamp,
              "requester": {"reference": practitioner_url, "display": signer_name}}
    entries: list[dict[str, Any]] = []
    order_refs = []
    for order in document["orders"]:
        if order["decision"] not in ("accepted", "modified"):
            continue
        url = _urn("order", item_id, version, order["id"])
        resource = _order_resource(order, common)
        entries.append({"fullUrl": url, "resource": resource})
        order_refs.append({"reference": url, "display": order["name"]})

    sections = []
    for section in document["sections"]:
        if not section["text"].strip():
            continue
        entry: dict[str, Any] = {"title": section["title"],
                                 "text": _narrative(section["text"])}
        if section["key"] in SECTION_CODES:
            code, display = SECTION_CODES[section["key"]]
            entry["code"] = {"coding": [{"system": _LOINC, "code": code, "display": display}]}
        sections.append(entry)
    if order_refs:
        sections.append({"title": "Orders", "text": _narrative(
            *[r["display"] for r in order_refs]), "entry": order_refs})
    instructions = [i["text"] for i in instructions_of(document, signed=True)
                    if i.get("text", "").strip()]
    if instructions:
        code, display = INSTRUCTIONS_CODE
        sections.append({"title": "Patient instructions", "text": _list_narrative(instructions),
                         "code": {"coding": [{"system": _LOINC, "code": code,
                                              "display": display}]}})
    if not sections:
        raise InvalidInput("the note is empty: nothing to sign")

    composition = {
        "resourceType": "Composition",
        "identifier": {"system": "urn:roomscribe:note", "value": f"{item_id}/v{version}"},
        "status": "amended" if amended else "final",
        "type": {"coding": [{"system": _LOINC, "code": "11506-3", "display": "Progress note"}]},
        "subject": subject, "encounter": encounter, "date": stamp,
        "author": [{"reference": practitioner_url, "display": signer_name}],
        "title": "Visit note", "section": sections,
        "attester": [{"mode": "legal", "time": stamp,
                      "party": {"reference": practitioner_url, "display": signer_name}}],
    }
    practitioner = {"resourceType": "Practitioner", "name": [{"text": signer_name}],
                    "identifier": [{"system": "urn:roomscribe:user", "value": str(signer_id)}]}
    bundle = {
        "resourceType": "Bundle", "type": "document", "timestamp": stamp,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": _urn("bundle", item_id, version)},
        "meta": {"tag": [{"system": "urn:roomscribe:fhir-version", "code": FHIR_VERSION}]},
        "entry": [{"fullUrl": _urn("composition", item_id, version), "resource": composition},
                  {"fullUrl": practitioner_url, "resource": practitioner},
                  *patient_entries, *entries],
    }
    validated = Bundle.model_validate(bundle)  # raises on any structural error
    result: dict[str, Any] = json.loads(validated.model_dump_json())
    return result


def bundle_digest(bundle: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(bundle, sort_keys=True).encode()).hexdigest()


def write_outbox(outbox: Path, name: str, bundle: dict[str, Any]) -> Path:
    """Write atomically (temp file + fsync + rename): the outbox never holds half a file."""
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = outbox / name
    tmp = path.with_suffix(".tmp")
    # 0600 whatever the umask: a bundle is the patient's signed note
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                   encoding="utf-8") as f:
        json.dump(bundle, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path
