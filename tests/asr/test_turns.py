"""TurnSegmenter: the pure VAD-probability → utterance state machine."""

from __future__ import annotations

import pytest

from server.asr.turns import TurnEnded, TurnSegmenter, TurnStarted

W = 0.1  # 100 ms windows keep the arithmetic readable


def run(probs: list[float], **kw: float) -> list[object]:
    seg = TurnSegmenter(window_s=W, **kw)
    events: list[object] = []
    for p in probs:
        events += seg.process(p)
    return events + seg.flush()


def test_pause_ends_an_utterance_at_the_start_of_the_silence() -> None:
    probs = [0.0] * 3 + [0.9] * 10 + [0.0] * 6 + [0.8] * 4 + [0.0] * 2
    assert run(probs, min_silence_s=0.5, min_speech_s=0.2) == [
        TurnStarted(0.3), TurnEnded(0.3, 1.3), TurnStarted(1.9), TurnEnded(1.9, 2.3)]


def test_short_pause_does_not_split_and_blips_are_dropped() -> None:
    probs = [0.9] * 5 + [0.0] * 3 + [0.9] * 5 + [0.0] * 10 + [0.9] + [0.0] * 10
    assert run(probs, min_silence_s=0.5, min_speech_s=0.2) == [
        TurnStarted(0.0), TurnEnded(0.0, 1.3)]


def test_between_thresholds_keeps_the_current_state() -> None:
    # 0.4 is below threshold 0.5 but above neg_threshold 0.35: speech continues.
    probs = [0.9] * 3 + [0.4] * 8 + [0.0] * 5
    assert run(probs, min_silence_s=0.5) == [TurnStarted(0.0), TurnEnded(0.0, 1.1)]


def test_long_utterance_is_cut_at_its_last_pause() -> None:
    probs = [0.9] * 12 + [0.0] * 2 + [0.9] * 12 + [0.0] * 6
    assert run(probs, min_silence_s=0.5, max_segment_s=2.0, split_pause_s=0.2) == [
        TurnStarted(0.0), TurnEnded(0.0, 1.2), TurnStarted(1.4), TurnEnded(1.4, 2.6)]


def test_long_utterance_without_pause_is_cut_hard() -> None:
    probs = [0.9] * 25
    assert run(probs, min_silence_s=0.5, max_segment_s=1.0) == [
        TurnStarted(0.0), TurnEnded(0.0, 1.0), TurnStarted(1.0), TurnEnded(1.0, 2.0),
        TurnStarted(2.0), TurnEnded(2.0, 2.5)]


def test_flush_closes_the_open_utterance_without_trailing_silence() -> None:
    probs = [0.9] * 6 + [0.0] * 2
    assert run(probs, min_silence_s=0.5) == [TurnStarted(0.0), TurnEnded(0.0, 0.6)]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TurnSegmenter(threshold=0)
    with pytest.raises(ValueError):
        TurnSegmenter(min_silence_s=2, max_segment_s=1)


def test_a_long_turn_is_cut_at_a_short_pause_once_past_the_soft_limit() -> None:
    # 0.2 s pauses: ignored early in the turn, a cut once it is 1 s long.
    probs = [0.9] * 5 + [0.0] * 2 + [0.9] * 6 + [0.0] * 2 + [0.9] * 4 + [0.0] * 6
    assert run(probs, min_silence_s=0.5, soft_max_s=1.0, soft_silence_s=0.2) == [
        TurnStarted(0.0), TurnEnded(0.0, 1.3), TurnStarted(1.5), TurnEnded(1.5, 1.9)]
