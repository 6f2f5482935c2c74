"""Synthesized speech for the real-engine tests (espeak-ng, cached per session)."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from server.lab.speech import Turn, synthesize_dialogue

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (scripts/setup.sh installs it)")


def synthesize(turns: list[Turn], path: Path, voices: dict[str, str],
               gap_s: float = 1.2) -> tuple[bytes, list[Turn]]:
    timed = synthesize_dialogue(turns, path, gap_s=gap_s, voices=voices, words_per_minute=150)
    with wave.open(str(path), "rb") as w:
        pcm = w.readframes(w.getnframes())
    # Trailing silence so the last utterance closes on a pause, as in a real room.
    return pcm + bytes(int(gap_s * 32_000)), timed
