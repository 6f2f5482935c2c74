"""Visit audio for demos, tests and benchmarks.

* :func:`synthesize_dialogue` speaks a doctor–patient dialogue with a voice set
  of :mod:`server.lab.voices` (``neural``: human-like Piper and Kokoro voices,
  the default; ``espeak``: robotic espeak-ng voices, the hard condition) and
  writes the 16 kHz mono s16le WAV; returns the turns with their timings.
* :func:`synthetic_room_wav` writes a deterministic non-speech signal of any
  length (no external tools), for byte-exact transport tests.
"""

from __future__ import annotations

import csv
import math
import random
import shutil
import subprocess
import wave
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from protocol import SUPPORTED_FORMAT
from server.lab import voices as tts

__all__ = [
    "Turn",
    "espeak_to_wav",
    "read_aci_dialogue",
    "resolve_voices",
    "synthesize_dialogue",
    "synthetic_room_wav",
    "wav_to_pcm16k",
    "write_wav",
]

RATE = SUPPORTED_FORMAT.rate
#: The espeak-ng voices of the ``espeak`` voice set.
VOICES = dict(tts.ESPEAK_VOICES)


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
    """Read a mono 16-bit WAV at any rate and resample it to 16 kHz (soxr)."""
    with wave.open(str(path), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2 or channels != 1:
        raise ValueError(f"{path}: expected mono 16-bit audio")
    if rate == RATE:
        return raw
    return tts.to_pcm16k(array("h", raw), rate)


def resolve_voices(voice_set: str = "neural",
                   voices: Mapping[str, tts.Voice | str] | None = None,
                   words_per_minute: int = 165) -> dict[str, tts.Voice]:
    """Who speaks: the ``voice_set``'s voices, with ``voices`` overriding some roles.

    A string override names an espeak-ng voice (``"ko"``, ``"en-gb+f3"``);
    ``words_per_minute`` sets the pace of espeak-ng voices only.
    """
    chosen = tts.voice_set(voice_set)
    if voice_set == "espeak":
        chosen = {role: tts.EspeakVoice(v.voice, words_per_minute)
                  if isinstance(v, tts.EspeakVoice) else v for role, v in chosen.items()}
    for role, voice in (voices or {}).items():
        chosen[role] = tts.EspeakVoice(voice, words_per_minute) if isinstance(voice, str) \
            else voice
    return chosen


def synthesize_dialogue(turns: Sequence[Turn], out_wav: Path, *, gap_s: float = 0.6,
                        max_seconds: float | None = None, words_per_minute: int = 165,
                        voices: Mapping[str, tts.Voice | str] | None = None,
                        voice_set: str = "neural") -> list[Turn]:
    """Speak ``turns`` into ``out_wav`` (16 kHz mono s16le); return them with timings.

    Each turn is spoken by its speaker's voice (``other`` for unknown speakers),
    from the speech cache when it was spoken before; ``gap_s`` of silence
    follows every turn; ``max_seconds`` cuts the visit short.
    """
    cast = resolve_voices(voice_set, voices, words_per_minute)
    silence = b"\0\0" * int(gap_s * RATE)
    pcm = bytearray()
    timed: list[Turn] = []
    for turn in turns:
        audio = tts.speak_cached(cast.get(turn.speaker, cast["other"]), turn.text)
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
