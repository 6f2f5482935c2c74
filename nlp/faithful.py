"""The faithfulness check a generated note sentence passes before it enters a draft.

Pure functions. A sentence written from spoken words (``nlp.rewrite``, or any
future generator) is compared with its evidence — the transcript words it came
from — on the facts a wrong note gets wrong:

* numbers (spoken numbers read as digits on both sides: "four" = "4"),
* units and durations (mg, ml, …; days, weeks, …),
* drug names (the drug vocabulary of ``nlp.drugs``),
* laterality (left, right, bilateral),
* negation (a negated source stays negated; nothing becomes negated).

Numbers, drug names and laterality must match both ways (nothing added,
nothing dropped); units and durations must have been said; negation must be
present on both sides or on neither. ``problems`` lists what failed; an empty
list means the sentence may stand. ``unsupported_words`` is the looser word-level
check: every word of the sentence is a spoken word, an inflection of one, or a
word the rewriter is allowed to add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from nlp.drugs import find_drugs
from nlp.rewrite import ADDED_WORDS, normalise_spoken

__all__ = ["Facts", "facts", "passes", "problems", "unsaid", "unsupported_words"]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNITS = {"mg": "mg", "mcg": "mcg", "ml": "ml", "milligram": "mg", "milligrams": "mg",
          "microgram": "mcg", "micrograms": "mcg", "gram": "g", "grams": "g", "units": "unit",
          "unit": "unit", "percent": "%", "%": "%", "tablet": "tablet", "tablets": "tablet",
          "pill": "tablet", "pills": "tablet", "puff": "puff", "puffs": "puff",
          "pounds": "lb", "pound": "lb", "kilograms": "kg", "kg": "kg"}
_TIME = {"second": "second", "seconds": "second", "minute": "minute", "minutes": "minute",
         "hour": "hour", "hours": "hour", "day": "day", "days": "day", "week": "week",
         "weeks": "week", "month": "month", "months": "month", "year": "year",
         "years": "year", "daily": "day"}
_SIDES = {"left": "left", "right": "right", "bilateral": "bilateral",
          "bilaterally": "bilateral"}
#: "right away", "all right", "right on the inside": no side
_NOT_A_SIDE = re.compile(r"\ball right\b|\bright (?:away|now|here|there|after|back|then|on|in|"
                         r"at|into|under|over|above|below|behind|by|around|about|before|"
                         r"where|when|through|up|down|next|i|you|so|and|okay|ok|yeah|um|uh)\b")
_FILLER = re.compile(r"\b(?:um+|uh+|er|ah|you know|i mean)\b")
#: "in a week", "for a month": one of that unit
_ONE_SPAN = re.compile(r"\b(?:in|for|within|after|over|about|around|another) an? "
                       r"(?=(?:second|minute|hour|day|week|month|year)s?\b)")
_NEGATION = re.compile(r"\b(?:no|nope|nah|not|never|none|nothing|without|denies|denied|neither|nor|"
                       r"cannot|nobody|negative)\b|n't\b", re.I)


@dataclass(frozen=True)
class Facts:
    numbers: frozenset[str]
    units: frozenset[str]
    durations: frozenset[str]
    drugs: frozenset[str]  # generic names: a brand said is its generic
    sides: frozenset[str]
    negated: bool
    drug_names: frozenset[str] = frozenset()  # the drug names as said


def _words(text: str, normalised: str | None = None) -> list[str]:
    spoken = normalise_spoken(text) if normalised is None else normalised
    return _WORD.findall(re.sub(r"(?<=\d),(?=\d{3})", "", spoken.lower()))  # 1,000


def facts(text: str) -> Facts:
    normalised = normalise_spoken(text)
    words = _words(text, normalised)
    numbers = frozenset(_NUMBER.findall(" ".join(words))) | (
        {"1"} if _ONE_SPAN.search(text.lower()) else set())
    units = frozenset(_UNITS[w] for w in words if w in _UNITS)
    durations = frozenset(_TIME[w] for w in words if w in _TIME and w != "daily")
    found = find_drugs(words)
    drugs = frozenset(c.generic for _, _, c in found)
    plain = _FILLER.sub(" ", " ".join(words))  # "right, uh, but" is "right but"
    sides = frozenset(_SIDES[w] for w in _WORD.findall(_NOT_A_SIDE.sub(" ", plain))
                      if w in _SIDES)
    return Facts(numbers, units, durations, drugs, sides,
                 bool(_NEGATION.search(normalised)),
                 frozenset(" ".join(words[i:j]) for i, j, _ in found))


def problems(sentence: str, evidence: str) -> list[str]:
    """What ``sentence`` states that ``evidence`` does not, or drops from it."""
    out, src = facts(sentence), facts(evidence)
    found: list[str] = []
    for name in ("numbers", "drugs", "sides"):
        said, written = getattr(src, name), getattr(out, name)
        if written - said:
            found.append(f"{name} not said: {sorted(written - said)}")
        if said - written:
            found.append(f"{name} dropped: {sorted(said - written)}")
    for name in ("units", "durations"):
        extra = getattr(out, name) - getattr(src, name)
        if extra:
            found.append(f"{name} not said: {sorted(extra)}")
    if out.negated != src.negated:
        found.append("negation added" if out.negated else "negation dropped")
    return found


def passes(sentence: str, evidence: str, allowed: frozenset[str] = frozenset()) -> bool:
    """``sentence`` may stand for ``evidence``: no ``problems`` and no unsupported word
    (``allowed``: more words that may be added, beside the rewriter's)."""
    return not problems(sentence, evidence) and not unsupported_words(sentence, evidence) - allowed


def unsaid(text: str, evidence: list[str]) -> list[str]:
    """What ``text`` states that none of the ``evidence`` sentences say: the one-way
    check for a line built from several sentences (an order's instruction). Empty: the
    line is faithful. "daily" in the evidence says "day"; a drug must be named as said
    (a patient who heard "zestril" is not told "lisinopril")."""
    out = facts(text)
    said = [facts(e) for e in evidence]
    found: list[str] = []
    for name in ("numbers", "units", "durations", "drug_names", "sides"):
        spoken = set().union(*(getattr(f, name) for f in said)) if said else set()
        if name == "durations" and any("daily" in e.lower() for e in evidence):
            spoken.add("day")
        extra = getattr(out, name) - spoken
        if extra:
            found.append(f"{name} not said: {sorted(extra)}")
    if out.negated and not any(f.negated for f in said):
        found.append("negation added")
    return found


@lru_cache(maxsize=8192)
def _lemmas(word: str) -> frozenset[str]:
    from lemminflect import getAllLemmas

    found = {word}
    for forms in getAllLemmas(word).values():
        found.update(forms)
    return frozenset(found)


def unsupported_words(sentence: str, evidence: str) -> set[str]:
    """Words of ``sentence`` that are neither spoken in ``evidence`` (as said, as a
    number in digits, or as another form of the same word) nor in ``ADDED_WORDS``."""
    spoken = set(_words(evidence)) | set(re.findall(r"[a-z0-9]+", evidence.lower()))
    spoken_lemmas = set().union(*(_lemmas(w) for w in spoken)) if spoken else set()
    return {w for w in _words(sentence)
            if w not in spoken and w not in ADDED_WORDS and not (_lemmas(w) & spoken_lemmas)
            and not (w.endswith("'s") and w[:-2] in spoken | ADDED_WORDS)}
