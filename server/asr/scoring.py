"""Word error rate and term recall, with the text normalisation both sides get.

Normalisation: lower case, punctuation dropped, hyphens split, numbers 0–999
spelled out ("10" → "ten"), "mg" → "milligrams", hesitation fillers ("uh", "um",
"hmm", as Whisper's own English normaliser drops them) removed. WER is
word-level Levenshtein distance / reference length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["normalize", "term_hits", "wer", "word_errors"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_UNITS = {"mg": "milligrams", "mcg": "micrograms", "ml": "milliliters", "kg": "kilograms",
          "a1c": "a one c", "a1": "a one", "gonna": "going to", "wanna": "want to",
          "okay": "ok"}


_FILLERS = {"uh", "um", "hmm", "mm", "mhm", "mmm", "er", "ah"}


def _number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number(rest))


def normalize(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("/", " ")
    text = re.sub(r"(\d+)\.(\d+)", lambda m: f"{m.group(1)} point {m.group(2)}", text)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    words: list[str] = []
    for raw in re.findall(r"[a-z0-9']+", text):
        word = raw.strip("'")
        if not word or word in _FILLERS:
            continue
        if word in _UNITS:
            words += _UNITS[word].split()
        elif word.isdigit() and int(word) < 1000:
            words += _number(int(word)).split()
        else:
            m = re.fullmatch(r"(\d+)([a-z]+)", word)
            if m and int(m.group(1)) < 1000:
                words += _number(int(m.group(1))).split()
                words += _UNITS.get(m.group(2), m.group(2)).split()
            else:
                words.append(word)
    return words


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref = normalize(reference)
    if not ref:
        raise ValueError("empty reference")
    return word_errors(ref, normalize(hypothesis)) / len(ref)


def term_hits(terms: Sequence[str], hypothesis: str) -> int:
    """How many of ``terms`` (each counted once per occurrence in the list) the
    hypothesis contains as whole normalised word sequences."""
    hyp = " " + " ".join(normalize(hypothesis)) + " "
    return sum(1 for t in terms if " " + " ".join(normalize(t)) + " " in hyp)
