"""Turn spoken sentences into note sentences — only where a rule is safe.

Standard library only; pure functions.

* ``clean``: drops fillers ("um", "uh", "you know", leading "so,"/"okay,"),
  stutters ("i, i" → "i") and ACI-BENCH's spaced punctuation.
* ``patient_statement``: a patient's first-person sentence in note style when
  one of a few fixed patterns fits the whole sentence and nothing else in it
  refers to a person ("I've had a cough for two weeks" → "Patient reports a
  cough for two weeks"); otherwise ``None`` and the words stay as spoken.
* ``question_answer``: a clinician's yes/no question about a symptom and the
  patient's one-word answer → "Denies X." / "Endorses X.".

Words a rewrite may add that were not spoken are listed in ``ADDED_WORDS``;
the evidence check allows only those.
"""

from __future__ import annotations

import re

from nlp.dialogue import tidy

__all__ = ["ADDED_WORDS", "clean", "clinician_statement", "finish", "patient_statement",
           "question_answer"]

ADDED_WORDS = frozenset({"patient", "reports", "denies", "endorses", "has", "is", "takes",
                         "does", "not", "been", "the", "a", "smokes", "drinks", "states"})

_FILLERS = re.compile(
    r"\b(?:um+|uh+|uh-huh|mm-hmm|hmm+|er|ah|(?<!let )you know|i mean|kind of|sort of)\b,?\s*", re.I)
_LEADING = re.compile(
    r"^(?:(?:so|okay|ok|alright|all right|well|and|now|yeah|yes|right(?=[,.])|oh|but|great|good|"
    r"perfect|got it)\b[,.]?\s+)+", re.I)
_STUTTER = re.compile(r"\b(\w+(?:'\w+)?)(?:,?\s+\1\b)+", re.I)


def clean(text: str) -> str:
    text = tidy(text)
    text = _FILLERS.sub("", text)
    text = _STUTTER.sub(r"\1", text)
    text = re.sub(r"\b(\w+)-\s+", "", text)  # cut-off words: "n- nothing" → "nothing"
    text = re.sub(r"\s+([.,?!])", r"\1", text)
    text = re.sub(r",\s*([.?!])", r"\1", text)
    text = re.sub(r"^[,.\s]+", "", text)
    text = _LEADING.sub("", text.strip())
    return " ".join(text.split())


def finish(text: str) -> str:
    """Capital first letter, one closing full stop (questions keep their mark)."""
    text = text.strip().rstrip(",;: ")
    if not text:
        return text
    if text[-1] not in ".?!":
        text += "."
    text = re.sub(r"\bi\b", "I", text)
    return text[0].upper() + text[1:]


_PERSONAL = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|you|your|you're|we|our|"
                       r"he|she|him|her|his|they|them|their)\b", re.I)
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^i(?:'ve| have) been having (.+)$", re.I), "Patient reports {0}"),
    (re.compile(r"^i(?:'ve| have) had (.+)$", re.I), "Patient reports {0}"),
    (re.compile(r"^i(?:'m| am) having (.+)$", re.I), "Patient reports {0}"),
    (re.compile(r"^i have (?:a|an|some) (.+)$", re.I), "Patient reports {0}"),
    (re.compile(r"^i(?:'ve| have) noticed (.+)$", re.I), "Patient reports {0}"),
    (re.compile(r"^i (?:don't|do not) have (?:any )?(.+)$", re.I), "Patient denies {0}"),
    (re.compile(r"^i (?:haven't|have not) had (?:any )?(.+)$", re.I), "Patient denies {0}"),
    (re.compile(r"^i(?:'ve| have) been (.+)$", re.I), "Patient has been {0}"),
    (re.compile(r"^i(?:'m| am) (?:taking|on) (.+)$", re.I), "Patient takes {0}"),
    (re.compile(r"^i take (.+)$", re.I), "Patient takes {0}"),
    (re.compile(r"^i(?:'m| am) allergic to (.+)$", re.I), "Patient is allergic to {0}"),
    (re.compile(r"^i (?:don't|do not) smoke(.*)$", re.I), "Patient does not smoke{0}"),
    (re.compile(r"^i smoke (.+)$", re.I), "Patient smokes {0}"),
    (re.compile(r"^i drink (.+)$", re.I), "Patient drinks {0}"),
    (re.compile(r"^i (?:don't|do not) drink(.*)$", re.I), "Patient does not drink{0}"),
]


def patient_statement(sentence: str) -> str | None:
    body = sentence.rstrip(".!").strip()
    for pattern, template in _REWRITES:
        m = pattern.match(body)
        if m and not _PERSONAL.search(m.group(1)):
            return finish(template.format(m.group(1).strip()))
    return None


_CLINICIAN_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^you(?:'ve| have) been (.+)$", re.I), "Patient has been {0}"),
    (re.compile(r"^you(?:'re| are) (.+)$", re.I), "Patient is {0}"),
    (re.compile(r"^you have (.+)$", re.I), "Patient has {0}"),
    (re.compile(r"^you do have (.+)$", re.I), "Patient has {0}"),
    (re.compile(r"^your (.+)$", re.I), "{0}"),
]


def clinician_statement(sentence: str) -> str | None:
    """A clinician's sentence to the patient in note style when it opens with "you
    have/are/'ve been" or "your" and refers to nobody else ("your lungs are clear" →
    "Lungs are clear"; "you have some tenderness" → "Patient has some tenderness")."""
    body = sentence.rstrip(".!").strip()
    for pattern, template in _CLINICIAN_REWRITES:
        m = pattern.match(body)
        if m and not _PERSONAL.search(m.group(1)):
            return finish(template.format(m.group(1).strip()))
    return None


_QUESTION = re.compile(
    r"^(?:and |so |any |how about |what about )?(?:do you have|have you had|are you having|"
    r"have you (?:been having|noticed|experienced)|did you have|any other|any)\s+(?:any\s+)?"
    r"(.{3,60}?)\??$", re.I)
_NO = re.compile(r"^(?:no|nope|not really|none|never|no,? (?:not|none|never)\b.*)[.!]?$", re.I)
_YES = re.compile(r"^(?:yes|yeah|yep|yes,? i (?:do|have)|i do|i have|a little|sometimes)[.!]?$",
                  re.I)


def question_answer(question: str, answer: str) -> str | None:
    m = _QUESTION.match(question.strip())
    if not m or _PERSONAL.search(m.group(1)):
        return None
    finding = m.group(1).strip().rstrip("?, ")
    finding = re.sub(r"\s+(?:or anything(?: like that)?|at all|lately|recently)$", "", finding)
    if _NO.match(answer.strip()):
        return finish(f"Denies {finding}")
    if _YES.match(answer.strip()):
        return finish(f"Endorses {finding}")
    return None
