"""Streaming Silero VAD (the ONNX model shipped inside faster-whisper).

The only module that touches onnxruntime. :class:`SpeechDetector` takes float
samples in any chunk size and returns one speech probability per 512-sample
window (32 ms), carrying the model state and the 64-sample context across calls
exactly as faster-whisper's batch VAD does over a whole file.

:func:`utterance_stats` (pure) summarises an utterance from those probabilities
and its samples — how much of it the VAD called speech, and how loud that speech
was — for the engines' gate against decoding noise and distant sound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.asr.errors import EngineUnavailable

__all__ = ["WINDOW", "SpeechDetector", "UtteranceStats", "load_vad_session", "utterance_stats"]

WINDOW = 512
CONTEXT = 64


def default_model_path() -> Path:
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError as err:
        raise EngineUnavailable("Silero VAD needs faster-whisper: pip install "
                                "'roomscribe[server]'") from err
    return Path(get_assets_path()) / "silero_vad_v6.onnx"


def load_vad_session(path: Path | None = None) -> Any:
    """An ONNX session for the VAD model; one per process is enough (it is thread-safe)."""
    try:
        import onnxruntime
    except ImportError as err:
        raise EngineUnavailable("Silero VAD needs onnxruntime") from err
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    model = path or default_model_path()
    if not model.is_file():
        raise EngineUnavailable(f"Silero VAD model not found at {model}")
    return onnxruntime.InferenceSession(os.fspath(model), providers=["CPUExecutionProvider"],
                                        sess_options=opts)


class SpeechDetector:
    """Per-stream VAD state over a shared ONNX session."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> list[float]:
        """Speech probability of every complete 512-sample window now available."""
        audio = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = audio.shape[0] // WINDOW
        self._pending = audio[n * WINDOW:].copy()
        if n == 0:
            return []
        windows = audio[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.empty((n, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1).astype(np.float32, copy=False)
        out, self._h, self._c = self.session.run(
            None, {"input": batch, "h": self._h, "c": self._c})
        return [float(p) for p in np.asarray(out).reshape(-1)]


@dataclass(frozen=True, slots=True)
class UtteranceStats:
    """What the VAD and the signal say about one utterance."""

    speech_s: float  # seconds of windows at or above the VAD threshold
    mean_prob: float  # mean speech probability over the utterance
    level_dbfs: float  # RMS level of those speech windows (of all, if none), dBFS


def utterance_stats(samples: np.ndarray, probs: np.ndarray, threshold: float = 0.5,
                    rate: int = 16_000) -> UtteranceStats:
    """``samples`` (float, full scale 1.0) and their per-window probabilities (window
    ``i`` = ``samples[i*WINDOW:(i+1)*WINDOW]``; extra windows or samples are ignored)."""
    n = min(len(probs), len(samples) // WINDOW)
    if n == 0:
        return UtteranceStats(0.0, 0.0, -120.0)
    windows = np.asarray(samples[: n * WINDOW], dtype=np.float64).reshape(n, WINDOW)
    p = np.asarray(probs[:n], dtype=np.float64)
    speech = p >= threshold
    chosen = windows[speech] if speech.any() else windows
    rms = float(np.sqrt(np.mean(np.square(chosen))))
    level = 20 * np.log10(rms) if rms > 1e-6 else -120.0
    return UtteranceStats(round(int(speech.sum()) * WINDOW / rate, 3), round(float(p.mean()), 3),
                          round(float(level), 1))
