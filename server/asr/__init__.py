"""Streaming transcription: engines behind one small interface, the stage that runs them.

    engine.py          SpeechEngine / Recognizer interface; Partial and Final events
    turns.py           TurnSegmenter: pure VAD-probability → utterance state machine
    silero.py          streaming Silero VAD (onnxruntime)
    whisper_engine.py  faster-whisper adapter (VAD-segmented finals, partials, word times)
    vosk_engine.py     vosk adapter (KaldiRecognizer: partials, endpointing, word times)
    twopass.py         vosk partials + whisper finals
    vocabulary.py      medical vocabulary → decoder prompt; vocabulary_build.py makes it
    factory.py         the configured engine from Settings (fail fast on a missing model)
    roles.py           speaker-role hook (NLP classifier plugs in)
    stage.py           TranscriptionStage (server.ingest.handoff.EncounterStage)
    monitor.py         per-room lag metrics (back-pressure is reported, never dropped)
    cli.py             roomscribe transcribe FILE.wav
    errors.py          AsrError tree
"""

from server.asr.engine import Final, Partial, RecognitionEvent, Recognizer, SpeechEngine
from server.asr.errors import (
    AsrError,
    AudioFormatError,
    EngineUnavailable,
    ModelNotInstalled,
    TranscriptionFailed,
)
from server.asr.roles import SpeakerLabeler, unknown_speakers
from server.asr.stage import NextStage, StageLimits, TranscriptionStage

__all__ = [
    "AsrError",
    "AudioFormatError",
    "EngineUnavailable",
    "Final",
    "ModelNotInstalled",
    "NextStage",
    "Partial",
    "RecognitionEvent",
    "Recognizer",
    "SpeakerLabeler",
    "SpeechEngine",
    "StageLimits",
    "TranscriptionFailed",
    "TranscriptionStage",
    "unknown_speakers",
]
