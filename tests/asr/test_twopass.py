"""Two-pass merging: vosk's partials stream live, whisper's finals are the transcript."""

from __future__ import annotations

from typing import Any

from server.asr.engine import Final, Partial
from server.asr.twopass import TwoPassRecognizer
from tests.asr.fakes import FakeRecognizer


def recognizer(script: list[tuple[float, Any]], at_finish: list[Any]) -> Any:
    return FakeRecognizer(script, at_finish)


def test_vosk_partials_whisper_finals() -> None:
    live = recognizer([(0.2, Partial(0.0, "stat lisino")), (0.4, Final(0.0, 0.4, "stat lisino")),
                       (0.6, Partial(0.5, "twenty"))], [Final(0.5, 0.7, "twenty")])
    final = recognizer([(0.5, Final(0.0, 0.45, "Start lisinopril"))],
                       [Final(0.5, 0.7, "20 milligrams")])
    rec = TwoPassRecognizer(live, final)  # type: ignore[arg-type]
    chunk = bytes(3200)  # 0.1 s
    out = [rec.accept(chunk) for _ in range(7)]
    assert out[1] == [Partial(0.0, "stat lisino")]
    assert out[3] == []  # vosk's own final is dropped
    # whisper's final, then the newest vosk partial re-anchored after it
    assert out[4] == [Final(0.0, 0.45, "Start lisinopril")]
    assert out[5] == [Partial(0.5, "twenty")]
    assert rec.finish() == [Final(0.5, 0.7, "20 milligrams")]
    assert live.finished and final.finished


def test_partial_overlapping_a_new_final_is_moved_after_it() -> None:
    live = recognizer([(0.1, Partial(0.0, "old words")), (0.1, Partial(0.0, "old words more"))],
                      [])
    final = recognizer([(0.1, Final(0.0, 0.08, "Old words."))], [])
    rec = TwoPassRecognizer(live, final)  # type: ignore[arg-type]
    assert rec.accept(bytes(3200)) == [Final(0.0, 0.08, "Old words."),
                                        Partial(0.08, "old words more")]
