"""Who spoke when, scored: diarization error rate and speaker-role accuracy.

Both sides are spans ``(start_s, end_s, label)``: the reference speakers' turns and
the hypothesis segments (voice clusters or roles). Pure; used by
``scripts/eval_diarization.py`` and ``scripts/eval_primock.py``.

* :func:`diarization_error` — missed speech, false alarm and speaker confusion over
  10 ms frames of the reference speech (no collar; overlapping reference speech
  counts once, as its later speaker), hypothesis labels mapped one-to-one to
  reference speakers for the most shared time (Hungarian), the NIST md-eval way.
* :func:`role_accuracy` — over words with times: a word counts when its
  hypothesis label is the role of the reference speaker talking at its middle
  (of either, where two talk at once); words said where nobody in the reference
  speaks are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DiarizationError", "Span", "diarization_error", "role_accuracy"]

Span = tuple[float, float, str]


@dataclass(frozen=True, slots=True)
class DiarizationError:
    """Seconds of reference speech missed, of false alarm and of speaker confusion."""

    missed: float
    false_alarm: float
    confusion: float
    speech: float

    @property
    def rate(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / max(self.speech, 1e-9)

    def __add__(self, other: DiarizationError) -> DiarizationError:
        return DiarizationError(self.missed + other.missed,
                                self.false_alarm + other.false_alarm,
                                self.confusion + other.confusion, self.speech + other.speech)


def _frames(spans: Sequence[Span], names: list[str], n: int, frame_s: float) -> np.ndarray:
    out = np.full(n, -1)
    for start, end, label in sorted(spans):
        out[max(0, int(start / frame_s)):max(0, int(end / frame_s))] = names.index(label)
    return out


def diarization_error(reference: Sequence[Span], hypothesis: Sequence[Span],
                      frame_s: float = 0.01) -> DiarizationError:
    from scipy.optimize import linear_sum_assignment

    end = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0)
    n = int(end / frame_s) + 1
    ref_names = sorted({label for _, _, label in reference})
    hyp_names = sorted({label for _, _, label in hypothesis})
    ref = _frames(reference, ref_names, n, frame_s)
    hyp = _frames(hypothesis, hyp_names, n, frame_s)
    speech, said = ref >= 0, hyp >= 0
    both = speech & said
    overlap = np.zeros((max(1, len(ref_names)), max(1, len(hyp_names))))
    for i in range(len(ref_names)):
        for j in range(len(hyp_names)):
            overlap[i, j] = np.sum(both & (ref == i) & (hyp == j))
    rows, cols = linear_sum_assignment(-overlap)
    matched = float(overlap[rows, cols].sum())
    return DiarizationError(missed=float(np.sum(speech & ~said)) * frame_s,
                            false_alarm=float(np.sum(~speech & said)) * frame_s,
                            confusion=(float(np.sum(both)) - matched) * frame_s,
                            speech=float(np.sum(speech)) * frame_s)


def role_accuracy(reference: Sequence[Span],
                  words: Sequence[tuple[float, float, str]]) -> tuple[int, int]:
    """``words``: (start_s, end_s, hypothesis role). Returns (right, counted)."""
    ordered = sorted(reference)
    right = counted = 0
    for start, end, role in words:
        mid = (start + end) / 2
        speaking = [label for a, b, label in ordered if a <= mid <= b]
        if not speaking:
            continue
        counted += 1
        right += role in speaking
    return right, counted
