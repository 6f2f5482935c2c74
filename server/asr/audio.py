"""Audio in the one format every engine takes: 16 kHz mono signed 16-bit little-endian PCM."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from server.asr.engine import SAMPLE_RATE
from server.asr.errors import AudioFormatError

__all__ = ["pcm_to_float", "read_wav_pcm"]


def read_wav_pcm(path: Path) -> bytes:
    """The PCM of a 16 kHz mono 16-bit WAV file; anything else is a clear error."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            pcm = w.readframes(w.getnframes())
    except FileNotFoundError as err:
        raise AudioFormatError(f"{path}: no such file") from err
    except (wave.Error, EOFError) as err:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({err})") from err
    if (rate, width, channels) != (SAMPLE_RATE, 2, 1):
        raise AudioFormatError(
            f"{path}: {rate} Hz, {8 * width}-bit, {channels} channel(s); expected 16000 Hz "
            f"16-bit mono (convert with: sox IN.wav -r 16000 -c 1 -b 16 OUT.wav)")
    return pcm


def pcm_to_float(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise AudioFormatError("PCM has half a sample (odd number of bytes)")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
