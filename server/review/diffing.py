"""How far the signed note is from the AI draft: word edit distance and a unified diff.

The edit distance (insertions + deletions + substitutions of words, Levenshtein)
is the burden left to humans; divided by the draft's word count it is the
draft's word error rate against the signed note. :func:`word_runs` shows a
change as the reader sees it: runs of kept, inserted and deleted words. Pure
functions.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

__all__ = ["DiffRun", "NoteDiff", "compare", "word_edit_distance", "word_runs", "words"]

_WORD = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance over words, O(len(a)·len(b)) time and O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, wa in enumerate(a, start=1):
        current = [i]
        for j, wb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (wa != wb)))
        previous = current
    return previous[-1]


@dataclass(frozen=True, slots=True)
class NoteDiff:
    edit_distance: int  # words
    draft_words: int
    signed_words: int
    unified: str

    @property
    def rate(self) -> float:
        """Edits per draft word (0 = signed as drafted)."""
        return self.edit_distance / max(self.draft_words, 1)


def compare(draft_text: str, signed_text: str) -> NoteDiff:
    a, b = words(draft_text), words(signed_text)
    unified = "\n".join(difflib.unified_diff(draft_text.splitlines(), signed_text.splitlines(),
                                             "ai-draft", "signed", lineterm=""))
    return NoteDiff(word_edit_distance(a, b), len(a), len(b), unified)


@dataclass(frozen=True, slots=True)
class DiffRun:
    """A stretch of words that were kept (``equal``), added (``insert``) or taken out
    (``delete``); ``text`` is the words joined by single spaces."""

    op: str
    text: str


def word_runs(before: str, after: str) -> list[DiffRun]:
    """``before`` → ``after`` as runs over whitespace-separated words (case and
    punctuation count); a replaced stretch is its deletion, then its insertion."""
    a, b = before.split(), after.split()
    runs: list[DiffRun] = []

    def add(op: str, tokens: list[str]) -> None:
        if not tokens:
            return
        if runs and runs[-1].op == op:
            runs[-1] = DiffRun(op, f"{runs[-1].text} {' '.join(tokens)}")
        else:
            runs.append(DiffRun(op, " ".join(tokens)))

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return runs
