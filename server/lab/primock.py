"""PriMock57 consultations: manual TextGrid transcripts with real timing, and notes.

:func:`load_consultation` reads both speakers' tiers and the clinician's note;
:func:`synthesize_consultation` speaks each utterance with its speaker's voice
at the utterance's real start time, so the synthesized visit has the pauses,
turn-taking and length of the real one.
"""

from __future__ import annotations

import json
import re
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

from server.lab.speech import RATE, VOICES, Turn, espeak_to_wav, wav_to_pcm16k, write_wav

__all__ = ["Consultation", "clean_utterance", "list_consultations", "load_consultation",
           "parse_textgrid", "synthesize_consultation"]

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


def synthesize_consultation(consultation: Consultation, out_wav: Path,
                            max_seconds: float | None = None) -> float:
    """Write the visit with each utterance at its real start; returns its length in s.

    An utterance is spoken faster (up to 260 words/min) when the voice would run
    well past its interval; speech that still overlaps the next one is mixed, as
    people do talk over each other.
    """
    length = consultation.duration_s if max_seconds is None else min(
        consultation.duration_s, max_seconds)
    mix = array("i", bytes(4 * (int(length * RATE) + RATE)))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "u.wav"
        for turn in consultation.turns:
            if turn.start_s >= length:
                break
            wanted = max(turn.end_s - turn.start_s, 0.5)
            pcm = b""
            for wpm in (170, 210, 260):
                espeak_to_wav(turn.text, VOICES[turn.speaker], clip, wpm)
                pcm = wav_to_pcm16k(clip)
                if len(pcm) / 2 / RATE <= wanted * 1.15:
                    break
            samples = array("h", pcm)
            at = int(turn.start_s * RATE)
            for i, value in enumerate(samples[: max(0, len(mix) - at)]):
                mix[at + i] += value
    n = int(length * RATE)
    out = array("h", (max(-32768, min(32767, v)) for v in mix[:n]))
    write_wav(out_wav, out.tobytes())
    return n / RATE
