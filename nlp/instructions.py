"""The after-visit summary: what the patient should do, in plain words, with evidence.

Pure functions.
Built from what the draft already holds:

* **Orders** (``OrderIntent``, already decided by the order model: a declined or
  conditional order is not in the list, so it never becomes an instruction).
  Each becomes one line in the second person from a fixed template
  (``order_instruction``): "Start lisinopril 10 mg once a day.", "Stop taking
  ibuprofen.", "Keep taking metformin 500 mg twice a day.", "Get a blood test:
  hemoglobin A1c.", "Get an x-ray of your left knee.", "See cardiology
  (referral).", "Come back in 2 weeks.". A medication is named as it was said
  (``spoken``: "zestril", never the generic the vocabulary linked it to), and an
  order with ``verify`` set keeps that caution. It carries the order's evidence
  and names its order (``order_key``), so rejecting the order drops the line.
* **Red flags** the clinician spoke ("if you notice any chest pain, call us
  right away"), rewritten as "Call us right away if you notice any chest pain."
  by moving the condition after the action: only spoken words (``nlp.safetynet``).
* **Self-care advice** in the plan ("I want you to ice your knee twice a day"),
  kept as the clinician's clause (``nlp.safetynet``).

The faithfulness rule (``unsupported``, the one-way check of ``nlp.faithful``):
every number, unit, drug name, laterality word, negation and duration in an
instruction must appear in its evidence's words (spoken numbers count as
digits: "ten" = "10"; "a week" = "1 week"). A template line that breaks it
gives way to, in turn: for a follow-up, the interval as said ("Come back in a
couple weeks."); the clinician's cleaned sentence (``notestyle.clean`` /
``finish``) when it has at most ``MAX_WORDS`` words; the clinician's own words
for the order (``description``) after the template's verb; the name as said. A
red flag that cannot be rewritten safely stays the cleaned sentence, and is
left out when that is longer than ``MAX_WORDS``. Identical lines are kept
once; the list runs medication, test, referral, other, follow-up, warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlp.dialogue import TranscriptSentence
from nlp.faithful import facts, unsaid
from nlp.notestyle import clean, finish
from nlp.orders import sentence_evidence
from nlp.plainlanguage import instruction_kind, order_line
from nlp.safetynet import red_flag, self_care, spoken_line
from nlp.schema import (
    Evidence,
    InstructionKind,
    OrderIntent,
    OrderKind,
    OrderStatus,
    PatientInstruction,
    SectionKey,
    Speaker,
)

__all__ = ["MAX_WORDS", "order_instruction", "order_key", "patient_instructions",
           "unsupported"]

#: a spoken sentence longer than this is no instruction a patient can read at a glance
MAX_WORDS = 40
K = InstructionKind
_KIND_ORDER = [K.MEDICATION, K.TEST, K.REFERRAL, K.OTHER, K.FOLLOW_UP, K.WARNING]

def unsupported(text: str, evidence: Sequence[Evidence]) -> list[str]:
    """The numbers, units, durations, laterality words, negations and drug names of
    ``text`` that its evidence does not say (``nlp.faithful.unsaid``; empty: faithful)."""
    return unsaid(text, [e.quote for e in evidence])


# ---- orders → lines ------------------------------------------------------------------

def _said(order: OrderIntent) -> str:
    """The sentence the order was said in (cleaned), for a line that cannot keep a template."""
    name = (order.spoken or order.name).lower()
    quotes = [e.quote for e in order.evidence if e.quote]
    said = next((q for q in quotes if name and name in q.lower()),
                quotes[-1] if quotes else "")
    return spoken_line(clean(said)) if said else ""


_WHEN = re.compile(
    r"\b(?:in|after|within)(?:\s+(?:about|around|another|like|maybe|the|next|a|an|couple|few|"
    r"several|of|to|or|\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve))+"
    r"\s+(?:day|week|month|year)s?(?: time)?\b")


_MEDICATION_LEADS: dict[str, str] = {OrderStatus.STOP: "Stop", OrderStatus.CONTINUE: "Keep taking",
                                     OrderStatus.CHANGE: "Change"}
_LEADS: dict[str, str] = {OrderKind.FOLLOW_UP: "Follow up", OrderKind.REFERRAL: "Referral"}


def order_key(order: OrderIntent) -> str:
    """How an instruction names the order it came from: ``kind:name``."""
    return f"{order.kind}:{order.name}"


def order_instruction(order: OrderIntent) -> PatientInstruction:
    """One order as a patient instruction, faithful to the order's evidence."""
    lead = (_MEDICATION_LEADS.get(order.status, "Start") if order.kind == OrderKind.MEDICATION
            else _LEADS.get(order.kind, "Get"))
    said = _said(order)
    when = _WHEN.search(order.spoken)  # "in a couple weeks"
    lines = [finish(order_line(order)),
             finish(f"Come back {when.group(0)}") if order.kind == OrderKind.FOLLOW_UP
             and when else "",
             said if len(said.split()) <= MAX_WORDS else "",
             # the clinician's words for the order, after the template's verb
             finish(f"{lead}: {order.description}") if order.description else "",
             finish(f"{lead}: {order.spoken or order.name}")]
    text = next((t for t in lines if t and not unsupported(t, order.evidence)),
                said or lines[-1])  # the spoken sentence, however long, before a wrong line
    return PatientInstruction(kind=instruction_kind(order), text=text, verify=order.verify,
                              evidence=order.evidence, order=order_key(order))


# ---- the summary ---------------------------------------------------------------------

def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def patient_instructions(sentences: Sequence[TranscriptSentence], labels: Sequence[str],
                         speakers: Sequence[str], orders: Sequence[OrderIntent]
                         ) -> tuple[PatientInstruction, ...]:
    """The after-visit summary of one visit. ``labels`` and ``speakers`` hold one value
    per sentence (as ``nlp.assemble.assemble`` takes them)."""
    found = [order_instruction(o) for o in orders]
    order_sources = {(e.segment_ids, e.quote) for o in orders for e in o.evidence}
    for i, s in enumerate(sentences):
        if speakers[i] != Speaker.DOCTOR:
            continue
        text = clean(s.text)
        evidence = (sentence_evidence([s]),)
        flag = red_flag(text)
        if flag is not None:
            line = flag if not unsupported(flag, evidence) else spoken_line(text)
            if len(line.split()) <= MAX_WORDS:
                found.append(PatientInstruction(K.WARNING, line, evidence=evidence))
            continue
        if labels[i] != SectionKey.PLAN or ((s.segment.id,), s.text) in order_sources:
            continue
        advice = self_care(text)
        if advice is not None and not unsupported(advice, evidence) and not facts(advice).drugs:
            found.append(PatientInstruction(K.OTHER, advice, evidence=evidence))
    seen: set[str] = set()
    unique = []
    for instruction in sorted(found, key=lambda x: _KIND_ORDER.index(K(x.kind))):
        key = _key(instruction.text)
        if key and key not in seen:
            seen.add(key)
            unique.append(instruction)
    return tuple(unique)
