"""Diarization error and role accuracy on hand-made spans."""

from __future__ import annotations

import pytest

from server.asr.speaker_scoring import DiarizationError, diarization_error, role_accuracy

REFERENCE = [(0.0, 4.0, "doctor"), (4.0, 6.0, "patient"), (7.0, 10.0, "doctor")]


def test_a_perfect_hypothesis_under_other_names_has_no_error() -> None:
    hyp = [(0.0, 4.0, "spk1"), (4.0, 6.0, "spk0"), (7.0, 10.0, "spk1")]
    err = diarization_error(REFERENCE, hyp)
    assert err.speech == pytest.approx(9.0)
    assert err.rate == pytest.approx(0.0)


def test_missed_false_alarm_and_confusion_are_told_apart() -> None:
    # 1 s of the first doctor turn missed, 0.5 s of the gap said, the last turn given to
    # the patient's voice
    hyp = [(1.0, 4.0, "a"), (4.0, 6.5, "b"), (7.0, 10.0, "b")]
    err = diarization_error(REFERENCE, hyp)
    assert err.missed == pytest.approx(1.0, abs=0.02)
    assert err.false_alarm == pytest.approx(0.5, abs=0.02)
    # one-to-one: "a" is the doctor (3 s shared), so "b" is the patient, and the last
    # doctor turn's 3 s are confusion
    assert err.confusion == pytest.approx(3.0, abs=0.02)
    assert err.rate == pytest.approx(4.5 / 9.0, abs=0.01)


def test_errors_add_up_over_visits() -> None:
    a, b = DiarizationError(1, 0, 1, 10), DiarizationError(0, 1, 0, 10)
    assert (a + b).rate == pytest.approx(0.15)


def test_role_accuracy_counts_words_where_someone_speaks() -> None:
    words = [(0.5, 0.9, "doctor"), (4.5, 4.9, "doctor"), (6.2, 6.4, "patient"),
             (8.0, 8.2, "doctor")]
    assert role_accuracy(REFERENCE, words) == (2, 3)  # the word in the gap is not counted
    overlap = [(0.0, 2.0, "doctor"), (1.0, 3.0, "patient")]
    assert role_accuracy(overlap, [(1.4, 1.6, "patient"), (1.4, 1.6, "doctor")]) == (2, 2)
