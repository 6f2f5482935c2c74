"""Errors of the transcription stage.

    AsrError
     ├── EngineUnavailable    the engine's Python package is not installed
     ├── ModelNotInstalled    the configured model is missing (message names the fetch command)
     ├── AudioFormatError     input audio is not 16 kHz mono 16-bit PCM (or not a WAV at all)
     └── TranscriptionFailed  the engine raised while decoding (wraps the cause)
"""

from __future__ import annotations

__all__ = [
    "AsrError",
    "AudioFormatError",
    "EngineUnavailable",
    "ModelNotInstalled",
    "TranscriptionFailed",
]


class AsrError(Exception):
    """Base of every transcription error."""


class EngineUnavailable(AsrError):
    pass


class ModelNotInstalled(AsrError):
    pass


class AudioFormatError(AsrError):
    pass


class TranscriptionFailed(AsrError):
    pass
