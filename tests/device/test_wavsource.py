"""The WAV source: frames, offsets, pacing, and refusing the wrong format."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from device.audio import AudioChunk, StreamPosition
from device.errors import AudioFormatError
from device.wavsource import WavSource, check_wav

from .fakes import write_wav


async def collect(source: WavSource, position: StreamPosition) -> list[AudioChunk]:
    async def run() -> list[AudioChunk]:
        return [c async for c in source.stream(position)]
    return await asyncio.wait_for(run(), 10)


async def test_frames_are_frame_ms_long_except_the_last(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    pcm = write_wav(path, 1.05)  # 16800 samples = 10 full 100 ms frames + 50 ms
    chunks = await collect(WavSource(path, 100, speed=0), StreamPosition(0, 5_000_000))
    assert [len(c.pcm) for c in chunks] == [3200] * 10 + [1600]
    assert b"".join(c.pcm for c in chunks) == pcm
    assert [c.captured_at_us for c in chunks] == [5_000_000 + i * 100_000 for i in range(11)]


async def test_starting_at_a_frame_offset_continues_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    pcm = write_wav(path, 1.0)
    chunks = await collect(WavSource(path, 40, speed=0), StreamPosition(7, 1_000))
    assert b"".join(c.pcm for c in chunks) == pcm[7 * 1280:]
    assert chunks[0].captured_at_us == 1_000 + 7 * 40_000
    assert await collect(WavSource(path, 40, speed=0), StreamPosition(25, 0)) == []


async def test_real_time_pacing_and_speed(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, 0.4)
    t0 = time.monotonic()
    chunks = await collect(WavSource(path, 100, speed=2.0), StreamPosition(0, 0))
    elapsed = time.monotonic() - t0
    assert len(chunks) == 4
    assert elapsed >= 0.19, "4 frames of 100 ms at 2x take 200 ms"
    t0 = time.monotonic()
    await collect(WavSource(path, 100, speed=0), StreamPosition(0, 0))
    assert time.monotonic() - t0 < 0.15


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"rate": 44100}, "WAV is 44100 Hz, 1 channel(s), 16-bit; need 16000 Hz mono 16-bit"),
    ({"channels": 2}, "2 channel(s)"),
    ({"width": 1}, "8-bit"),
])
def test_wrong_formats_are_refused_with_a_hint(tmp_path: Path, kwargs: dict[str, int],
                                               expected: str) -> None:
    path = tmp_path / "bad.wav"
    write_wav(path, 0.1, **kwargs)
    with pytest.raises(AudioFormatError) as exc:
        check_wav(path)
    assert expected in str(exc.value) and "ffmpeg" in str(exc.value)


def test_not_a_wav_and_no_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"ID3\x03not audio at all")
    with pytest.raises(AudioFormatError, match="not a PCM WAV file"):
        check_wav(junk)
    with pytest.raises(AudioFormatError, match="no such file"):
        check_wav(tmp_path / "missing.wav")


def test_describe_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, 0.1)
    assert WavSource(path, 100).describe() == f"wav:{path.resolve()}"
    assert check_wav(path) == 1600
