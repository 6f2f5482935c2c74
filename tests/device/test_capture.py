"""Microphone capture, with a fake ``pyaudio`` module standing in for PortAudio."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import types
from typing import Any, ClassVar

import pytest

from device.audio import StreamPosition
from device.capture import FrameClock, MicrophoneSource, list_input_devices
from device.errors import CaptureError, NoAudioDeviceError

DEVICES = [
    {"name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "maxInputChannels": 2,
     "defaultSampleRate": 48000.0},
    {"name": "HDMI 0", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
    {"name": "USB Conference Mic (hw:1,0)", "maxInputChannels": 1,
     "defaultSampleRate": 16000.0},
    {"name": "default", "maxInputChannels": 32, "defaultSampleRate": 44100.0},
]


class FakeStream:
    def __init__(self, pa: FakePyAudio) -> None:
        self.pa = pa
        self.reads = 0
        self.closed = False

    def read(self, n: int, exception_on_overflow: bool = True) -> bytes:
        assert not exception_on_overflow, "an overflow must not kill capture"
        self.reads += 1
        if self.pa.fail_after is not None and self.reads > self.pa.fail_after:
            raise OSError(-9981, "Input overflowed")
        return bytes([self.reads % 256]) * (2 * n)

    def stop_stream(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class FakePyAudio:
    paInt16 = 8
    instances: ClassVar[list[FakePyAudio]] = []
    devices: ClassVar[list[dict[str, Any]]] = DEVICES
    default: ClassVar[int | None] = 3
    fail_after: ClassVar[int | None] = None
    no_16k: ClassVar[set[int]] = set()

    def __init__(self) -> None:
        self.opened: list[dict[str, Any]] = []
        self.streams: list[FakeStream] = []
        self.terminated = False
        FakePyAudio.instances.append(self)

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, i: int) -> dict[str, Any]:
        return {**self.devices[i], "index": i}

    def get_default_input_device_info(self) -> dict[str, Any]:
        if self.default is None:
            raise OSError(-9996, "Invalid input device (no default output device)")
        return self.get_device_info_by_index(self.default)

    def is_format_supported(self, rate: int, **kw: Any) -> bool:
        if kw["input_device"] in self.no_16k:
            raise ValueError("Invalid sample rate")
        return True

    def open(self, **kw: Any) -> FakeStream:
        self.opened.append(kw)
        stream = FakeStream(self)
        self.streams.append(stream)
        return stream

    def terminate(self) -> None:
        self.terminated = True


@pytest.fixture
def fake_pyaudio(monkeypatch: pytest.MonkeyPatch) -> type[FakePyAudio]:
    module = types.ModuleType("pyaudio")
    module.PyAudio = FakePyAudio  # type: ignore[attr-defined]
    module.paInt16 = FakePyAudio.paInt16  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyaudio", module)
    FakePyAudio.instances = []
    monkeypatch.setattr(FakePyAudio, "devices", DEVICES)
    monkeypatch.setattr(FakePyAudio, "default", 3)
    monkeypatch.setattr(FakePyAudio, "fail_after", None)
    monkeypatch.setattr(FakePyAudio, "no_16k", set())
    return FakePyAudio


def test_list_input_devices_for_it(fake_pyaudio: type[FakePyAudio]) -> None:
    fake_pyaudio.no_16k = {0}
    devices = list_input_devices()
    assert [d.index for d in devices] == [0, 2, 3], "outputs are not listed"
    assert [d.is_default for d in devices] == [False, False, True]
    assert [d.supports_16k_mono for d in devices] == [False, True, True]
    assert all(pa.terminated for pa in fake_pyaudio.instances)


def test_device_selection_by_name_index_or_default(fake_pyaudio: type[FakePyAudio]) -> None:
    MicrophoneSource("usb conference", 100).prepare()
    MicrophoneSource("2", 100).prepare()
    MicrophoneSource("", 100).prepare()
    with pytest.raises(NoAudioDeviceError, match="no audio input device matches 'webcam'") as e:
        MicrophoneSource("webcam", 100).prepare()
    assert "2: USB Conference Mic" in str(e.value), "the message lists what there is"
    with pytest.raises(NoAudioDeviceError, match="matches '1'"):
        MicrophoneSource("1", 100).prepare()  # HDMI has no input channels


def test_no_device_at_all(fake_pyaudio: type[FakePyAudio]) -> None:
    fake_pyaudio.devices = [DEVICES[1]]
    with pytest.raises(NoAudioDeviceError, match="no audio input device found; is the micro"):
        MicrophoneSource("", 100).prepare()
    fake_pyaudio.devices = DEVICES
    fake_pyaudio.default = None
    with pytest.raises(NoAudioDeviceError, match="no default audio input device"):
        MicrophoneSource("", 100).prepare()


def test_a_device_that_cannot_do_16k_is_refused(fake_pyaudio: type[FakePyAudio]) -> None:
    fake_pyaudio.no_16k = {0}
    with pytest.raises(CaptureError, match="cannot record 16 kHz mono"):
        MicrophoneSource("ALC3246", 100).prepare()


async def test_capture_thread_delivers_frames_and_releases_the_device(
        fake_pyaudio: type[FakePyAudio]) -> None:
    source = MicrophoneSource("usb", 20)
    got = []

    async def consume() -> None:
        async with contextlib.aclosing(source.stream(StreamPosition(0, 0))) as stream:
            async for chunk in stream:
                got.append(chunk)
                if len(got) == 5:
                    return

    await asyncio.wait_for(consume(), 5)
    assert [len(c.pcm) for c in got] == [640] * 5
    [pa] = fake_pyaudio.instances
    opened = pa.opened[0]
    assert (opened["rate"], opened["channels"], opened["input_device_index"],
            opened["frames_per_buffer"]) == (16000, 1, 2, 320)
    assert pa.streams[0].closed and pa.terminated, "device released when capture stops"
    stamps = [c.captured_at_us for c in got]
    assert all(b > a for a, b in itertools.pairwise(stamps))


async def test_a_failing_device_raises_capture_error(fake_pyaudio: type[FakePyAudio]) -> None:
    fake_pyaudio.fail_after = 2
    source = MicrophoneSource("", 100)

    async def consume() -> int:
        n = 0
        async for _chunk in source.stream(StreamPosition(0, 0)):
            n += 1
        return n

    with pytest.raises(CaptureError, match=r"audio capture failed: .*Input overflowed"):
        await asyncio.wait_for(consume(), 5)


def test_frame_clock_is_continuous_and_reanchors_on_a_jump() -> None:
    clock = FrameClock(100_000, tolerance_us=50_000)
    assert clock.stamp(1_100_000) == 1_000_000
    assert clock.stamp(1_230_000) == 1_100_000, "jitter in arrival does not move stamps"
    assert clock.stamp(1_290_000) == 1_200_000
    assert clock.stamp(2_000_000) == 1_900_000, "samples lost: re-anchor to the wall clock"


def test_nothing_imports_pyaudio_but_capture_and_only_when_used() -> None:
    code = (
        "import sys, device.cli, device.agent, device.uplink, device.capture, device.enroll\n"
        "assert 'pyaudio' not in sys.modules, 'pyaudio imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
