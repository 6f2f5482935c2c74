"""Medical vocabulary: a term list that biases recognition towards drug and test names.

The file has one term a line, most important first; ``#`` starts a comment.
The bundled list (``vocabulary/medical_en.txt``) was built from the training
splits of ACI-BENCH and MTS-Dialog by ``python -m server.asr.vocabulary_build``.

Whisper takes the terms as a decoder prompt (faster-whisper's ``hotwords``):
the prompt only raises the likelihood of words the audio supports, it does not
insert text. Its room is bounded (half of Whisper's 448-token context), so
:func:`prompt_terms` keeps the leading terms that fit a token budget.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["BUNDLED", "TermMatcher", "load_vocabulary", "prompt_terms", "resolve_vocabulary"]

BUNDLED = Path(__file__).with_name("vocabulary") / "medical_en.txt"


def load_vocabulary(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read vocabulary file {path}: {err}") from err
    terms: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        term = " ".join(line.split("#", 1)[0].split())
        if term and term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    return terms


def resolve_vocabulary(setting: str) -> list[str]:
    """``""`` = bundled list, ``"none"`` = no vocabulary, else a file path."""
    if setting.strip().lower() == "none":
        return []
    return load_vocabulary(Path(setting) if setting.strip() else BUNDLED)


def prompt_terms(terms: Sequence[str], count_tokens: Callable[[str], int],
                 budget: int) -> list[str]:
    """The leading terms whose comma-separated prompt fits in ``budget`` tokens."""
    chosen: list[str] = []
    used = 0
    for term in terms:
        cost = count_tokens(" " + term + ",")
        if used + cost > budget:
            break
        chosen.append(term)
        used += cost
    return chosen


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


class TermMatcher:
    """Finds vocabulary terms that a hypothesis seems to have misheard.

    A span of one to three hypothesis words, squashed ("emac sisillin" →
    "emacsisillin"), that is at least ``min_ratio`` similar (difflib ratio) to a
    term it does not already contain exactly is a candidate. A single word that
    is common (``is_common``, e.g. one tokenizer piece) is never one: the
    candidates only steer a second decode of the same audio, they are not
    written into the text.
    """

    def __init__(self, terms: Sequence[str], is_common: Callable[[str], bool],
                 min_ratio: float = 0.68) -> None:
        self.terms = [(t, _key(t)) for t in terms if len(_key(t)) >= 4]
        self.is_common = is_common
        self.min_ratio = min_ratio

    def candidates(self, text: str, limit: int = 8) -> list[str]:
        words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'.-]*", text)
        keys = [_key(w) for w in words]
        present = set(keys)
        spans: set[str] = set()
        for i in range(len(words)):
            for n in (1, 2, 3):
                if i + n > len(words):
                    break
                span = "".join(keys[i:i + n])
                if len(span) < 4 or (n == 1 and self.is_common(words[i].lower())):
                    continue
                spans.add(span)
        scored: dict[str, float] = {}
        for term, key in self.terms:
            if key in present:
                continue
            best = 0.0
            for span in spans:
                if not 0.6 <= len(span) / len(key) <= 1.6:
                    continue
                matcher = difflib.SequenceMatcher(None, span, key)
                if (matcher.real_quick_ratio() < self.min_ratio
                        or matcher.quick_ratio() < self.min_ratio):
                    continue
                best = max(best, matcher.ratio())
            if best >= self.min_ratio:
                scored[term] = best
        return sorted(scored, key=lambda t: -scored[t])[:limit]
