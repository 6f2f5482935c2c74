"""Visit audio for demos, tests and benchmarks.

* :func:`synthesize_dialogue` speaks a doctor–patient dialogue with two
  espeak-ng voices and returns the 16 kHz mono s16le WAV plus turn timings.
* :func:`synthetic_room_wav` writes a deterministic non-speech signal of any
  length (no external tools), for byte-exact transport tests.
"""

from __future__ import annotations

import csv
import math
import random
import shutil
import subprocess
import tempfile
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protocol import SUPPORTED_FORMAT

__all__ = [
    "Turn",
    "espeak_to_wav",
    "read_aci_dialogue",
    "synthesize_dialogue",
    "synthetic_room_wav",
    "wav_to_pcm16k",
    "write_wav",
]

RATE = SUPPORTED_FORMAT.rate
VOICES = {"doctor": "en-us+m3", "patient": "en-us+f3", "other": "en-gb+m1"}


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    text: str
    start_s: float = 0.0
    end_s: float = 0.0


def read_aci_dialogue(csv_path: Path, encounter_id: str | None = None, row: int = 0) -> list[Turn]:
    """Turns of one ACI-BENCH visit (``[doctor] ...`` / ``[patient] ...`` lines)."""
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = next((r for r in rows if r["encounter_id"] == encounter_id), None) \
        if encounter_id else rows[row]
    if chosen is None:
        raise KeyError(f"no encounter {encounter_id} in {csv_path}")
    turns = []
    for line in chosen["dialogue"].splitlines():
        line = line.strip()
        if line.startswith("[") and "]" in line:
            speaker, text = line[1:].split("]", 1)
            if text.strip():
                turns.append(Turn(speaker.strip().lower(), text.strip()))
    return turns


def espeak_to_wav(text: str, voice: str, out: Path, words_per_minute: int) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (make setup installs it)")
    subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text],
                   check=True, capture_output=True)


def wav_to_pcm16k(path: Path) -> bytes:
    """Read a mono 16-bit WAV at any rate and resample to 16 kHz (linear interpolation)."""
    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2 or channels != 1:
        raise ValueError(f"{path}: expected mono 16-bit audio")
    samples = array("h", raw)
    if rate == RATE:
        return samples.tobytes()
    n_out = int(len(samples) * RATE / rate)
    out = array("h", bytes(2 * n_out))
    step = rate / RATE
    last = len(samples) - 1
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = samples[min(j, last)]
        b = samples[min(j + 1, last)]
        out[i] = int(a + (b - a) * frac)
    return out.tobytes()


def synthesize_dialogue(turns: Sequence[Turn], out_wav: Path, *, gap_s: float = 0.6,
                        max_seconds: float | None = None, words_per_minute: int = 165,
                        voices: dict[str, str] | None = None) -> list[Turn]:
    """Speak ``turns`` into ``out_wav`` (16 kHz mono s16le); return them with timings."""
    voices = {**VOICES, **(voices or {})}
    silence = b"\0\0" * int(gap_s * RATE)
    pcm = bytearray()
    timed: list[Turn] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, turn in enumerate(turns):
            clip = Path(tmp) / f"{i}.wav"
            voice = voices.get(turn.speaker, voices["other"])
            espeak_to_wav(turn.text, voice, clip, words_per_minute)
            audio = wav_to_pcm16k(clip)
            start = len(pcm) / 2 / RATE
            pcm += audio
            timed.append(Turn(turn.speaker, turn.text, round(start, 3),
                              round(len(pcm) / 2 / RATE, 3)))
            pcm += silence
            if max_seconds is not None and len(pcm) / 2 / RATE >= max_seconds:
                del pcm[int(max_seconds * RATE) * 2:]
                last = timed[-1]
                timed[-1] = Turn(last.speaker, last.text, last.start_s,
                                 min(last.end_s, max_seconds))
                break
    write_wav(out_wav, bytes(pcm))
    return timed


def synthetic_room_wav(path: Path, seconds: float, seed: int = 7) -> bytes:
    """A deterministic 'room' signal: tones gliding over low noise. Returns the PCM."""
    rng = random.Random(seed)
    n = int(seconds * RATE)
    out = array("h", bytes(2 * n))
    phase = 0.0
    for i in range(n):
        t = i / RATE
        freq = 220 + 180 * math.sin(2 * math.pi * 0.1 * t)
        phase += 2 * math.pi * freq / RATE
        out[i] = int(6000 * math.sin(phase) + rng.randint(-800, 800))
    pcm = out.tobytes()
    write_wav(path, pcm)
    return pcm


def write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
