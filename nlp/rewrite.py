"""Grounded rewriting: one spoken sentence → one note sentence, by rules.

Pure functions; no model. What a rewrite may do, and nothing else:

* drop fillers, stutters and hedges ("you know", "i mean", "actually", "basically",
  "just", "i guess") and spell-outs of ACI-BENCH's tokeniser ("gon na" → "going to");
* shift person: a patient's "i / my / me" and a clinician's "you / your" become
  the patient in the third person ("he", "she" when the visit states the patient's
  sex — "a 57-year-old male", "Mrs." — else "the patient"), with the verb agreeing
  ("i feel" → "he feels", "you have" → "she has", "i don't" → "the patient does not");
* the clinician's own intentions in note phrasing ("i'm going to order" → "we will
  order", "i want you to take" → "she should take");
* numbers as digits ("about four days" → "about 4 days", text2num) and dose units
  and frequencies in their clinical form ("milligrams" → "mg", "twice a day" →
  "twice daily").

Every word a rewrite writes is a spoken word, an inflection of one (lemminflect),
a digit form of a spoken number, or one of ``ADDED_WORDS``; ``nlp.faithful``
checks the facts (numbers, units, drug names, laterality, negation) before the
sentence enters the draft. ``rewrite`` returns ``None`` when the sentence would
still address someone ("you") or the person is ambiguous, so the caller keeps the
extractive form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from nlp.notestyle import clean, finish


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


__all__ = ["ADDED_WORDS", "FIRST_PERSON", "Person", "normalise_spoken", "patient_person",
           "rewrite"]


@dataclass(frozen=True)
class Person:
    """How the note refers to the patient."""

    subject: str
    object: str
    possessive: str
    reflexive: str

    @property
    def pronouns(self) -> frozenset[str]:
        return frozenset({self.subject, self.object, self.possessive, self.reflexive})


HE = Person("he", "him", "his", "himself")
SHE = Person("she", "her", "her", "herself")
PATIENT = Person("the patient", "the patient", "the patient's", "themselves")

#: words a rewrite may write that nobody said (pronouns, agreement, note phrasing)
ADDED_WORDS = _words(
    "he she him her his hers himself herself the patient patient's patient s themselves their "
    "is has does was not will we should cannot mg mcg ml daily they them are were have do")

_MALE = re.compile(r"\b(?:\d+|[a-z]+)[- ]year[- ]old (?:male|man|gentleman|boy)\b|"
                   r"\bmr\.?\s+[a-z]", re.I)
_FEMALE = re.compile(r"\b(?:\d+|[a-z]+)[- ]year[- ]old (?:female|woman|lady|girl)\b|"
                     r"\b(?:mrs|ms|miss)\.?\s+[a-z]", re.I)


def patient_person(clinician_texts: Iterable[str]) -> Person:
    """he / she when the clinician states the patient's sex ("a 57-year-old male",
    "Mrs. Smith") and never both ways; otherwise "the patient"."""
    text = " ".join(clinician_texts)
    male, female = bool(_MALE.search(text)), bool(_FEMALE.search(text))
    if male and not female:
        return HE
    if female and not male:
        return SHE
    return PATIENT


_SPOKEN = [
    (re.compile(r"\bgon na\b", re.I), "going to"),
    (re.compile(r"\bwan na\b", re.I), "want to"),
    (re.compile(r"\bgonna\b", re.I), "going to"),
    (re.compile(r"\bwanna\b", re.I), "want to"),
    (re.compile(r"\bgotta\b", re.I), "have to"),
    (re.compile(r"\bca n't\b|\bcan't\b", re.I), "cannot"),
    (re.compile(r"\b(\w+) n't\b", re.I), r"\1n't"),
]
_HEDGES = re.compile(
    r"\b(?:(?<!let )you know|i mean|i guess|basically|actually|just|really|certainly|definitely|"
    r"honestly|obviously|like i said|as i said|at this point in time|"
    r"a little bit of|a little bit)\b,?\s*|^(?:hey,?\s+)?dragon,?\s+", re.I)
_UNITS = [
    (re.compile(r"\bmilligrams?\b", re.I), "mg"),
    (re.compile(r"\bmicrograms?\b", re.I), "mcg"),
    (re.compile(r"\bmilliliters?\b|\bmillilitres?\b", re.I), "ml"),
    (re.compile(r"\b(once|twice|three times|four times) (?:a|per) day\b", re.I), r"\1 daily"),
    (re.compile(r"\bevery day\b", re.I), "daily"),
]


@lru_cache(maxsize=1)
def _alpha2digit() -> Callable[..., str]:
    from text_to_num import alpha2digit

    return alpha2digit


def normalise_spoken(text: str) -> str:
    """ACI-BENCH's split contractions joined, numbers as digits, dose units short."""
    for pattern, repl in _SPOKEN:
        text = pattern.sub(repl, text)
    text = _alpha2digit()(text, "en", threshold=2)  # "two weeks" → "2 weeks"; "one of" stays
    for pattern, repl in _UNITS:
        text = pattern.sub(repl, text)
    return text


# --- person shift ---------------------------------------------------------------

#: words (hyphenated, with digits: "x-ray", "a1c", "62-year-old", "3rd"), numbers, marks
_TOKEN = re.compile(r"[A-Za-z][A-Za-z\d]*(?:-[A-Za-z\d]+)*(?:'[a-z]+)?"
                    r"|\d+(?:[.,/:]\d+)*(?:%|st|nd|rd|th)?(?:-[A-Za-z\d]+)*|[^\sA-Za-z\d]")
_CLAUSE_START = _words(
    "and but so that if when because since which as while until where then or , ; : "
    "whether though although once")
_ADVERBS = _words(
    "also still usually never always only often sometimes occasionally even already "
    "normally generally typically recently mostly now then probably")
_MODALS = _words("can could will would should may might must did had was")
#: after "you" these make it the subject ("I think you have", "so you were")
_AUXILIARIES = _words("am are 're have 've had 'd do did don't didn't can could will 'll would "
                      "should may might must were was haven't aren't weren't can't won't "
                      "wouldn't shouldn't couldn't")
#: "let you know", "see you back": "you" stays the object before a verb
_CAUSATIVE = _words("let make makes made help have has had see get got watch hear want need "
                    "like")
#: first/second-person verb forms → third person singular (after the subject)
_AGREE = {"am": "is", "'m": "is", "are": "is", "'re": "is", "were": "was", "have": "has",
          "'ve": "has", "do": "does", "don't": "does not", "haven't": "has not",
          "aren't": "is not", "weren't": "was not", "'ll": "will", "didn't": "did not",
          "won't": "will not", "can't": "cannot", "wasn't": "was not", "doesn't": "does not"}
#: first-person verb forms → "they" (a patient named once already in the sentence)
_AGREE_PLURAL = {"am": "are", "'m": "are", "was": "were", "wasn't": "were not", "'ve": "have",
                 "'ll": "will", "'re": "are"}
_SPLIT_CONTRACTION = re.compile(r"^(i|you|we)('m|'ve|'re|'ll|'d)$", re.I)


@lru_cache(maxsize=4096)
def _third_person(verb: str) -> str | None:
    """``verb`` in the 3rd person singular when it is a base-form verb, else None."""
    from lemminflect import getAllLemmas, getInflection

    lemmas = getAllLemmas(verb, upos="VERB").get("VERB", ())
    if verb not in lemmas or verb in getInflection(verb, tag="VBD"):
        return None  # not a base form, or its past is the same word ("i hurt my back")
    forms = getInflection(verb, tag="VBZ")
    return forms[0] if forms else None


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        m = _SPLIT_CONTRACTION.match(tok)
        out.extend([m.group(1), m.group(2)] if m else [tok])
    return out


def _detokenise(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r"\s+-(?=[\s.,;:!?]|$)", "", text)  # a word cut off at the end: "did something-"
    text = re.sub(r"\s+([.,?!;:%])", r"\1", text)
    return re.sub(r"\s+('(?:s|d|ll|ve|re|m))\b", r"\1", text)


def _agree(tokens: list[str], i: int, plural: bool = False) -> None:
    """Make the verb after the subject at ``tokens[i]`` third person singular (or, with
    ``plural``, agree with "they")."""
    if i and tokens[i - 1].lower() in _AUXILIARIES | _MODALS | {"does"}:
        return  # "did you strain" → "did he strain": the auxiliary carries the person
    j = i + 1
    while j < len(tokens) and tokens[j].lower() in _ADVERBS:
        j += 1
    if j >= len(tokens):
        return
    verb = tokens[j].lower()
    if verb == "'d":
        nxt = tokens[j + 1].lower() if j + 1 < len(tokens) else ""
        tokens[j] = "had" if nxt == "been" or nxt.endswith("ed") else "would"
    elif plural:
        tokens[j] = _AGREE_PLURAL.get(verb, tokens[j])
    elif verb in _AGREE:
        tokens[j] = _AGREE[verb]
    elif verb in _MODALS:
        return
    else:
        third = _third_person(verb)
        if third:
            tokens[j] = third


def _subject_you(tokens: Sequence[str], i: int) -> bool:
    """Whether the "you" at ``tokens[i]`` (not at a clause start) is a subject: a verb
    follows it and no verb of letting or seeing comes before it."""
    nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
    if not nxt or tokens[i - 1].lower() in _CAUSATIVE:
        return False
    return nxt in _AUXILIARIES or _third_person(nxt) is not None


def _shift(tokens: list[str], first: frozenset[str], person: Person) -> list[str] | None:
    """Replace the speaker-side person words (``first``: "i" family for a patient,
    "you" family for a clinician) with ``person``. ``None`` when a word of the other
    party remains (a patient's "you", a clinician's "i" after the rewrite)."""
    subj, poss = ("i", "my") if "i" in first else ("you", "your")
    out = list(tokens)
    for i, tok in enumerate(out):
        low = tok.lower()
        if low not in first:
            continue
        prev = out[i - 1].lower() if i else ","
        named = person is PATIENT and any(t in (person.subject, "they") for t in out[:i])
        if low == subj:
            if subj == "you" and prev not in _CLAUSE_START and i > 0 \
                    and not _subject_you(out, i):
                out[i] = "them" if named else person.object
                continue
            # "the patient thinks they twisted it", not "… thinks the patient twisted it"
            out[i] = "they" if named else person.subject
            _agree(out, i, plural=named)
        elif low == poss:
            mentioned = any(t in (person.subject, person.possessive) for t in out[:i])
            out[i] = "their" if person is PATIENT and mentioned else person.possessive
        elif low in ("me", "you") and low != subj:
            out[i] = "them" if named else person.object
        elif low in ("mine", "yours"):
            out[i] = "his" if person is HE else "hers" if person is SHE else "the patient's"
        elif low in ("myself", "yourself"):
            out[i] = person.reflexive
    return out


_PATIENT_SIDE = frozenset({"i", "my", "me", "mine", "myself"})
_CLINICIAN_SIDE = frozenset({"you", "your", "yours", "yourself"})
_OTHER_PERSON = re.compile(r"\b(?:he|she|him|her|his|hers|himself|herself)\b", re.I)
_STILL_ADDRESSED = re.compile(r"\b(?:you|your|yours|yourself|y'all)\b", re.I)

_INTENT = [
    (re.compile(r"^(?:i'm|i am|we're|we are) going to (?:go ahead and )?", re.I), "we will "),
    (re.compile(r"^(?:i'd|i would|we'd|we would) like to (?:go ahead and )?", re.I), "we will "),
    (re.compile(r"^(?:i want to|we want to|let's|let us) (?:go ahead and )?", re.I), "we will "),
    (re.compile(r"^(?:i|we) will (?:go ahead and )?", re.I), "we will "),
    (re.compile(r"^(?:i want|i'd like|i would like) you to ", re.I), "you should "),
    (re.compile(r"^(?:i|we) recommend (?:that )?you ", re.I), "you should "),
]
#: the speaker's own person: in a patient's rewritten sentence it can only be the
#: clinician's "I"; in a note sentence, words not yet put in the third person
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself)\b", re.I)


def rewrite(sentence: str, speaker: str, person: Person = PATIENT) -> str | None:
    """The sentence in note style, or ``None`` when no safe rewrite exists.

    ``speaker``: "patient" or "doctor" (anything else: not rewritten).
    """
    text = normalise_spoken(clean(sentence))
    text = _HEDGES.sub("", text).strip(" ,")
    text = re.sub(r"\s+,", ",", " ".join(text.split()))
    text = re.sub(r"\b(and|but|or|so|because|that),\s+", r"\1 ", text, flags=re.I)
    # "you have, decreased range of motion" (a filler was there)
    text = re.sub(r"^(\w+ (?:have|has|had|are|is|was|were|do|did|feel|felt)),\s+", r"\1 ",
                  text)
    if not text or text.endswith("?"):
        return None
    if speaker == "doctor":
        for pattern, repl in _INTENT:
            text, n = pattern.subn(repl, text)
            if n:
                break
        first = _CLINICIAN_SIDE
    elif speaker == "patient":
        first = _PATIENT_SIDE
    else:
        return None
    tokens = _tokens(text)
    if person is not PATIENT and _OTHER_PERSON.search(text):
        person = PATIENT  # "my husband, he …": he/she would be ambiguous
    shifted = _shift(tokens, first, person)
    if shifted is None:
        return None
    out = _detokenise(shifted)
    if _STILL_ADDRESSED.search(out) or (speaker == "patient" and FIRST_PERSON.search(out)):
        return None
    return finish(out)
