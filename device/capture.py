"""Microphone capture through PyAudio (PortAudio).

The only module that touches PyAudio, and it imports it lazily inside
functions, so the rest of the agent (and its tests) never load it. A
dedicated thread does the blocking reads of ``frame_ms`` blocks and hands each
frame to the event loop; capture therefore never waits for the network or the
disk. Frames are stamped with the wall clock at their start, kept sample-exact
by :class:`FrameClock`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from protocol import SUPPORTED_FORMAT

from .audio import AudioChunk, StreamPosition
from .errors import CaptureError, NoAudioDeviceError

__all__ = ["FrameClock", "InputDevice", "MicrophoneSource", "list_input_devices"]

log = logging.getLogger(__name__)

_Item = AudioChunk | BaseException | None


@dataclass(frozen=True, slots=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool
    supports_16k_mono: bool


class FrameClock:
    """Stamps consecutive frames: continuous, re-anchored to the wall clock on a jump.

    Pure: it is handed the wall-clock time at which each frame arrived. The
    start of a frame is normally the end of the previous one (sample-exact);
    when that drifts from ``arrival - frame`` by more than ``tolerance_us``
    (samples lost to an overflow, or clock drift) it re-anchors.
    """

    def __init__(self, frame_us: int, tolerance_us: int = 500_000) -> None:
        self.frame_us = frame_us
        self.tolerance_us = tolerance_us
        self._next: int | None = None

    def stamp(self, arrived_us: int) -> int:
        measured = arrived_us - self.frame_us
        if self._next is None or abs(measured - self._next) > self.tolerance_us:
            start = measured
        else:
            start = self._next
        self._next = start + self.frame_us
        return start


def _import_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError as err:
        raise NoAudioDeviceError(
            "PyAudio is not installed: install the device extra "
            "(pip install 'roomscribe[device]'; on Debian first apt install portaudio19-dev)"
        ) from err
    return pyaudio


_alsa_handler: Any = None


def _silence_alsa() -> None:
    """Stop ALSA printing a screenful of "Unknown PCM cards.pcm.rear" to stderr (journald)
    every time PortAudio probes the cards. Real errors still reach us via PortAudio."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("asound")
        if name is None:
            return
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                        ctypes.c_int, ctypes.c_char_p)
        _alsa_handler = handler_type(lambda *_args: None)  # kept alive: ALSA calls it later
        ctypes.CDLL(name).snd_lib_error_set_handler(_alsa_handler)
    except (OSError, AttributeError):
        pass


def _new_portaudio(pyaudio: Any) -> Any:
    _silence_alsa()
    try:
        return pyaudio.PyAudio()
    except OSError as err:
        raise NoAudioDeviceError(f"PortAudio failed to start: {err}") from err


def _supports_16k_mono(pa: Any, pyaudio: Any, index: int) -> bool:
    fmt = SUPPORTED_FORMAT
    try:
        return bool(pa.is_format_supported(
            fmt.rate, input_device=index, input_channels=fmt.channels,
            input_format=pyaudio.paInt16,
        ))
    except ValueError:
        return False


def _inputs(pa: Any) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) > 0:
            found.append((i, info))
    return found


def _default_index(pa: Any) -> int | None:
    try:
        return int(pa.get_default_input_device_info()["index"])
    except (OSError, KeyError):
        return None


def list_input_devices() -> list[InputDevice]:
    """Every input device PortAudio sees, for IT checks (``roomscribe-device devices``)."""
    pyaudio = _import_pyaudio()
    pa = _new_portaudio(pyaudio)
    try:
        default = _default_index(pa)
        return [
            InputDevice(
                index=i, name=str(info.get("name", "?")),
                channels=int(info.get("maxInputChannels", 0)),
                default_rate=float(info.get("defaultSampleRate", 0.0)),
                is_default=i == default,
                supports_16k_mono=_supports_16k_mono(pa, pyaudio, i),
            )
            for i, info in _inputs(pa)
        ]
    finally:
        pa.terminate()


def _select_device(pa: Any, spec: str) -> tuple[int, str]:
    """Resolve ``input_device`` ("" / index / name substring) to (index, name)."""
    inputs = _inputs(pa)
    if not inputs:
        raise NoAudioDeviceError("no audio input device found; is the microphone plugged in?")
    names = "; ".join(f"{i}: {info.get('name')}" for i, info in inputs)
    spec = spec.strip()
    if not spec:
        index = _default_index(pa)
        if index is None:
            raise NoAudioDeviceError(
                f"no default audio input device; set input_device to one of: {names}"
            )
        chosen = [(i, info) for i, info in inputs if i == index] or inputs[:1]
    elif spec.isdigit():
        chosen = [(i, info) for i, info in inputs if i == int(spec)]
    else:
        chosen = [(i, info) for i, info in inputs if spec.lower() in str(info.get("name")).lower()]
    if not chosen:
        raise NoAudioDeviceError(f"no audio input device matches {spec!r}; inputs are: {names}")
    if len(chosen) > 1:
        log.info("input_device %r matches %d devices; using the first", spec, len(chosen))
    index, info = chosen[0]
    return index, str(info.get("name"))


class MicrophoneSource:
    """Live capture from one PortAudio input device at 16 kHz mono s16le."""

    finite = False

    def __init__(self, input_device: str, frame_ms: int) -> None:
        self.input_device = input_device
        self.frame_ms = frame_ms
        self.samples_per_frame = SUPPORTED_FORMAT.rate * frame_ms // 1000

    def describe(self) -> str:
        return f"mic:{self.input_device or 'default'}"

    def prepare(self) -> None:
        pyaudio = _import_pyaudio()
        pa = _new_portaudio(pyaudio)
        try:
            index, name = _select_device(pa, self.input_device)
            if not _supports_16k_mono(pa, pyaudio, index):
                raise CaptureError(
                    f"input device {name!r} cannot record 16 kHz mono 16-bit; "
                    "pick an ALSA 'default' or 'plughw' device that resamples"
                )
        finally:
            pa.terminate()

    async def stream(self, position: StreamPosition) -> AsyncGenerator[AudioChunk, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stop = threading.Event()

        def deliver(item: _Item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone; nobody is listening any more
                stop.set()

        thread = threading.Thread(
            target=self._capture, args=(deliver, stop), name="roomscribe-capture", daemon=True
        )
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # Release the device before anyone opens it again (at most one frame).
            await loop.run_in_executor(None, thread.join, 2.0)

    def _capture(self, deliver: Callable[[_Item], None], stop: threading.Event) -> None:
        try:
            self._read_loop(deliver, stop)
        except CaptureError as err:
            deliver(err)
        except Exception as err:  # PortAudio reports everything as OSError/ValueError
            wrapped = CaptureError(f"audio capture failed: {err}")
            wrapped.__cause__ = err
            deliver(wrapped)
        else:
            deliver(None)

    def _read_loop(self, deliver: Callable[[_Item], None], stop: threading.Event) -> None:
        pyaudio = _import_pyaudio()
        pa = _new_portaudio(pyaudio)
        try:
            index, name = _select_device(pa, self.input_device)
            try:
                stream = pa.open(
                    format=pyaudio.paInt16, channels=SUPPORTED_FORMAT.channels,
                    rate=SUPPORTED_FORMAT.rate, input=True, input_device_index=index,
                    frames_per_buffer=self.samples_per_frame,
                )
            except (OSError, ValueError) as err:
                raise CaptureError(f"cannot open input device {name!r}: {err}") from err
            log.info("capturing from input device %d %r", index, name)
            clock = FrameClock(self.frame_ms * 1000)
            try:
                while not stop.is_set():
                    pcm = stream.read(self.samples_per_frame, exception_on_overflow=False)
                    deliver(AudioChunk(pcm, clock.stamp(time.time_ns() // 1000)))
            finally:
                stream.stop_stream()
                stream.close()
        finally:
            pa.terminate()
