"""How a turn or a sentence is shown to a classifier (shared by training and inference).

Standard library only. The section classifier sees one transcript sentence with
its speaker and, as the context pair, the sentence before and after it; where in
the visit the sentence falls (its tenth of the visit) goes to the classifier's
head as numbers (``position_features``), not into the text, so a sentence is
encoded once while the visit grows around it. The role classifier sees one turn
and, as the pair, the turns around it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nlp.dialogue import TranscriptSentence

__all__ = ["POSITION_FEATURES", "clip", "content_words", "mts_input", "position_features",
           "role_input", "section_input", "section_position"]

#: The visit in tenths, plus one slot for "position unknown" (a snippet on its own).
POSITION_FEATURES = 11


def clip(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def section_position(i: int, n: int) -> int:
    """Which tenth of a visit of ``n`` sentences sentence ``i`` falls in (0..9)."""
    return min(9, int(10 * i / max(1, n)))


def position_features(tenth: int | None) -> tuple[float, ...]:
    """One-hot of the tenth of the visit (``None``: unknown, e.g. an MTS-Dialog snippet)."""
    out = [0.0] * POSITION_FEATURES
    out[POSITION_FEATURES - 1 if tenth is None else tenth] = 1.0
    return tuple(out)


def section_input(sentences: Sequence[TranscriptSentence], i: int) -> tuple[str, str]:
    """(text, context pair) of sentence ``i``; its position: :func:`section_position`."""
    s = sentences[i]
    text = f"{s.speaker}: {s.text}"
    before = sentences[i - 1] if i > 0 else None
    after = sentences[i + 1] if i + 1 < len(sentences) else None
    pair = " | ".join(
        f"{x.speaker}: {clip(x.text, 30)}" for x in (before, after) if x is not None)
    return text, pair


def role_input(texts: Sequence[str], i: int) -> tuple[str, str]:
    before = clip(texts[i - 1], 40) if i > 0 else "(start of visit)"
    after = clip(texts[i + 1], 40) if i + 1 < len(texts) else "(end of visit)"
    return clip(texts[i], 60), f"before: {before} | after: {after}"


def mts_input(dialogue: str) -> str:
    """An MTS-Dialog snippet as one text (speaker tags kept, whitespace squeezed)."""
    return "\n".join(" ".join(line.split()) for line in dialogue.splitlines() if line.strip())


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOP = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves",
    "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until",
    "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "okay", "ok",
    "um", "uh", "yeah", "yes", "alright", "right", "well", "like", "know", "just", "really",
    "kind", "sort", "gonna", "going", "get", "got", "go", "see", "let's", "let", "also", "um-hum",
    "mm", "hmm", "oh", "patient", "reports", "states", "doctor", "she", "he", "her", "his", "mr",
    "mrs", "ms", "today",
])


def content_words(text: str) -> set[str]:
    """Lower-cased content words cut to 6 letters (a crude stem), stop words dropped."""
    return {w[:6] for w in _WORD.findall(text.lower()) if w not in STOP and len(w) > 2}
