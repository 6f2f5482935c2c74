"""Note documents: what a :class:`~server.review.models.NoteVersion` stores.

A document is plain JSON built from the NLP stage's ``DraftNote``::

    {"template": "soap", "model_versions": {...},
     "sections": [{"key", "title", "text", "sentences": [{"text", "evidence": [...]}]}],
     "orders":   [{"id": "o1", "kind", "name", "status", "dose", ..., "evidence": [...],
                   "decision": "pending" | "accepted" | "rejected" | "modified"}]}

Edits are pure functions from one document to the next. When a reviewer
rewrites a section, each new sentence keeps the evidence of the draft sentence
it still resembles, so the jump to the transcript survives light editing.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from nlp.schema import DraftNote, OrderIntent, OrderKind, OrderStatus
from server.review.errors import InvalidInput

__all__ = [
    "ORDER_FIELDS",
    "OrderChange",
    "apply_edit",
    "document_from_draft",
    "document_text",
    "undecided_orders",
]

DECISIONS = ("pending", "accepted", "rejected", "modified")
#: The fields of an order a reviewer may change (besides its decision).
ORDER_FIELDS = ("kind", "name", "status", "dose", "unit", "route", "frequency", "duration",
                "body_site", "laterality", "specialty", "interval", "spoken", "description",
                "reason", "code_system", "code", "verify")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_SIMILAR = 0.6


@dataclass(frozen=True)
class OrderChange:
    """``id`` of an existing order, or ``None`` to add a new one (then it is accepted)."""

    id: str | None
    decision: str = "pending"
    fields: dict[str, str] = field(default_factory=dict)


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
    return {"template": draft.template, "model_versions": dict(draft.model_versions),
            "sections": sections, "orders": orders}


def _evidence(e: Any) -> dict[str, Any]:
    return {"segment_ids": list(e.segment_ids), "start_s": e.start_s, "end_s": e.end_s,
            "quote": e.quote}


def _order(o: OrderIntent, oid: str) -> dict[str, Any]:
    d = {k: getattr(o, k) for k in ORDER_FIELDS}
    d.update(id=oid, decision="pending", evidence=[_evidence(e) for e in o.evidence])
    return d


def _split(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _realign(old_sentences: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """New sentences, each with the evidence of the most similar old sentence (if any)."""
    out = []
    for sentence in _split(text):
        best, best_ratio = None, _SIMILAR
        for old in old_sentences:
            ratio = difflib.SequenceMatcher(None, old["text"].lower(), sentence.lower()).ratio()
            if ratio >= best_ratio:
                best, best_ratio = old, ratio
        out.append({"text": sentence, "evidence": copy.deepcopy(best["evidence"]) if best else []})
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


def apply_edit(doc: dict[str, Any], sections: dict[str, str],
               orders: list[OrderChange]) -> dict[str, Any]:
    """The document after a reviewer's edit; ``doc`` itself is not changed."""
    new = copy.deepcopy(doc)
    by_key = {s["key"]: s for s in new["sections"]}
    for key, text in sections.items():
        if key not in by_key:
            raise InvalidInput(f"the note has no section {key!r}")
        if len(text) > 50_000:
            raise InvalidInput(f"section {key} is too long (50,000 characters at most)")
        section = by_key[key]
        if text.strip() != section["text"].strip():
            section["sentences"] = _realign(section["sentences"], text)
            section["text"] = text.strip()
    by_id = {o["id"]: o for o in new["orders"]}
    for change in orders:
        if change.decision not in DECISIONS:
            raise InvalidInput(f"order decision must be one of {', '.join(DECISIONS)}")
        _check_order_fields(change.fields)
        if change.id is None:
            if not change.fields.get("name", "").strip() or not change.fields.get("kind"):
                raise InvalidInput("a new order needs a kind and a name")
            order: dict[str, Any] = {k: "" for k in ORDER_FIELDS} | {"status": "new"}
            order.update(change.fields)
            order.update(id=f"o{len(new['orders']) + 1}", evidence=[],
                         decision="rejected" if change.decision == "rejected" else "accepted")
            new["orders"].append(order)
            continue
        if change.id not in by_id:
            raise InvalidInput(f"the note has no order {change.id!r}")
        order = by_id[change.id]
        changed = {k: v for k, v in change.fields.items() if order.get(k) != v}
        order.update(changed)
        decision = change.decision
        if changed and decision in ("pending", "accepted"):
            decision = "modified"
        order["decision"] = decision
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
    """The note as text: headings, section text, then the orders (accepted ones when signed)."""
    parts = [f"{s['title']}\n{s['text']}" for s in doc["sections"] if s["text"].strip()]
    orders = [o for o in doc["orders"]
              if not decided_only or o["decision"] in ("accepted", "modified")]
    if orders:
        parts.append("ORDERS\n" + "\n".join(_order_line(o) for o in orders))
    return "\n\n".join(parts)
