"""The small interface every speech engine sits behind, and the events it emits.

An engine is loaded once per process and shared by every room; each encounter
gets its own :class:`Recognizer`, fed 16 kHz mono s16le PCM in order:

    rec = engine.recognizer()
    events = rec.accept(pcm)     # blocking: run it in the ASR worker pool
    ...
    events = rec.finish()        # end of audio: flush the open utterance

``accept`` and ``finish`` return :class:`Partial` and :class:`Final` events in
the order they happened. Times are seconds of audio fed to this recognizer
(sample count / 16000), so for a stage that feeds an encounter from its first
frame they are seconds from the encounter's first frame — the same offsets as
``/audio.wav`` of the encounter. A recognizer is used by one thread at a time;
the engine behind it may be shared across threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nlp.schema import Word

__all__ = ["SAMPLE_RATE", "Final", "Partial", "RecognitionEvent", "Recognizer", "SpeechEngine"]

SAMPLE_RATE = 16_000
BYTES_PER_SECOND = SAMPLE_RATE * 2


@dataclass(frozen=True, slots=True)
class Partial:
    """The open utterance's best guess so far; replaced by the next partial or a final."""

    start_s: float
    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """A closed utterance: its text will not change."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()


RecognitionEvent = Partial | Final


class Recognizer(Protocol):
    def accept(self, pcm: bytes) -> list[RecognitionEvent]: ...

    def finish(self) -> list[RecognitionEvent]: ...


class SpeechEngine(Protocol):
    #: e.g. "whisper:whisper-tiny.en", "vosk:vosk-small-en-us"
    name: str
    language: str

    def recognizer(self) -> Recognizer: ...
