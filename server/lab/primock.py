"""PriMock57 consultations: manual TextGrid transcripts with real timing, and notes.

:func:`load_consultation` reads both speakers' tiers and the clinician's note;
:func:`synthesize_consultation` speaks each utterance with its speaker's voice
at the utterance's real start time, so the synthesized visit has the pauses,
turn-taking and length of the real one; ``voice_set`` chooses the voices
(:mod:`server.lab.voices`: ``neural`` by default, ``espeak`` for the hard case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.lab import voices as tts
from server.lab.speech import RATE, Turn, resolve_voices, write_wav

__all__ = ["Consultation", "clean_utterance", "list_consultations", "load_consultation",
           "parse_textgrid", "spoken_turns", "synthesize_consultation"]

_INTERVAL = re.compile(
    r'xmin\s*=\s*([\d.]+)\s*xmax\s*=\s*([\d.]+)\s*text\s*=\s*"((?:[^"]|"")*)"', re.S)
_TAG = re.compile(r"<(?:UNSURE|/UNSURE)>", re.I)
_EMPTY_TAG = re.compile(r"<[A-Z_]+/>", re.I)


@dataclass(frozen=True)
class Consultation:
    id: str  # "day1_consultation01"
    turns: tuple[Turn, ...]  # both speakers, by start time
    duration_s: float
    note: str
    presenting_complaint: str

    @property
    def reference_text(self) -> str:
        return " ".join(t.text for t in self.turns)


def parse_textgrid(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every interval of a Praat long-format TextGrid."""
    return [(float(a), float(b), t.replace('""', '"')) for a, b, t in _INTERVAL.findall(text)]


def clean_utterance(text: str) -> str:
    """Drop transcriber tags: keep words marked unsure, drop unintelligible marks."""
    text = _EMPTY_TAG.sub(" ", _TAG.sub("", text))
    return re.sub(r"\s+", " ", text).strip()


def list_consultations(root: Path) -> list[str]:
    return sorted({p.name.rsplit("_", 1)[0] for p in (root / "transcripts").glob("*.TextGrid")})


def load_consultation(root: Path, consultation_id: str) -> Consultation:
    turns: list[Turn] = []
    duration = 0.0
    for speaker in ("doctor", "patient"):
        grid = (root / "transcripts" / f"{consultation_id}_{speaker}.TextGrid").read_text()
        for start, end, raw in parse_textgrid(grid):
            duration = max(duration, end)
            text = clean_utterance(raw)
            if text:
                turns.append(Turn(speaker, text, start, end))
    turns.sort(key=lambda t: t.start_s)
    note = json.loads((root / "notes" / f"{consultation_id}.json").read_text())
    return Consultation(consultation_id, tuple(turns), duration, str(note.get("note", "")),
                        str(note.get("presenting_complaint", "")))


#: Speeds tried in turn until an utterance fits its interval (×1.55 ≈ 260 words/min).
SPEEDS = (1.0, 1.25, 1.55)


def _spoken(consultation: Consultation, length: float, cast: Mapping[str, tts.Voice]
            ) -> Iterator[tuple[Turn, bytes]]:
    """Each utterance that starts before ``length`` and its audio (from the cache)."""
    for turn in consultation.turns:
        if turn.start_s >= length:
            break
        wanted = max(turn.end_s - turn.start_s, 0.5)
        voice = cast.get(turn.speaker, cast["other"])
        pcm = b""
        for speed in SPEEDS:
            pcm = tts.speak_cached(tts.at_speed(voice, speed), turn.text)
            if len(pcm) / 2 / RATE <= wanted * 1.15:
                break
        yield turn, pcm


def synthesize_consultation(consultation: Consultation, out_wav: Path,
                            max_seconds: float | None = None, *, voice_set: str = "neural",
                            voices: Mapping[str, tts.Voice | str] | None = None) -> float:
    """Write the visit with each utterance at its real start; returns its length in s.

    An utterance is spoken faster (up to ×1.55) when the voice would run well
    past its interval; speech that still overlaps the next one is mixed, as
    people do talk over each other. Utterances come from the speech cache.
    """
    cast = resolve_voices(voice_set, voices, words_per_minute=170)
    length = consultation.duration_s if max_seconds is None else min(
        consultation.duration_s, max_seconds)
    n = int(length * RATE)
    mix = np.zeros(n + RATE, dtype=np.int32)
    for turn, pcm in _spoken(consultation, length, cast):
        samples = np.frombuffer(pcm, dtype="<i2")
        at = int(turn.start_s * RATE)
        part = samples[: max(0, len(mix) - at)]
        mix[at:at + len(part)] += part
    out = np.clip(mix[:n], -32768, 32767).astype("<i2")
    write_wav(out_wav, out.tobytes())
    return n / RATE


def spoken_turns(consultation: Consultation, max_seconds: float | None = None, *,
                 voice_set: str = "neural",
                 voices: Mapping[str, tts.Voice | str] | None = None) -> list[Turn]:
    """The utterances as :func:`synthesize_consultation` spoke them: each turn's end is
    where its synthesized speech ends (the reference for who spoke when)."""
    cast = resolve_voices(voice_set, voices, words_per_minute=170)
    length = consultation.duration_s if max_seconds is None else min(
        consultation.duration_s, max_seconds)
    return [Turn(turn.speaker, turn.text, turn.start_s,
                 round(min(length, turn.start_s + len(pcm) / 2 / RATE), 3))
            for turn, pcm in _spoken(consultation, length, cast)]
