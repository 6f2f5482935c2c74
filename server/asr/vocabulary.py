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

from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["BUNDLED", "load_vocabulary", "prompt_terms", "resolve_vocabulary"]

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
