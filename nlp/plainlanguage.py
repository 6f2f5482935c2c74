"""Orders in plain words for the patient: one fixed template per kind and status.

Pure, standard library only. ``order_line`` writes the line an order makes in
the after-visit summary ("Start lisinopril 10 mg once a day.", "Get an x-ray of
your left knee.", "See cardiology (referral).", "Come back in 2 weeks."); it
names a medication as said (``spoken``), spells out a few abbreviations
("complete blood count (CBC)"), and states a laterality only where one sentence
of the order's evidence says it with the site. ``nlp.instructions`` checks the
line against the evidence and falls back to spoken words when it breaks the
faithfulness rule.
"""

from __future__ import annotations

import re

from nlp.schema import InstructionKind, OrderIntent, OrderKind, OrderStatus

__all__ = ["instruction_kind", "order_line"]

K = InstructionKind
_DISPLAY = {
    "cbc": "complete blood count (CBC)", "bmp": "basic metabolic panel (BMP)",
    "cmp": "comprehensive metabolic panel (CMP)", "hemoglobin a1c": "hemoglobin A1c",
    "tsh": "thyroid test (TSH)", "psa": "PSA", "inr": "INR", "esr": "ESR", "crp": "CRP",
    "bnp": "BNP", "ana": "ANA", "hiv test": "HIV test", "covid test": "COVID test",
    "ekg": "EKG", "emg": "EMG", "mri": "MRI", "mra": "MRA", "ct": "CT scan",
    "dexa scan": "DEXA scan", "pet scan": "PET scan", "ent": "ENT", "cpap": "CPAP",
    "vitamin b12 level": "vitamin B12 level", "d-dimer": "D-dimer",
}
_NOT_BLOOD = {"urinalysis", "urine culture", "urine microalbumin", "stool studies",
              "sputum culture", "strep test", "covid test", "allergy testing", "culture",
              "pregnancy test"}
_DIAGNOSTIC = {"ekg", "stress test", "holter monitor", "event monitor", "heart monitor",
               "sleep study", "pulmonary function tests", "emg", "nerve conduction study",
               "colonoscopy", "endoscopy", "biopsy", "pap smear", "bronchoscopy",
               "cystoscopy", "visual field test", "transesophageal echocardiogram",
               "arthroscopy", "lumbar puncture"}
_PLANNED = ("surgery", "replacement", "repair", "ablation", "catheterization", "therapy",
            "stent", "cardioversion", "lithotripsy", "excision", "debridement")
_GO_TO = {"physical therapy", "occupational therapy", "speech therapy", "wound care",
          "cardiac rehabilitation", "diabetes education", "chiropractic", "behavioral health",
          "pain management", "sleep medicine"}
_MODALITIES = ("x-ray", "mri", "mra", "ct", "ultrasound")
_VOWEL_LETTERS = "AEFHILMNORSX"  # abbreviations said with a vowel first: "an MRI", "an EKG"


def _display(name: str) -> str:
    return _DISPLAY.get(name, name)


def _article(phrase: str) -> str:
    first = phrase.split()[0] if phrase.split() else ""
    if first[:1].isupper() and first.isupper() and first[:1] in _VOWEL_LETTERS:
        return f"an {phrase}"
    if first.startswith(("x-", "hour", "honest")) or (
            first[:1].lower() in "aeiou"
            and not first.startswith(("uni", "eu", "one", "us", "ur", "uti"))):
        return f"an {phrase}"
    return f"a {phrase}"


def _plural(site: str) -> str:
    return {"foot": "feet"}.get(site, site if site.endswith("s") else f"{site}s")


def _dose(order: OrderIntent) -> str:
    """What to take: "lisinopril 10 mg once a day for 5 days", from the order's fields
    when a dose was parsed, else the clinician's words for it."""
    drug = order.spoken or order.name
    if order.dose:
        unit = order.unit
        if order.dose == "1" and unit.endswith("s") and unit != "units":
            unit = unit[:-1]
        parts = [drug, order.dose + ("%" if unit == "%" else ""), "" if unit == "%" else unit,
                 order.frequency, f"for {order.duration}" if order.duration else ""]
        return " ".join(p for p in parts if p)
    said = re.sub(r"^(?:stop|discontinue|hold off(?: on)?|hold|come off|get off) ", "",
                  order.description)
    said = re.sub(r"\b(\d{1,3}) (\d{3})\b", r"\1,\2", said)  # "1 000" → "1,000"
    if said and drug and drug in said and not said.startswith(drug) and not re.match(
            r"\d|(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty)\b", said):
        said = said[said.index(drug):]  # "milligrams of metformin": the number was lost
    if said and drug and drug in said and len(said.split()) > len(drug.split()):
        return said
    parts = [drug, order.frequency, f"for {order.duration}" if order.duration else ""]
    return " ".join(p for p in parts if p)


def _medication(order: OrderIntent) -> str:
    if order.status == OrderStatus.STOP:
        return f"Stop taking {order.spoken or order.name}."
    if order.status == OrderStatus.CONTINUE:
        return f"Keep taking {_dose(order)}."
    if order.status == OrderStatus.CHANGE:
        return f"Change your dose: {_dose(order)}."
    return f"Start {_dose(order)}."


def _side(order: OrderIntent, site: str) -> str:
    """The order's laterality when one sentence of its evidence says it with the site."""
    words = {"bilateral": ("both", "bilateral")}.get(order.laterality, (order.laterality,))
    for e in order.evidence:
        said = re.findall(r"[a-z]+", e.quote.lower())
        if any(w in said for w in words if w) and (not site or site.split()[-1] in said
                                                   or _plural(site) in said):
            return order.laterality
    return ""


def _imaging(order: OrderIntent) -> str:
    name = order.name
    modality = next((m for m in _MODALITIES if name == m or name.endswith(f" {m}")), "")
    if not modality:
        return f"Get {_article(_display(name))}."
    site = order.body_site or name.removesuffix(modality).strip()
    thing = _article(_display(modality))
    side = _side(order, site) if order.laterality else ""
    if side == "bilateral" and site:
        return f"Get {thing} of both {_plural(site)}."
    side = side if side in ("left", "right") else ""
    if site:
        return f"Get {thing} of your {' '.join(p for p in (side, site) if p)}."
    return f"Get {thing}" + (f" ({side} side)." if side else ".")


def _test(order: OrderIntent) -> str:
    name = _display(order.name)
    if order.kind == OrderKind.IMAGING:
        return _imaging(order)
    if order.kind == OrderKind.PROCEDURE:
        if order.name.endswith(_PLANNED):
            return f"Planned: {name}."
        if order.name.endswith("s"):
            return f"Get {name}."
        return f"Get {_article(name)}."
    if order.name == "imaging":
        return "Get imaging done."
    if order.name == "blood work":
        return "Get blood work done."
    if "urine" in order.name or order.name == "urinalysis":
        return f"Get a urine test: {name}."
    if order.name.endswith("test"):
        return f"Get {_article(name)}."
    if order.name.endswith("testing"):
        return f"Get {name}."
    if order.name in _NOT_BLOOD:
        return f"Get this test: {name}."
    return f"Get a blood test: {name}."


def instruction_kind(order: OrderIntent) -> str:
    """What kind of instruction an order makes (an ``InstructionKind`` value)."""
    if order.kind == OrderKind.MEDICATION:
        return K.MEDICATION
    if order.kind in (OrderKind.LAB, OrderKind.IMAGING):
        return K.TEST
    if order.kind == OrderKind.PROCEDURE:
        return K.TEST if order.name in _DIAGNOSTIC else K.OTHER
    if order.kind == OrderKind.REFERRAL:
        return K.REFERRAL
    if order.kind == OrderKind.FOLLOW_UP:
        return K.FOLLOW_UP
    return K.OTHER


def order_line(order: OrderIntent) -> str:
    """The plain line for one order (before any faithfulness check)."""
    kind = instruction_kind(order)
    name = _display(order.specialty or order.name)
    if order.kind == OrderKind.MEDICATION:
        return _medication(order)
    if order.status == OrderStatus.STOP:
        return f"Stop: {name}."
    if order.kind == OrderKind.FOLLOW_UP:
        return f"Come back in {order.interval}." if order.interval else \
            "Come back for a follow-up visit."
    if kind == K.REFERRAL:
        if order.name == "specialist":
            return "See a specialist (referral)."
        verb = "Go to" if order.name in _GO_TO else "See"
        return f"{verb} {name} (referral)."
    if order.kind == OrderKind.OTHER:  # devices: "use a brace", "use crutches"
        return f"Use {name}." if name.endswith("s") else f"Use {_article(name)}."
    return _test(order)
