"""A WAV file as the room's audio: for demos, tests, benchmarks and IT checks.

The file must already be in the protocol's format (16 kHz, mono, 16-bit PCM);
anything else is refused with a message saying how to convert it. Frames are
exactly ``frame_ms`` long except possibly the last. Frame *n* of the file is
stamped ``started_at_us + n * frame_ms`` and the source can start at any frame
offset, so an agent killed mid-file and restarted continues the same encounter
from the next unsent frame and the server still receives the file byte-identical.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncGenerator
from pathlib import Path

from protocol import SUPPORTED_FORMAT

from .audio import AudioChunk, StreamPosition
from .errors import AudioFormatError

__all__ = ["WavSource", "check_wav"]

_CONVERT_HINT = "convert it with: ffmpeg -i IN -ar 16000 -ac 1 -c:a pcm_s16le OUT.wav"


def check_wav(path: Path) -> int:
    """Raise :class:`AudioFormatError` unless ``path`` is 16 kHz mono 16-bit PCM.

    Returns the number of samples in the file.
    """
    with _open(path) as w:
        return w.getnframes()


def _open(path: Path) -> wave.Wave_read:
    try:
        w = wave.open(str(path), "rb")  # noqa: SIM115 - returned to the caller's `with`
    except FileNotFoundError as err:
        raise AudioFormatError(f"{path}: no such file") from err
    except OSError as err:
        raise AudioFormatError(f"{path}: cannot read: {err.strerror or err}") from err
    except (wave.Error, EOFError) as err:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({err}); {_CONVERT_HINT}") from err
    fmt = SUPPORTED_FORMAT
    got = (w.getframerate(), w.getnchannels(), w.getsampwidth())
    if got != (fmt.rate, fmt.channels, fmt.width) or w.getcomptype() != "NONE":
        w.close()
        rate, channels, width = got
        raise AudioFormatError(
            f"{path}: WAV is {rate} Hz, {channels} channel(s), {8 * width}-bit; "
            f"need {fmt.rate} Hz mono 16-bit PCM; {_CONVERT_HINT}"
        )
    return w


class WavSource:
    """Plays a WAV file as if it were captured live.

    ``speed`` 1 = real time (the default), N = N times faster, 0 = as fast as
    the agent can take it.
    """

    finite = True

    def __init__(self, path: Path, frame_ms: int, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path = Path(path)
        self.frame_ms = frame_ms
        self.speed = speed
        self.samples_per_frame = SUPPORTED_FORMAT.rate * frame_ms // 1000

    def describe(self) -> str:
        return f"wav:{self.path.resolve()}"

    def prepare(self) -> None:
        check_wav(self.path)

    async def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        frame_us = self.frame_ms * 1000
        period = self.frame_ms / 1000 / self.speed if self.speed else 0.0
        loop = asyncio.get_running_loop()
        with _open(self.path) as w:
            start = position.next_seq * self.samples_per_frame
            if start >= w.getnframes():
                return
            w.setpos(start)
            t0 = loop.time()
            index = 0
            while pcm := w.readframes(self.samples_per_frame):
                # A microphone hands over frame i when it has been heard, at its end.
                if period:
                    delay = t0 + (index + 1) * period - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)  # let the uplink run between frames
                seq = position.next_seq + index
                yield AudioChunk(pcm, position.started_at_us + seq * frame_us)
                index += 1
