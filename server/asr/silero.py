"""Streaming Silero VAD (the ONNX model shipped inside faster-whisper).

The only module that touches onnxruntime. :class:`SpeechDetector` takes float
samples in any chunk size and returns one speech probability per 512-sample
window (32 ms), carrying the model state and the 64-sample context across calls
exactly as faster-whisper's batch VAD does over a whole file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from server.asr.errors import EngineUnavailable

__all__ = ["WINDOW", "SpeechDetector", "load_vad_session"]

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
