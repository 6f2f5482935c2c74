"""What every audio source yields, and the interface sources implement.

Hardware stays at the edge: only :mod:`device.capture` touches PyAudio; the
rest of the agent sees :class:`AudioChunk` values from an :class:`AudioSource`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AudioChunk", "AudioSource", "StreamPosition"]


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One frame of 16 kHz mono s16le audio."""

    pcm: bytes
    captured_at_us: int
    """Wall-clock microseconds since the Unix epoch at the start of the frame."""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where in its encounter a source starts (or resumes) producing audio."""

    next_seq: int
    """Sequence number the next frame gets; a file source seeks to this frame."""
    started_at_us: int
    """When the encounter started; a file source stamps frames relative to it."""


class AudioSource(Protocol):
    """A room's audio: a microphone, a WAV file, or a fake in tests."""

    @property
    def finite(self) -> bool:
        """True when the source ends by itself (a file); the encounter then ends."""
        ...

    def describe(self) -> str:
        """Short human description for logs and the spool (``"mic:default"``)."""
        ...

    def prepare(self) -> None:
        """Fail fast (raise :class:`~device.errors.CaptureError`) if it cannot work."""
        ...

    def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        """Yield frames of ``frame_ms`` (the last may be shorter) until stopped or done.

        Cancelling the consuming task stops capture and releases the device.
        """
        ...
