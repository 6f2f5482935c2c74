"""Voice embeddings: the only module that imports resemblyzer (lazily; CPU).

Resemblyzer's VoiceEncoder (a 3-layer LSTM speaker encoder, GE2E-trained; its
weights ship in the wheel) turns speech into a 256-d unit vector: the same voice
lands close (cosine), different voices farther apart.

    embed(pcm16k)                  one vector for a segment's audio (silences trimmed,
                                   volume normalised), None when under MIN_SPEECH_S
    window_embeddings(pcm16k, t0)  1.6 s windows, ``WINDOW_STEP_S`` apart, with their
                                   times (``t0`` + offset), for a change inside a segment

Blocking and CPU-bound: the transcription stage runs them in the ASR worker pool.
The encoder loads once per process, thread-safe; :func:`available` says whether
resemblyzer is installed (the stage falls back to text-only roles when not).
"""

from __future__ import annotations

import importlib.util
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from server.asr.diarization import Window
from server.asr.engine import SAMPLE_RATE

if TYPE_CHECKING:
    from resemblyzer import VoiceEncoder

__all__ = ["MIN_SPEECH_S", "WINDOW_S", "WINDOW_STEP_S", "Resemblyzer", "available", "embed",
           "encoder", "window_embeddings"]

#: Less speech than this (after trimming silence) gives no embedding. Short ones are
#: weak evidence: the clusters only place them (``ClusterParams.min_voice_s``).
MIN_SPEECH_S = 0.4
WINDOW_S = 1.6  # resemblyzer's partial utterance (160 mel frames of 10 ms)
WINDOW_STEP_S = 0.5

_lock = threading.Lock()
_encoder: VoiceEncoder | None = None
_infer = threading.Lock()  # one forward pass at a time: torch threads are the pool's


def available() -> bool:
    return importlib.util.find_spec("resemblyzer") is not None


def encoder() -> VoiceEncoder:
    """The process's encoder (loaded on first use; blocking)."""
    global _encoder
    with _lock:
        if _encoder is None:
            from resemblyzer import VoiceEncoder

            _encoder = VoiceEncoder(device="cpu", verbose=False)
        return _encoder


def _float(pcm16k: bytes) -> np.ndarray:
    return np.frombuffer(pcm16k[: len(pcm16k) // 2 * 2], dtype="<i2").astype(np.float32) / 32768


def embed(pcm16k: bytes) -> np.ndarray | None:
    """The voice of 16 kHz mono s16le audio as a 256-d unit vector, or None when it holds
    less than ``MIN_SPEECH_S`` of speech."""
    from resemblyzer import preprocess_wav

    wav = _float(pcm16k)
    if len(wav) < MIN_SPEECH_S * SAMPLE_RATE:
        return None
    wav = preprocess_wav(wav, source_sr=SAMPLE_RATE)  # trims long silences, normalises
    if len(wav) < MIN_SPEECH_S * SAMPLE_RATE:
        return None
    enc = encoder()
    with _infer:
        vector: Any = enc.embed_utterance(wav)
    return np.asarray(vector, dtype=np.float32)


def window_embeddings(pcm16k: bytes, start_s: float = 0.0,
                      step_s: float = WINDOW_STEP_S) -> list[Window]:
    """Embeddings of ``WINDOW_S`` windows every ``step_s`` over the audio (no silence
    trimming, so times stay true), each with its span in seconds from ``start_s``.
    Empty when the audio is shorter than two windows' worth."""
    from resemblyzer.audio import normalize_volume

    wav = _float(pcm16k)
    if len(wav) < (WINDOW_S + step_s) * SAMPLE_RATE:
        return []
    wav = normalize_volume(wav, -30, increase_only=True)
    enc = encoder()
    with _infer:
        _, partials, slices = enc.embed_utterance(wav, return_partials=True,
                                                  rate=1.0 / step_s, min_coverage=0.75)
    out = []
    for vector, s in zip(partials, slices, strict=True):
        a = start_s + s.start / SAMPLE_RATE
        b = start_s + min(s.stop, len(wav)) / SAMPLE_RATE
        out.append(Window(round(a, 3), round(b, 3), np.asarray(vector, dtype=np.float32)))
    return out


class Resemblyzer:
    """:class:`server.asr.diarization.VoiceEmbedder` backed by this module."""

    name = "resemblyzer"

    def embed(self, pcm16k: bytes) -> np.ndarray | None:
        return embed(pcm16k)

    def windows(self, pcm16k: bytes, start_s: float) -> list[Window]:
        return window_embeddings(pcm16k, start_s)

    def warm_up(self) -> None:
        """Load the encoder and compile what the first call compiles (about 20 s of CPU
        on a cold process), so the first visit's finals do not wait for it."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(SAMPLE_RATE * 3) * 3000).astype("<i2").tobytes()
        embed(noise)
        window_embeddings(noise)
