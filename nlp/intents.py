"""The order-intent model: is a name the clinician said an order, and what kind.

The lexicon in ``nlp.orders`` finds the candidates: every medication, lab,
imaging study, procedure, specialty, device and follow-up interval named in a
clinician's sentence. A MiniLM classifier fine-tuned here (``orders`` in
``nlp.build``) reads each candidate in its sentence, the name in brackets and
the sentence before it as context, together with what the cue rules of
``nlp.orders`` make of it (a feature: the model learns from the notes where
the rules go wrong), and answers one of ``INTENTS``: ``none``
(not an order: declined, conditional, reported, a result, a question) or the
order's status ``new`` / ``continue`` / ``change`` / ``stop``. The rules then
read the details (dose, frequency, site, interval) from the words around it.

Training examples (``order_examples``):

* SIMORD train (MEDIQA-OE 2025, 53 visits with gold orders annotated by others):
  each candidate in a clinician's turn labelled by the gold orders
  (``simord_examples``). SIMORD dev's visits are kept out of every source below:
  ``scripts/eval_orders.py`` reports on them.
* ACI-BENCH train dialogues in neither SIMORD split, labelled by their reference
  notes (weak labels):
  a candidate whose name a plan sentence of the note orders takes the status
  that sentence gives it (``Continue lisinopril`` → continue, ``Increase
  metformin`` → change, ``Discontinue`` → stop, ``Initiate`` / ``order`` /
  ``refer`` / ``follow-up in`` → new); a name the plan mentions only
  conditionally (``If …``, ``consider``) or declines is ``none``, and so is a
  name the plan never mentions, unless the cue rules make it an order (notes
  leave orders out: their silence is no evidence then, and the example is left
  out). Questions are ``none``. A name the plan orders
  but said early in the visit without an order cue (history taking) is left
  out as ambiguous.
* Generated sentences (``template_examples``): order, continue, change, stop,
  switch, decline, conditional, tentative, reported-medication, result and
  question patterns filled with names from the lexicon, so every pattern the
  issue names is seen in many wordings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from nlp import corpora, lexicon, simord
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.encoder import Example, TextClassifier
from nlp.features import clip
from nlp.labels import parse_aci_note
from nlp.orders import Candidate, normalise_name, sentence_candidates
from nlp.schema import OrderKind, OrderStatus, SectionKey, Speaker

__all__ = ["INTENTS", "ORDER_ABOVE", "IntentModel", "candidate_input", "order_examples",
           "plan_statuses", "simord_examples", "template_examples"]

NONE = "none"
INTENTS = [NONE, OrderStatus.NEW.value, OrderStatus.CONTINUE.value, OrderStatus.CHANGE.value,
           OrderStatus.STOP.value]
#: a name said before this fraction of the visit with no order cue is history taking
EARLY = 0.4


def candidate_input(candidate: Candidate) -> tuple[str, str]:
    """The candidate in its sentence, with the cue rules' verdict as a feature; the
    sentence before as the pair."""
    previous = candidate.previous
    verdict = candidate.rules_status or NONE
    return (f"rules say {verdict}. {candidate.marked}",
            clip(previous, 25) if previous else "(start of visit)")


#: A candidate is an order when the model gives it at least ``ORDER_ABOVE`` probability of
#: being one (of any status; it takes its most likely status). Selected by
#: ``scripts/select_orders.py``: two-fold cross-validation over SIMORD train (each half
#: predicted by a model trained without it), the official MEDIQA-OE average; SIMORD dev
#: was not used.
ORDER_ABOVE = 0.4


class IntentModel:
    """The fine-tuned classifier behind ``extract_orders(..., classify=model)``."""

    def __init__(self, classifier: TextClassifier, order_above: float = ORDER_ABOVE) -> None:
        self.classifier = classifier
        self.order_above = order_above

    @classmethod
    def load(cls, directory: Path) -> IntentModel:
        return cls(TextClassifier.load(directory))

    def __call__(self, candidates: Sequence[Candidate]) -> list[str | None]:
        if not candidates:
            return []
        inputs = [candidate_input(c) for c in candidates]
        probs = self.classifier.predict_proba([t for t, _ in inputs], [p for _, p in inputs])
        names = self.classifier.labels
        out: list[str | None] = []
        none = names.index(NONE)
        for c, row in zip(candidates, probs, strict=True):
            p_order = 1.0 - float(row[none])  # an order at all, whatever its status
            if p_order >= self.order_above:
                status = row.copy()
                status[none] = -1.0
                out.append(names[int(status.argmax())])
                c.confidence = p_order
            else:
                out.append(None)
                c.confidence = 1.0 - p_order
        return out


# -- weak labels from ACI-BENCH reference notes ---------------------------------

_NOTE_STOP = re.compile(r"\b(discontinu\w*|stop\w*|cease|hold\w*|taper\w* off|switch\w* from|"
                        r"instead of|d/c)\b")
_NOTE_CHANGE = re.compile(r"\b(increas\w*|decreas\w*|reduc\w*|adjust\w*|titrat\w*|chang\w*|"
                          r"doubl\w*|lower\w*)\b")
_NOTE_CONTINUE = re.compile(r"\b(continu\w*|refill\w*|renew\w*|maintain\w*|remain\w*|"
                            r"keep\w*|resum\w*)\b")
_NOTE_NEW = re.compile(r"\b(initiat\w*|start\w*|prescri\w*|order\w*|obtain\w*|refer\w*|"
                       r"schedul\w*|recommend\w*|will|repeat\w*|follow[- ]?up|return\w*|"
                       r"begin|placed|provided|given|sent|get|check|draw|perform\w*|plan)\b")
_NOTE_NOT = re.compile(r"\b(if|consider\w*|may|might|could|declin\w*|defer\w*|no|not|"
                       r"unless|should (?:his|her|symptoms)|in the event|hold off|"
                       r"discussed|reviewed|revealed|showed|was|were|unremarkable)\b")


def plan_statuses(note: str) -> dict[tuple[str, str], str]:
    """(kind, normalised name) → status or ``none`` for what the note's plan says."""
    out: dict[tuple[str, str], str] = {}
    for line in parse_aci_note(note):
        if line.section != SectionKey.PLAN:
            continue
        for c in sentence_candidates(line.text):
            m = c.mention
            key = (m.kind, normalise_name(m.kind, m.name))
            before = " ".join(c.tokens[max(0, m.start - 10):m.start])
            clause = " ".join(c.tokens[max(0, m.start - 16):m.start])
            text = " ".join(c.tokens)
            if _NOTE_NOT.search(clause):
                status = NONE
            elif _NOTE_STOP.search(before):
                status = OrderStatus.STOP.value
            elif _NOTE_CHANGE.search(before):
                status = OrderStatus.CHANGE.value
            elif _NOTE_CONTINUE.search(before):
                status = OrderStatus.CONTINUE.value
            elif _NOTE_NEW.search(text) or m.kind == OrderKind.FOLLOW_UP:
                status = OrderStatus.NEW.value
            else:
                status = NONE
            if out.get(key, NONE) == NONE:  # an order anywhere in the plan wins
                out[key] = status
    return out


def aci_examples(visits: Sequence[corpora.AciVisit]) -> list[Example]:
    idx = {k: i for i, k in enumerate(INTENTS)}
    out: list[Example] = []
    for v in visits:
        plan = plan_statuses(v.note)
        sentences = transcript_sentences(parse_dialogue(v.dialogue, v.encounter_id))
        for i, s in enumerate(sentences):
            if s.speaker != Speaker.DOCTOR:
                continue
            for c in sentence_candidates(s.text):
                c.previous = sentences[i - 1].text if i else ""
                m = c.mention
                key = (m.kind, normalise_name(m.kind, m.name))
                status = plan.get(key, NONE)
                if c.tokens[-1] == "?":
                    status = NONE
                elif key not in plan and c.rules_status is not None:
                    continue  # notes leave orders out: their silence is no "none"
                elif (status != NONE and c.rules_status is None
                      and i < EARLY * len(sentences)):
                    continue  # the plan orders it, but here it is history taking
                text, pair = candidate_input(c)
                out.append(Example(text, pair, idx[status]))
    return out


# -- generated sentences ---------------------------------------------------------

_DOSES = ["5 mg", "10 mg", "20 mg", "25 mg", "40 mg", "50 mg", "100 mg", "250 mg", "500 mg",
          "1000 mg", "81 mg", "0.5 mg", "2 puffs", "1 tablet"]
_FREQS = ["once a day", "twice a day", "daily", "at night", "every morning", "as needed",
          "three times a day", "with meals", "once a week"]
_INTERVALS = ["two weeks", "a month", "three months", "six weeks", "one week", "a year",
              "six months", "4 weeks"]

# {m} medication, {m2} another, {t} lab/imaging/procedure test, {s} specialty, {d} dose,
# {f} frequency, {i} interval. The label is the intent of the bracketed first name.
_TEMPLATES: list[tuple[str, str]] = [
    ("let's start {m} {d} {f}", "new"),
    ("i'm going to start you on {m} {d} {f}", "new"),
    ("i'm gonna put you on {m} {d}", "new"),
    ("i'll prescribe {m} {d} {f} for two weeks", "new"),
    ("i'll send in a prescription for {m} to your pharmacy", "new"),
    ("we're going to try {m} {d} {f} and see how you do", "new"),
    ("so the plan is {m} {d} {f}", "new"),
    ("i want you to take {m} {d} {f}", "new"),
    ("i'm going to order a {t}", "new"),
    ("we'll get a {t} today", "new"),
    ("let's go ahead and get a {t} and a {t2}", "new"),
    ("i want to get a {t} just to be thorough", "new"),
    ("i'd like you to have a {t} before your next visit", "new"),
    ("we'll draw a {t} on your way out", "new"),
    ("i want you to see {s}", "new"),
    ("i'm going to refer you to {s}", "new"),
    ("i'll put in a referral to {s}", "new"),
    ("we'll set you up with {s}", "new"),
    ("continue the {m} {d} {f}", "continue"),
    ("keep taking your {m} like you have been", "continue"),
    ("i'll refill the {m} for you today", "continue"),
    ("stay on the {m} {d}", "continue"),
    ("i want you to continue {m} {f}", "continue"),
    ("let's increase the {m} to {d} {f}", "change"),
    ("i'm going to bump up your {m} to {d}", "change"),
    ("we'll decrease the {m} to {d} {f}", "change"),
    ("let's lower your {m} dose to {d}", "change"),
    ("i want you to stop the {m}", "stop"),
    ("go ahead and stop taking {m}", "stop"),
    ("we're going to discontinue the {m}", "stop"),
    ("i want you to come off the {m}", "stop"),
    ("i'm going to switch you from {m} to {m2}", "stop"),
    ("let's switch from {m} to {m2} {d} {f}", "stop"),
    ("we don't need a {t} right now", "none"),
    ("i don't think we need to get a {t}", "none"),
    ("let's hold off on the {t} for now", "none"),
    ("no need for {m} at this point", "none"),
    ("we're not going to start {m} today", "none"),
    ("if it's not better in two weeks we'll get a {t}", "none"),
    ("if the pain doesn't improve we may need to start {m}", "none"),
    ("we could consider a {t} down the road", "none"),
    ("we might think about {m} later", "none"),
    ("so you're taking {m} {d} {f}", "none"),
    ("you've been on {m} for a few years now", "none"),
    ("are you still taking the {m}", "none"),
    ("are you taking {m} {f} ?", "none"),
    ("how is the {m} working for you ?", "none"),
    ("your {t} came back normal", "none"),
    ("i reviewed the results of your {t} and it looked good", "none"),
    ("the {t} showed some mild changes", "none"),
    ("you had a {t} last year that was normal", "none"),
    ("did you ever see {s} before ?", "none"),
    ("you saw {s} last month", "none"),
    ("i'm going to have you come back in {i}", "new"),
    ("let's follow up in {i}", "new"),
    ("i want to see you back in {i}", "new"),
    ("you don't need to come back in {i}", "none"),
]
# the second name of a switch is new
_SWITCH_NEW = [("i'm going to switch you from {m2} to {m}", "new"),
               ("let's switch from {m2} to {m} {d} {f}", "new"),
               ("we'll stop the {m2} and start {m} {d} {f}", "new")]


def _names(table: dict[str, tuple[str, str]], kinds: set[str]) -> list[str]:
    return sorted({phrase for phrase, (kind, _) in table.items() if kind in kinds})


def template_examples(n: int, seed: int) -> list[Example]:
    """``n`` generated sentences with the intent of their first name (see ``_TEMPLATES``)."""
    rng = random.Random(seed)
    table = lexicon.phrase_table()
    meds = _names(table, {OrderKind.MEDICATION.value})
    tests = _names(table, {OrderKind.LAB.value, OrderKind.IMAGING.value,
                           OrderKind.PROCEDURE.value})
    specialties = _names(table, {OrderKind.REFERRAL.value})
    idx = {k: i for i, k in enumerate(INTENTS)}
    templates = _TEMPLATES + _SWITCH_NEW
    out: list[Example] = []
    for _ in range(n):
        template, intent = rng.choice(templates)
        m, m2 = rng.sample(meds, 2)
        t, t2 = rng.sample(tests, 2)
        text = template.format(m=m, m2=m2, t=t, t2=t2, s=rng.choice(specialties),
                               d=rng.choice(_DOSES), f=rng.choice(_FREQS),
                               i=rng.choice(_INTERVALS))
        if rng.random() < 0.3:
            text = rng.choice(["okay, ", "so ", "alright, ", "and ", "um "]) + text
        first = {"m": m, "t": t, "s": None, "i": None}
        slot = re.search(r"\{(m|t|s|i)\}", template)
        target = first.get(slot.group(1)) if slot else None
        found = sentence_candidates(text + ("" if text.endswith("?") else "."))
        pick = next((c for c in found if target is None or
                     " ".join(c.tokens[c.mention.start:c.mention.end]) == target), None)
        if slot and slot.group(1) == "i":
            pick = next((c for c in found if c.mention.kind == OrderKind.FOLLOW_UP), None)
        elif slot and slot.group(1) == "s":
            pick = next((c for c in found if c.mention.kind == OrderKind.REFERRAL), None)
        if pick is None:
            continue  # the lexicon reads the filled name differently: skip it
        text_in, pair = candidate_input(pick)
        out.append(Example(text_in, pair, idx[intent]))
    return out


def simord_examples(encounters: Sequence[simord.SimordEncounter]) -> list[Example]:
    """Candidates in SIMORD's clinician turns labelled by its gold orders.

    A candidate that a gold order of its type names and cites is an order (the cue
    rules' status when they give new / change / stop, else new); one named by a gold
    order that cites other turns is ``none`` unless the rules make it an order (then
    it is left out: a repeat of the order, or history); one no gold order names is
    ``none``, except a continued medication (SIMORD does not annotate continues, so its
    silence says nothing). Referrals, procedures and devices are not annotated: left out.
    """
    idx = {k: i for i, k in enumerate(INTENTS)}
    out: list[Example] = []
    for e in encounters:
        sentences = transcript_sentences(simord.transcript_of(e))
        for i, s in enumerate(sentences):
            if s.speaker != Speaker.DOCTOR:
                continue
            for c in sentence_candidates(s.text):
                m = c.mention
                if m.kind not in simord.MEDIQA_TYPES:
                    continue
                c.previous = sentences[i - 1].text if i else ""
                match = simord.gold_match(e, m.kind, m.fields.get("spoken", m.name),
                                          s.segment.id + 1)
                if match == "order":
                    status = (c.rules_status if c.rules_status in
                              (OrderStatus.NEW, OrderStatus.CHANGE, OrderStatus.STOP)
                              else OrderStatus.NEW.value)
                elif ((match == "other-turn" and c.rules_status is not None)
                      or c.rules_status == OrderStatus.CONTINUE):
                    continue
                else:
                    status = NONE
                text, pair = candidate_input(c)
                out.append(Example(text, pair, idx[status]))
    return out


def order_examples(data_dir: Path, generated: int, seed: int, simord_weight: int = 1,
                   leave_out: frozenset[str] = frozenset()) -> list[Example]:
    """SIMORD train (gold; each example ``simord_weight`` times), ACI-BENCH train visits
    in neither SIMORD split (weak labels from their notes), and generated sentences.
    SIMORD dev's visits are left out of every source: it is where
    ``scripts/eval_orders.py`` reports. ``leave_out``: SIMORD train ids to leave out
    too (cross-validation in ``scripts/select_orders.py``)."""
    everything = simord.read_simord(data_dir, "train")
    held_out = simord.aci_encounter_ids(everything) | simord.aci_encounter_ids(
        simord.read_simord(data_dir, "dev"))
    train = [e for e in everything if e.id not in leave_out]
    aci = [v for v in corpora.read_aci(data_dir, "train") if v.encounter_id not in held_out]
    return (simord_examples(train) * simord_weight + aci_examples(aci)
            + template_examples(generated, seed))
