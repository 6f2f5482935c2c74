"""Speaker roles: which turns the clinician said, which the patient, which someone else.

``RoleLabeller.label(segments)`` returns one of ``doctor`` / ``patient`` /
``other`` per segment. The role classifier scores each turn with its
neighbours as context; then

* if the segments carry diarization labels (``spk0``, ``SPEAKER_01``, … —
  anything that is not already a role), every segment of one cluster gets the
  same role: clusters take roles by their summed log-probabilities, the two
  strongest clusters becoming doctor and patient;
* otherwise a Viterbi pass over the turn sequence picks the most likely
  sequence of roles. Transitions: for a dialogue written one turn a line
  (``turns=True``: the text input, where a new line means a new speaker),
  the speaker changes at ``TURN_SWITCH`` of lines (ACI-BENCH train: 3,589 of
  3,666 line pairs); for ASR segments, which split turns, the transition
  probabilities counted at build time on ACI-BENCH and PriMock57 utterances.

Existing ``doctor``/``patient``/``other`` tags are evidence, not truth
(ACI-BENCH's and ASR's tags are sometimes wrong): each tagged turn's
probabilities are multiplied by ``TAG_RELIABILITY`` for the tagged role and the
rest shared among the others, so a confident classifier, helped by the turns
around it, can overrule a wrong tag. ``label(..., use_tags=False)`` ignores
them (how ``role_accuracy`` is measured).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp.features import role_input
from nlp.schema import Speaker, TranscriptSegment

__all__ = ["ROLES", "RoleLabeller", "accuracy", "transitions", "viterbi"]

ROLES = [Speaker.DOCTOR.value, Speaker.PATIENT.value, Speaker.OTHER.value]
TAG_RELIABILITY = 0.9
TURN_SWITCH = 0.979
_ROLE_SET = {*ROLES, Speaker.UNKNOWN.value}


def viterbi(log_emit: np.ndarray, log_trans: np.ndarray, log_start: np.ndarray) -> list[int]:
    """Most likely state sequence (pure; ``log_emit`` is turns × states)."""
    n, k = log_emit.shape
    if n == 0:
        return []
    score = log_start + log_emit[0]
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + log_trans  # from × to
        back[t] = cand.argmax(0)
        score = cand.max(0) + log_emit[t]
    path = [int(score.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def _turn_transitions() -> np.ndarray:
    """doctor ⇄ patient at TURN_SWITCH; a third person rarely, and rarely twice."""
    stay = 1.0 - TURN_SWITCH
    t = np.array([[stay, TURN_SWITCH * 0.99, TURN_SWITCH * 0.01],
                  [TURN_SWITCH * 0.99, stay, TURN_SWITCH * 0.01],
                  [0.45, 0.45, 0.1]])
    return np.log(t / t.sum(1, keepdims=True))


_TURN_TRANS = _turn_transitions()


def _by_cluster(log_p: np.ndarray, clusters: Sequence[str]) -> list[str]:
    names = sorted(set(clusters))
    totals = {c: log_p[[i for i, x in enumerate(clusters) if x == c]].sum(0) for c in names}
    role_of: dict[str, str] = {}
    if len(names) >= 2:
        # the pair (doctor cluster, patient cluster) with the highest joint score
        best = max(((a, b) for a in names for b in names if a != b),
                   key=lambda ab: totals[ab[0]][0] + totals[ab[1]][1])
        role_of = {best[0]: ROLES[0], best[1]: ROLES[1]}
    for c in names:
        role_of.setdefault(c, ROLES[int(totals[c].argmax())])
    return [role_of[c] for c in clusters]


class RoleLabeller:
    """The role classifier plus turn transitions. Thread-safe (the classifier locks)."""

    def __init__(self, classifier: object, log_trans: np.ndarray, log_start: np.ndarray) -> None:
        self._clf = classifier
        self._log_trans = log_trans
        self._log_start = log_start

    @classmethod
    def load(cls, model_dir: Path) -> RoleLabeller:
        from nlp.encoder import TextClassifier

        clf = TextClassifier.load(model_dir)
        meta = json.loads((model_dir / "meta.json").read_text())
        trans = np.array(meta["transitions"], dtype=np.float64)
        start = np.array(meta["start"], dtype=np.float64)
        return cls(clf, np.log(trans), np.log(start))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        inputs = [role_input(texts, i) for i in range(len(texts))]
        return self._clf.predict_proba([t for t, _ in inputs],  # type: ignore[attr-defined]
                                       [p for _, p in inputs])

    def label(self, segments: Sequence[TranscriptSegment], use_tags: bool = True,
              turns: bool = False) -> list[str]:
        if not segments:
            return []
        probs = self.probabilities([s.text for s in segments])
        log_p = np.log(np.clip(probs, 1e-6, 1.0))
        clusters = [s.speaker for s in segments]
        if use_tags and not any(c in _ROLE_SET for c in clusters):
            return _by_cluster(log_p, clusters)
        if use_tags:
            other = (1.0 - TAG_RELIABILITY) / (len(ROLES) - 1)
            for i, tag in enumerate(clusters):
                if tag in ROLES:
                    prior = np.full(len(ROLES), other)
                    prior[ROLES.index(tag)] = TAG_RELIABILITY
                    log_p[i] += np.log(prior)
        trans = _TURN_TRANS if turns else self._log_trans
        return [ROLES[i] for i in viterbi(log_p, trans, self._log_start)]


def transitions(sequences: Sequence[Sequence[str]]) -> tuple[list[list[float]], list[float]]:
    """Row-normalised role-to-role transition and start probabilities (add-one smoothed)."""
    idx = {r: i for i, r in enumerate(ROLES)}
    counts = np.ones((len(ROLES), len(ROLES)))
    start = np.ones(len(ROLES))
    for seq in sequences:
        roles = [idx.get(r, idx[Speaker.OTHER]) for r in seq]
        if roles:
            start[roles[0]] += 1
        for a, b in itertools.pairwise(roles):
            counts[a, b] += 1
    trans = counts / counts.sum(1, keepdims=True)
    return ([[round(float(x), 6) for x in row] for row in trans],
            [round(float(x), 6) for x in start / start.sum()])


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold)) if gold \
        else math.nan
