"""``roomscribe transcribe FILE.wav``: a WAV file through the same stage as live audio.

    roomscribe transcribe FILE.wav [--engine auto|vosk|whisper|two-pass]
                                   [--vocabulary FILE|none] [--events]
                                   [--diarize | --no-diarize]

The file (16 kHz mono 16-bit) is cut into 100 ms chunks and fed to the
:class:`~server.asr.stage.TranscriptionStage` exactly as stored device frames
are; the transcript is printed as JSON (segments with times, text, words).
``--events`` also writes the live events (partial/final/...) to stderr, one
JSON object a line. Speaker roles as in the live pipeline: with diarization
(``--diarize``, the default when ``asr_diarization`` is on and resemblyzer is
installed) each voice is a cluster and the role model (``models/nlp/roles``)
names the clusters; without it, roles come from the words alone; without the
role model, every segment's speaker stays ``unknown``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nlp.schema import Transcript, TranscriptSegment
from server.asr.audio import read_wav_pcm
from server.asr.engine import BYTES_PER_SECOND
from server.asr.errors import AsrError
from server.asr.factory import ENGINE_CHOICES, build_engine
from server.asr.stage import TranscriptionStage
from server.asr.vocabulary import resolve_vocabulary
from server.ingest.handoff import AudioChunk, EncounterInfo
from server.settings import Settings
from server.transcripts.store import Progress

__all__ = ["MemoryTranscripts", "main", "transcribe_pcm", "wav_chunks"]

CHUNK_BYTES = BYTES_PER_SECOND // 10


class MemoryTranscripts:
    """A TranscriptSink that keeps one run's segments in memory."""

    def __init__(self) -> None:
        self.segments: list[TranscriptSegment] = []
        self.status = ""
        self.error = ""
        self.progress = Progress()
        self.end_to_transcript_ms: int | None = None

    def begin(self, encounter_id: str, engine: str, language: str) -> bool:
        self.segments, self.status = [], "running"
        return True

    def add_segment(self, encounter_id: str, segment: TranscriptSegment,
                    progress: Progress) -> None:
        self.segments.append(segment)
        self.progress = progress

    def save_progress(self, encounter_id: str, progress: Progress) -> None:
        self.progress = progress

    def complete(self, encounter_id: str, speakers: Sequence[str], progress: Progress,
                 end_to_transcript_ms: int) -> None:
        self.status, self.progress = "complete", progress
        self.end_to_transcript_ms = end_to_transcript_ms

    def fail(self, encounter_id: str, error: str, progress: Progress) -> None:
        self.status, self.error, self.progress = "failed", error, progress


class _PrintEvents:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def publish(self, encounter_id: str, type_: str, data: dict[str, Any]) -> None:
        if self.enabled:
            print(json.dumps({"type": type_, "data": data}), file=sys.stderr, flush=True)


async def wav_chunks(pcm: bytes, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[AudioChunk]:
    for seq, i in enumerate(range(0, len(pcm), chunk_bytes)):
        yield AudioChunk(seq, seq * chunk_bytes * 1_000_000 // BYTES_PER_SECOND,
                         pcm[i:i + chunk_bytes])


async def transcribe_pcm(stage: TranscriptionStage, pcm: bytes, name: str) -> Transcript:
    """Run ``stage`` over ``pcm`` as one encounter; the transcript it hands on."""
    result: list[Transcript] = []

    async def keep(_: EncounterInfo, transcript: Transcript) -> None:
        result.append(transcript)

    stage.next_stage = keep
    await stage.run(EncounterInfo(name, "cli", "cli", 0), wav_chunks(pcm))
    if not result:
        raise AsrError("the transcription stage ended without a transcript")
    return result[0]


def _speaker_hooks(settings: Settings, diarize: bool) -> tuple[Any, Any]:
    """(labeler, voices) for the stage: the role model when built, the voice encoder
    when asked for and installed; a clear note on stderr for what is missing."""
    from server.asr import voiceprint
    from server.asr.roles import unknown_speakers

    voices = None
    if diarize:
        if voiceprint.available():
            voices = voiceprint.Resemblyzer()
        else:
            print("roomscribe transcribe: resemblyzer is not installed; no diarization",
                  file=sys.stderr)
    roles = settings.models_dir / "nlp" / "roles" / "meta.json"
    if not roles.is_file():
        print(f"roomscribe transcribe: no role model in {roles.parent} (roomscribe models "
              "build): speakers stay unknown", file=sys.stderr)
        return unknown_speakers, voices
    from nlp.pipeline import label_speakers

    async def label(segments: Sequence[TranscriptSegment]) -> list[str]:
        return label_speakers(list(segments), settings.models_dir)

    return label, voices


def main(argv: list[str], settings: Settings) -> int:
    p = argparse.ArgumentParser(prog="roomscribe transcribe",
                                description="transcribe a 16 kHz mono WAV file to JSON")
    p.add_argument("wav", type=Path)
    p.add_argument("--engine", choices=ENGINE_CHOICES, default=None,
                   help=f"default: settings (now {settings.asr_engine})")
    p.add_argument("--vocabulary", help="term file, or 'none' (default: settings / bundled)")
    p.add_argument("--events", action="store_true", help="live events to stderr as JSON lines")
    p.add_argument("--diarize", action=argparse.BooleanOptionalAction,
                   default=settings.asr_diarization,
                   help=f"speakers from the voice (default: settings, now "
                        f"{settings.asr_diarization})")
    args = p.parse_args(argv)
    engine_name = args.engine or settings.asr_engine
    if engine_name == "none":
        engine_name = "auto"
    try:
        pcm = read_wav_pcm(args.wav)
        vocabulary = resolve_vocabulary(args.vocabulary if args.vocabulary is not None
                                        else settings.asr_vocabulary)
        engine = build_engine(settings, engine_name, vocabulary=vocabulary)
        labeler, voices = _speaker_hooks(settings, args.diarize)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr") as pool:
            stage = TranscriptionStage(engine, pool, MemoryTranscripts(),
                                       _PrintEvents(args.events), labeler=labeler,
                                       voices=voices)
            transcript = asyncio.run(transcribe_pcm(stage, pcm, args.wav.stem))
    except (AsrError, ValueError) as err:
        print(f"roomscribe transcribe: {err}", file=sys.stderr)
        return 1
    out = transcript.to_dict()
    out["audio_s"] = round(len(pcm) / BYTES_PER_SECOND, 3)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0
