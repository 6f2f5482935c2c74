"""Dialogues in, ``Transcript`` out; transcript text split into sentences.

Input forms:

* ACI-BENCH text: one turn a line, ``[doctor] ...`` / ``[patient] ...``
  (``[patient_guest]`` and any other tag become ``other``). MTS-Dialog's
  ``Doctor: ...`` / ``Patient: ...`` lines are read the same way.
* A transcript JSON as written by ``roomscribe transcribe`` (``Transcript.to_dict()``).

Plain text has no timing, so each turn becomes one segment with *synthetic*
times: a turn lasts ``max(1 s, words / 2.5 words per second)`` (150 words a
minute, a normal speaking rate) and turns follow each other with a 0.5 s gap.
Evidence from such a draft therefore points at the right segments; its seconds
are estimates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from nlp.errors import InputError
from nlp.schema import Speaker, Transcript, TranscriptSegment

__all__ = [
    "WORDS_PER_SECOND",
    "TranscriptSentence",
    "load_transcript",
    "parse_dialogue",
    "split_sentences",
    "tidy",
    "transcript_sentences",
]

WORDS_PER_SECOND = 2.5
TURN_GAP_S = 0.5

_TAG = re.compile(r"^\s*\[([A-Za-z_ ]+)\]\s*(.*)$")
_COLON_TAG = re.compile(r"^\s*(doctor|patient|guest_family|guest_clinician|[a-z_]+)\s*:\s*(.*)$",
                        re.I)
_ROLE = {"doctor": Speaker.DOCTOR, "patient": Speaker.PATIENT,
         "guest_clinician": Speaker.DOCTOR}


def _role(tag: str) -> str:
    return _ROLE.get(tag.strip().lower(), Speaker.OTHER)


def parse_dialogue(text: str, encounter_id: str = "") -> Transcript:
    """A tagged plain-text dialogue as a transcript, one segment per turn."""
    segments: list[TranscriptSegment] = []
    t = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _TAG.match(line) or _COLON_TAG.match(line)
        if m:
            speaker, words = _role(m.group(1)), m.group(2).strip()
        elif segments:  # a continuation line belongs to the previous turn
            prev = segments.pop()
            t = prev.start_s
            speaker, words = prev.speaker, f"{prev.text} {line}"
        else:  # untagged opening line: speaker unknown (label_speakers can tell)
            speaker, words = Speaker.UNKNOWN, line
        if not words:
            continue
        n = len(words.split())
        dur = round(max(1.0, n / WORDS_PER_SECOND), 2)
        segments.append(TranscriptSegment(id=len(segments), start_s=round(t, 2),
                                          end_s=round(t + dur, 2), text=words, speaker=speaker))
        t += dur + TURN_GAP_S
    if not segments:
        raise InputError("dialogue has no turns")
    if all(s.speaker == Speaker.UNKNOWN for s in segments):
        raise InputError("no speaker tags: expected one turn a line, [doctor] ... / "
                         "[patient] ... (or Doctor: / Patient:)")
    return Transcript(encounter_id=encounter_id, segments=tuple(segments), engine="text")


def load_transcript(path: Path) -> Transcript:
    """Read FILE as transcript JSON (``.json``) or a tagged plain-text dialogue."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text") from err
    if path.suffix.lower() == ".json" or raw.lstrip().startswith("{"):
        try:
            transcript = Transcript.from_dict(json.loads(raw))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path} is not a transcript JSON: {err}") from err
        if not transcript.segments:
            raise InputError(f"{path}: transcript has no segments")
        return transcript
    return parse_dialogue(raw, encounter_id=path.stem)


_SPACE_BEFORE = re.compile(r"\s+([.,?!;:%])")
_SPLIT = re.compile(r"(?<=[.?!])\s+(?=\S)")


def tidy(text: str) -> str:
    """ACI-BENCH's tokenised ``okay , so`` → ``okay, so``; squeeze spaces."""
    text = _SPACE_BEFORE.sub(r"\1", " ".join(text.split()))
    return text.replace(" n't", "n't").replace(" 's ", "'s ")


def split_sentences(text: str) -> list[str]:
    """Sentences of one turn (on . ? ! followed by space; decimals stay whole)."""
    return [s for s in (p.strip() for p in _SPLIT.split(tidy(text))) if s]


@dataclass(frozen=True, slots=True)
class TranscriptSentence:
    """One sentence of one segment, with its place in the visit."""

    index: int  # position among all sentences of the transcript
    segment: TranscriptSegment
    text: str
    turn_position: int  # sentence number inside its segment

    @property
    def speaker(self) -> str:
        return self.segment.speaker


def transcript_sentences(transcript: Transcript) -> list[TranscriptSentence]:
    out: list[TranscriptSentence] = []
    for seg in transcript.segments:
        for j, sentence in enumerate(split_sentences(seg.text)):
            out.append(TranscriptSentence(len(out), seg, sentence, j))
    return out
