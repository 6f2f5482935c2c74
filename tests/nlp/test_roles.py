from __future__ import annotations

import numpy as np

from nlp.roles import RoleLabeller, transitions, viterbi
from nlp.schema import TranscriptSegment


def test_viterbi_follows_strong_alternation_over_a_weak_classifier_error() -> None:
    # turn 2 looks slightly more like the doctor, but doctors rarely speak twice in a row
    emit = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.1, 0.9]]))
    trans = np.log(np.array([[0.05, 0.95], [0.95, 0.05]]))
    start = np.log(np.array([0.5, 0.5]))
    assert viterbi(emit, trans, start) == [0, 1, 0, 1]
    emit[2] = np.log([0.3, 0.7])
    assert viterbi(emit, trans, start)[:2] == [0, 1]


def test_transitions_are_row_normalised_and_smoothed() -> None:
    trans, start = transitions([["doctor", "patient", "doctor"], ["doctor", "patient"]])
    assert np.allclose(np.sum(trans, axis=1), 1.0)
    assert trans[0][1] > trans[0][0] and start[0] > start[1]


class FixedClassifier:
    """Stands in for the role model: a fixed probability per word."""

    def predict_proba(self, texts: list[str], pairs: list[str]) -> np.ndarray:
        return np.array([[0.8, 0.15, 0.05] if "prescribe" in t or "exam" in t
                         else [0.3, 0.65, 0.05] for t in texts])


def labeller(alternating: bool = False) -> RoleLabeller:
    trans = np.full((3, 3), 1 / 3)
    if alternating:
        trans = np.array([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05], [0.45, 0.45, 0.1]])
    return RoleLabeller(FixedClassifier(), np.log(trans), np.log(np.full(3, 1 / 3)))


def seg(i: int, text: str, speaker: str) -> TranscriptSegment:
    return TranscriptSegment(i, float(i), i + 0.9, text, speaker)


def test_diarization_clusters_get_one_role_each() -> None:
    segs = [seg(0, "let me prescribe this", "spk1"), seg(1, "okay thanks", "spk0"),
            seg(2, "hmm right", "spk1"), seg(3, "on exam it's fine", "spk1")]
    assert labeller().label(segs) == ["doctor", "patient", "doctor", "doctor"]


def test_tags_are_evidence_that_the_model_and_turn_taking_can_overrule() -> None:
    segs = [seg(0, "let me prescribe this", "patient"), seg(1, "okay thanks", "patient")]
    assert labeller().label(segs) == ["patient", "patient"]  # tag outweighs the model alone
    assert labeller(alternating=True).label(segs) == ["doctor", "patient"]
    assert labeller().label(segs, use_tags=False) == ["doctor", "patient"]
