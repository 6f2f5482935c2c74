"""What the physician sees before signing: the sign checks and the changes since the AI draft.

:func:`sign_checks` reads a note document and lists what stands in the way of a
safe signature, each a :class:`SignCheck` with a stable id the browser sends
back when the physician acknowledges it::

    id                           severity  acknowledgeable  when
    no-patient                   blocker   yes              no patient is linked to the visit
    empty-section:<key>          blocker   yes              a required section (assessment,
                                                            plan) is empty
    pending-orders               blocker   no               an order is neither accepted
                                                            nor rejected
    order-fields:<order id>      blocker   yes              a medication without dose or
                                                            frequency
                                           no               an order without a name
    controlled:<order id>        warning   yes              a controlled substance (DEA
                                                            schedule, :mod:`.controlled`)
    controlled-fields:<order id> blocker   yes              … without dose, unit, route,
                                                            frequency or quantity
    verify:<order id>            warning   yes              the recogniser was unsure of a
                                                            word of the order
    verify-instruction:<id>      warning   yes              … of a patient instruction

Rejected orders (and the instructions written from them) are never checked; a
stopped medication ("stop" status) needs no dose. :func:`blocking` says which
blockers are still open once some are acknowledged; :func:`attestation` words
the statement the signature records.

:func:`sign_review` puts the checks together with the note as the AI drafted
it and as it stands now: each section's word diff, each order's and each
patient instruction's change. Pure functions over document JSON: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.review.controlled import controlled_schedule, schedule_name
from server.review.diffing import DiffRun, word_runs
from server.review.document import ORDER_FIELDS, instructions_of

__all__ = [
    "BLOCKER",
    "REQUIRED_SECTIONS",
    "WARNING",
    "InstructionReview",
    "OrderReview",
    "SectionReview",
    "SignCheck",
    "SignReview",
    "acknowledged_checks",
    "attestation",
    "blocking",
    "sign_checks",
    "sign_review",
]

BLOCKER = "blocker"
WARNING = "warning"
REQUIRED_SECTIONS = ("assessment", "plan")
#: Orders that need a name to mean anything (a follow-up or "other" may go without).
_NAMED_KINDS = ("medication", "lab", "imaging", "referral", "procedure")
_MEDICATION_NEEDS = ("dose", "frequency")
_CONTROLLED_NEEDS = ("dose", "unit", "route", "frequency", "quantity")
#: Order fields a review shows as changed (``verify`` is the recogniser's note, not the order).
_REVIEWED_FIELDS = tuple(f for f in ORDER_FIELDS if f != "verify")


@dataclass(frozen=True, slots=True)
class SignCheck:
    """One thing to fix or acknowledge before signing.

    ``ref`` is the section key or order / instruction id it is about (``""`` for
    the whole note); ``message`` is written for the physician."""

    id: str
    severity: str  # blocker | warning
    message: str
    ref: str = ""
    acknowledgeable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "message": self.message,
                "ref": self.ref, "acknowledgeable": self.acknowledgeable}


def _label(text: str) -> str:
    """``"HISTORY OF PRESENT ILLNESS"`` → ``"History of present illness"``."""
    text = " ".join(text.replace("_", " ").split())
    return text[:1].upper() + text[1:].lower()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _and_list(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _order_name(order: dict[str, Any]) -> str:
    return str(order.get("name", "")).strip()


def _order_checks(order: dict[str, Any]) -> list[SignCheck]:
    oid, kind, name = order["id"], order.get("kind", ""), _order_name(order)
    if order.get("kind") == "referral" and not name:
        name = str(order.get("specialty", "")).strip()
    checks: list[SignCheck] = []
    if kind in _NAMED_KINDS and not name:
        checks.append(SignCheck(
            f"order-fields:{oid}", BLOCKER,
            f"A {kind} order ({oid}) has no name: name it or reject it", oid,
            acknowledgeable=False))
        return checks
    stopped = order.get("status") == "stop"
    schedule = (controlled_schedule(name, str(order.get("spoken", "")))
                if kind == "medication" else None)
    if schedule is not None:
        what = f"{_capital(name)} is a {schedule_name(schedule)} controlled substance"
        if schedule == "CI":
            what += ": it cannot be prescribed"
        checks.append(SignCheck(f"controlled:{oid}", WARNING, what, oid))
        missing = [f for f in _CONTROLLED_NEEDS if not str(order.get(f, "")).strip()]
        if missing and not stopped:
            checks.append(SignCheck(
                f"controlled-fields:{oid}", BLOCKER,
                f"{_capital(name)} is a controlled substance: the order is missing its "
                f"{_and_list(missing)}", oid))
    elif kind == "medication" and not stopped:
        missing = [f for f in _MEDICATION_NEEDS if not str(order.get(f, "")).strip()]
        if missing:
            checks.append(SignCheck(
                f"order-fields:{oid}", BLOCKER,
                f"The {name} order is missing its {_and_list(missing)}", oid))
    if str(order.get("verify", "")).strip():
        checks.append(SignCheck(
            f"verify:{oid}", WARNING,
            f"Check the {name or kind} order against the audio: {order['verify']}", oid))
    return checks


def sign_checks(document: dict[str, Any], *, patient_linked: bool,
                required_sections: Sequence[str] = REQUIRED_SECTIONS) -> list[SignCheck]:
    """Everything about ``document`` a physician should fix or acknowledge before signing.

    A required section the note's template does not have is not asked for."""
    checks: list[SignCheck] = []
    if not patient_linked:
        checks.append(SignCheck("no-patient", BLOCKER, "No patient is linked to this visit"))
    sections = {s["key"]: s for s in document["sections"]}
    for key in required_sections:
        section = sections.get(key)
        if section is not None and not section["text"].strip():
            checks.append(SignCheck(f"empty-section:{key}", BLOCKER,
                                    f"{_label(section['title'] or key)} is empty", key))
    orders = [o for o in document["orders"] if o["decision"] != "rejected"]
    pending = [o for o in orders if o["decision"] == "pending"]
    if pending:
        names = ", ".join(_order_name(o) or o["id"] for o in pending)
        plural = "s are" if len(pending) > 1 else " is"
        checks.append(SignCheck(
            "pending-orders", BLOCKER,
            f"{len(pending)} order{plural} not decided yet ({names}): accept or reject each",
            ",".join(o["id"] for o in pending), acknowledgeable=False))
    for order in orders:
        checks.extend(_order_checks(order))
    for instruction in instructions_of(document, signed=True):
        if str(instruction.get("verify", "")).strip():
            text = instruction["text"]
            short = text if len(text) <= 60 else text[:57].rstrip() + "…"
            checks.append(SignCheck(
                f"verify-instruction:{instruction['id']}", WARNING,
                f'Check the patient instruction "{short}" against the audio: '
                f"{instruction['verify']}", instruction["id"]))
    return checks


def blocking(checks: Iterable[SignCheck], acknowledged: Iterable[str]) -> list[SignCheck]:
    """The blockers still open: not acknowledgeable, or not acknowledged."""
    ack = set(acknowledged)
    return [c for c in checks
            if c.severity == BLOCKER and not (c.acknowledgeable and c.id in ack)]


def acknowledged_checks(checks: Iterable[SignCheck], acknowledged: Iterable[str],
                        ) -> list[SignCheck]:
    """The checks the physician acknowledged (ids of checks no longer raised are ignored)."""
    ack = set(acknowledged)
    return [c for c in checks if c.acknowledgeable and c.id in ack]


def attestation(signer: str, editors: Sequence[str], acknowledged: Sequence[SignCheck]) -> str:
    """The statement a signature records."""
    acks = "; ".join(c.message for c in acknowledged) or "none"
    return (f"I, {signer}, reviewed this note, including the changes made by "
            f"{', '.join(editors) or 'no one'}, and attest that it is accurate. "
            f"Acknowledged: {acks}.")


# --- the note as drafted and as it stands -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SectionReview:
    key: str
    title: str
    ai_text: str
    text: str
    changed: bool
    diff: list[DiffRun]


@dataclass(frozen=True, slots=True)
class OrderReview:
    """``change``: added | removed | rejected | modified | accepted | pending.
    ``fields``: each changed field → (as drafted, as it stands)."""

    id: str
    name: str
    kind: str
    change: str
    fields: dict[str, tuple[str, str]]
    added_by: str = ""


@dataclass(frozen=True, slots=True)
class InstructionReview:
    """``change``: added | removed | rejected (its order was) | modified | unchanged."""

    id: str
    change: str
    ai_text: str
    text: str


@dataclass(frozen=True, slots=True)
class SignReview:
    checks: list[SignCheck]
    sections: list[SectionReview]
    orders: list[OrderReview]
    instructions: list[InstructionReview]
    editors: list[str]
    attestation_preview: str
    blocking: list[str] = field(default_factory=list)  # ids of the blockers still open


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _section_reviews(draft: dict[str, Any], current: dict[str, Any]) -> list[SectionReview]:
    before = {s["key"]: s["text"] for s in draft["sections"]}
    out = []
    for s in current["sections"]:
        ai_text = before.get(s["key"], "")
        out.append(SectionReview(s["key"], s["title"], ai_text, s["text"],
                                 not _same(ai_text, s["text"]), word_runs(ai_text, s["text"])))
    return out


def _order_reviews(draft: dict[str, Any], current: dict[str, Any]) -> list[OrderReview]:
    drafted = {o["id"]: o for o in draft["orders"]}
    out = []
    for o in current["orders"]:
        before = drafted.get(o["id"])
        if before is None or o.get("added_by"):
            fields = {k: ("", str(o.get(k, ""))) for k in _REVIEWED_FIELDS if o.get(k)}
            out.append(OrderReview(o["id"], o.get("name", ""), o.get("kind", ""), "added",
                                   fields, str(o.get("added_by", ""))))
            continue
        fields = {k: (str(before.get(k, "")), str(o.get(k, ""))) for k in _REVIEWED_FIELDS
                  if str(before.get(k, "")) != str(o.get(k, ""))}
        decision = o["decision"]
        change = (decision if decision in ("rejected", "pending")
                  else "modified" if fields else "accepted")
        out.append(OrderReview(o["id"], o.get("name", ""), o.get("kind", ""), change, fields))
    kept = {o["id"] for o in current["orders"]}
    out.extend(OrderReview(o["id"], o.get("name", ""), o.get("kind", ""), "removed", {})
               for o in draft["orders"] if o["id"] not in kept)
    return out


def _instruction_reviews(draft: dict[str, Any], current: dict[str, Any],
                         ) -> list[InstructionReview]:
    drafted = {i["id"]: i for i in instructions_of(draft)}
    rejected = {o["id"] for o in current["orders"] if o["decision"] == "rejected"}
    out, kept = [], set()
    for i in instructions_of(current):
        before = drafted.get(i["id"])
        # an id freed by a removal and handed out again is a new instruction, not an edit
        if before is None or before.get("evidence", []) != i.get("evidence", []):
            out.append(InstructionReview(i["id"], "added", "", i["text"]))
            continue
        kept.add(i["id"])
        change = ("rejected" if i.get("order", "") in rejected
                  else "unchanged" if _same(before["text"], i["text"]) else "modified")
        out.append(InstructionReview(i["id"], change, before["text"], i["text"]))
    out.extend(InstructionReview(i["id"], "removed", i["text"], "")
               for i in drafted.values() if i["id"] not in kept)
    return out


def sign_review(draft: dict[str, Any], current: dict[str, Any], *, patient_linked: bool,
                editors: Sequence[str], signer: str,
                acknowledged: Sequence[str] | None = None,
                required_sections: Sequence[str] = REQUIRED_SECTIONS) -> SignReview:
    """``draft`` (version 1, the AI's) against ``current``, with the sign checks.

    The attestation preview acknowledges ``acknowledged``; ``None``: every
    acknowledgeable blocker (what a signature needs at the least)."""
    checks = sign_checks(current, patient_linked=patient_linked,
                         required_sections=required_sections)
    if acknowledged is None:
        acknowledged = [c.id for c in checks if c.severity == BLOCKER and c.acknowledgeable]
    statement = attestation(signer, editors, acknowledged_checks(checks, acknowledged))
    return SignReview(checks, _section_reviews(draft, current), _order_reviews(draft, current),
                      _instruction_reviews(draft, current), list(editors), statement,
                      [c.id for c in blocking(checks, acknowledged)])
