"""Note documents: what a :class:`~server.review.models.NoteVersion` stores.

A document is plain JSON built from the NLP stage's ``DraftNote``::

    {"template": "soap", "model_versions": {...},
     "sections": [{"key", "title", "text", "sentences": [{"text", "evidence": [...]}]}],
     "orders":   [{"id": "o1", "kind", "name", "status", "dose", ..., "evidence": [...],
                   "decision": "pending" | "accepted" | "rejected" | "modified"}],
     "instructions": [{"id": "i1", "kind", "text", "verify", "evidence": [...],
                       "order": "o1" | ""}]}

``instructions`` is the patient's after-visit summary (``nlp.instructions``);
documents stored before it existed have no such key and read as an empty list.
An instruction written from an order names it (``order``): while that order is
rejected the line is not part of the signed note or its export.

Edits are pure functions from one document to the next. When a reviewer
rewrites a section, each new sentence keeps the evidence of the draft sentence
it still resembles, so the jump to the transcript survives light editing, and
says who wrote it::

    {"text", "evidence"}                                  as the AI drafted it
    {"text", "evidence", "origin": "edited", "edited_by", "ai_text"}
                                      a human changed it; ``ai_text`` is the AI's sentence
    {"text", "evidence": [], "origin": "added", "edited_by"}   a human wrote it

An edited instruction keeps its evidence; one a reviewer adds has none. An
order a reviewer adds carries ``added_by`` and no evidence; only such an order
can be removed again (an AI-drafted one is rejected instead, so it stays on
record). ``quantity`` and ``refills`` (the amount to dispense, repeats allowed)
came after the first documents were stored: a missing one reads as ``""``.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nlp.schema import (
    DraftNote,
    InstructionKind,
    OrderIntent,
    OrderKind,
    OrderStatus,
    PatientInstruction,
)
from server.review.errors import InvalidInput

__all__ = [
    "INSTRUCTION_FIELDS",
    "ORDER_FIELDS",
    "InstructionChange",
    "OrderChange",
    "added_by_reviewer",
    "apply_edit",
    "document_from_draft",
    "document_text",
    "instructions_of",
    "undecided_orders",
]

DECISIONS = ("pending", "accepted", "rejected", "modified")
#: The fields of an order a reviewer may change (besides its decision).
ORDER_FIELDS = ("kind", "name", "status", "dose", "unit", "route", "frequency", "duration",
                "body_site", "laterality", "specialty", "interval", "spoken", "description",
                "reason", "code_system", "code", "verify", "quantity", "refills")
#: The fields of a patient instruction a reviewer may change.
INSTRUCTION_FIELDS = ("kind", "text", "verify")
INSTRUCTION_TEXT_MAX = 1000
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_SIMILAR = 0.6


@dataclass(frozen=True)
class OrderChange:
    """``id`` of an existing order, or ``None`` to add a new one (then it is accepted);
    ``remove`` takes out an order a reviewer added."""

    id: str | None
    decision: str = "pending"
    fields: dict[str, str] = field(default_factory=dict)
    remove: bool = False


@dataclass(frozen=True)
class InstructionChange:
    """``id`` of an instruction to change (or, with ``remove``, to take out), or ``None``
    to add a new one (then ``kind`` and ``text`` are needed)."""

    id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    remove: bool = False


def document_from_draft(draft: DraftNote) -> dict[str, Any]:
    sections = []
    for s in draft.sections:
        if s.key == "none":
            continue
        sections.append({
            "key": s.key, "title": s.title, "text": s.text,
            "sentences": [{"text": n.text, "evidence": [_evidence(e) for e in n.evidence]}
                          for n in s.sentences],
        })
    orders = [_order(o, f"o{i}") for i, o in enumerate(draft.orders, start=1)]
    order_ids = {f"{o.kind}:{o.name}": d["id"] for o, d in zip(draft.orders, orders, strict=True)}
    instructions = [_instruction(n, f"i{i}", order_ids.get(n.order, ""))
                    for i, n in enumerate(draft.instructions, start=1)]
    return {"template": draft.template, "model_versions": dict(draft.model_versions),
            "sections": sections, "orders": orders, "instructions": instructions}


def instructions_of(doc: dict[str, Any], signed: bool = False) -> list[dict[str, Any]]:
    """The document's patient instructions (none in a document stored before them);
    ``signed``: without those whose order was rejected."""
    items = list(doc.get("instructions") or [])
    if signed:
        rejected = {o["id"] for o in doc["orders"] if o["decision"] == "rejected"}
        items = [i for i in items if i.get("order", "") not in rejected]
    return items


def _evidence(e: Any) -> dict[str, Any]:
    return {"segment_ids": list(e.segment_ids), "start_s": e.start_s, "end_s": e.end_s,
            "quote": e.quote}


def _order(o: OrderIntent, oid: str) -> dict[str, Any]:
    d = {k: getattr(o, k, "") for k in ORDER_FIELDS}
    d.update(id=oid, decision="pending", evidence=[_evidence(e) for e in o.evidence])
    return d


def _instruction(n: PatientInstruction, iid: str, order_id: str) -> dict[str, Any]:
    return {"id": iid, "kind": n.kind, "text": n.text, "verify": n.verify,
            "evidence": [_evidence(e) for e in n.evidence], "order": order_id}


def _split(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _normal(text: str) -> str:
    return " ".join(text.split())


def _realign(old_sentences: list[dict[str, Any]], text: str,
             author: str) -> list[dict[str, Any]]:
    """New sentences: one the same as an old one stays as it was; one like an old one
    keeps its evidence and the AI text it replaced; the rest are ``author``'s own."""
    out = []
    for sentence in _split(text):
        same = next((old for old in old_sentences
                     if _normal(old["text"]) == _normal(sentence)), None)
        if same is not None:
            out.append(copy.deepcopy(same))
            continue
        best, best_ratio = None, _SIMILAR
        for old in old_sentences:
            ratio = difflib.SequenceMatcher(None, old["text"].lower(), sentence.lower()).ratio()
            if ratio >= best_ratio:
                best, best_ratio = old, ratio
        if best is None or best.get("origin") == "added":  # no AI source to keep
            out.append({"text": sentence, "evidence": [], "origin": "added",
                        "edited_by": author})
            continue
        ai_text = best["ai_text"] if best.get("origin") == "edited" else best["text"]
        out.append({"text": sentence, "evidence": copy.deepcopy(best["evidence"]),
                    "origin": "edited", "edited_by": author, "ai_text": ai_text})
    return out


def _check_order_fields(fields: dict[str, str]) -> None:
    unknown = set(fields) - set(ORDER_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown order field(s): {', '.join(sorted(unknown))}")
    if "kind" in fields and fields["kind"] not in {k.value for k in OrderKind}:
        raise InvalidInput(f"order kind must be one of {', '.join(k.value for k in OrderKind)}")
    if "status" in fields and fields["status"] not in {s.value for s in OrderStatus}:
        raise InvalidInput(
            f"order status must be one of {', '.join(s.value for s in OrderStatus)}")
    for k, v in fields.items():
        if not isinstance(v, str) or len(v) > 500:
            raise InvalidInput(f"order field {k} must be text of at most 500 characters")
    for k in ("quantity", "refills"):
        value = fields.get(k, "").strip()
        if value and not _is_count(value, whole=k == "refills"):
            kind = "a whole number" if k == "refills" else "a number"
            raise InvalidInput(f"an order's {k} must be {kind} of 0 or more, not {value!r}")


def _is_count(value: str, whole: bool) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return number >= 0 and number != float("inf") and (not whole or number.is_integer())


def _check_instruction_fields(fields: dict[str, str], new: bool) -> dict[str, str]:
    unknown = set(fields) - set(INSTRUCTION_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown instruction field(s): {', '.join(sorted(unknown))}")
    for k, v in fields.items():
        if not isinstance(v, str):
            raise InvalidInput(f"instruction field {k} must be text")
    kinds = [k.value for k in InstructionKind]
    if "kind" in fields and fields["kind"] not in kinds:
        raise InvalidInput(f"instruction kind must be one of {', '.join(kinds)}")
    clean = {k: " ".join(v.split()) for k, v in fields.items()}
    if new and (not clean.get("text") or not clean.get("kind")):
        raise InvalidInput("a new instruction needs a kind and a text")
    if "text" in clean and not clean["text"]:
        raise InvalidInput("an instruction's text cannot be empty: remove the instruction "
                           "instead")
    if len(clean.get("text", "")) > INSTRUCTION_TEXT_MAX or len(clean.get("verify", "")) > 500:
        raise InvalidInput(f"an instruction is at most {INSTRUCTION_TEXT_MAX:,} characters")
    return clean


def _apply_instructions(new: dict[str, Any], changes: Sequence[InstructionChange]) -> None:
    """Add, change and remove patient instructions in ``new`` (a copy) in the given order."""
    items = instructions_of(new)
    ids = {i["id"] for i in items}  # one removed in this edit is not handed out again
    for change in changes:
        if change.id is None:
            if change.remove:
                raise InvalidInput("only an instruction that exists can be removed")
            fields = _check_instruction_fields(change.fields, new=True)
            taken = [int(i[1:]) for i in ids if re.fullmatch(r"i\d+", i)]
            ids.add(iid := f"i{max(taken, default=0) + 1}")
            items.append({"id": iid, "kind": fields["kind"],
                          "text": fields["text"], "verify": fields.get("verify", ""),
                          "evidence": [], "order": ""})
            continue
        found = next((i for i in items if i["id"] == change.id), None)
        if found is None:
            raise InvalidInput(f"the note has no instruction {change.id!r}")
        if change.remove:
            items.remove(found)
            continue
        found.update(_check_instruction_fields(change.fields, new=False))
    new["instructions"] = items


def added_by_reviewer(order: dict[str, Any]) -> bool:
    """Whether a reviewer added ``order`` (the AI's orders rest on evidence)."""
    return bool(order.get("added_by")) or not order.get("evidence")


def _apply_orders(new: dict[str, Any], changes: Sequence[OrderChange], author: str) -> None:
    """Decide, change, add and remove orders in ``new`` (a copy) in the given order."""
    by_id = {o["id"]: o for o in new["orders"]}
    ids = set(by_id)  # one removed in this edit is not handed out again
    for change in changes:
        if change.decision not in DECISIONS:
            raise InvalidInput(f"order decision must be one of {', '.join(DECISIONS)}")
        if change.remove:
            if change.id is None or change.id not in by_id:
                raise InvalidInput("only an order that exists can be removed")
            if not added_by_reviewer(by_id[change.id]):
                raise InvalidInput(f"{change.id} cannot be removed; reject it instead: an "
                                   "AI-drafted order stays on record")
            new["orders"].remove(by_id.pop(change.id))
            continue
        _check_order_fields(change.fields)
        if change.id is None:
            if not change.fields.get("name", "").strip() or not change.fields.get("kind"):
                raise InvalidInput("a new order needs a kind and a name")
            taken = [int(i[1:]) for i in ids if re.fullmatch(r"o\d+", i)]
            ids.add(oid := f"o{max(taken, default=0) + 1}")
            order: dict[str, Any] = {k: "" for k in ORDER_FIELDS} | {"status": "new"}
            order.update(change.fields)
            order.update(id=oid, evidence=[], added_by=author,
                         decision="rejected" if change.decision == "rejected" else "accepted")
            new["orders"].append(order)
            by_id[oid] = order
            continue
        if change.id not in by_id:
            raise InvalidInput(f"the note has no order {change.id!r}")
        order = by_id[change.id]
        changed = {k: v for k, v in change.fields.items() if order.get(k, "") != v}
        order.update(changed)
        decision = change.decision
        if changed and decision in ("pending", "accepted"):
            decision = "modified"
        order["decision"] = decision


def apply_edit(doc: dict[str, Any], sections: dict[str, str], orders: Sequence[OrderChange],
               instructions: Sequence[InstructionChange] = (), *,
               author: str = "") -> dict[str, Any]:
    """The document after ``author``'s edit; ``doc`` itself is not changed."""
    new = copy.deepcopy(doc)
    by_key = {s["key"]: s for s in new["sections"]}
    for key, text in sections.items():
        if key not in by_key:
            raise InvalidInput(f"the note has no section {key!r}")
        if len(text) > 50_000:
            raise InvalidInput(f"section {key} is too long (50,000 characters at most)")
        section = by_key[key]
        if text.strip() != section["text"].strip():
            section["sentences"] = _realign(section["sentences"], text, author)
            section["text"] = text.strip()
    _apply_orders(new, orders, author)
    if instructions:
        _apply_instructions(new, instructions)
    return new


def undecided_orders(doc: dict[str, Any]) -> list[str]:
    return [o["id"] for o in doc["orders"] if o["decision"] == "pending"]


def _order_line(o: dict[str, Any]) -> str:
    parts = [o.get("status", ""), o["kind"], o["name"], o.get("dose", ""), o.get("unit", ""),
             o.get("route", ""), o.get("frequency", ""), o.get("duration", ""),
             o.get("specialty", ""), o.get("interval", ""),
             f"for {o['reason']}" if o.get("reason") else ""]
    return "- " + " ".join(p for p in parts if p)


def document_text(doc: dict[str, Any], decided_only: bool = False) -> str:
    """The note as text: headings, section text, the orders (accepted ones when signed),
    then the patient instructions."""
    parts = [f"{s['title']}\n{s['text']}" for s in doc["sections"] if s["text"].strip()]
    orders = [o for o in doc["orders"]
              if not decided_only or o["decision"] in ("accepted", "modified")]
    if orders:
        parts.append("ORDERS\n" + "\n".join(_order_line(o) for o in orders))
    instructions = instructions_of(doc, signed=decided_only)
    if instructions:
        parts.append("PATIENT INSTRUCTIONS\n" + "\n".join(f"- {i['text']}"
                                                          for i in instructions))
    return "\n\n".join(parts)
