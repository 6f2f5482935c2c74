"""The real resemblyzer encoder tells two synthesized voices apart (short clips, CPU)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from server.asr import voiceprint
from server.asr.diarization import SpeakerClusters, find_change

pytest.importorskip("resemblyzer", reason="resemblyzer is not installed (pip install resemblyzer)")
voices_module = pytest.importorskip(
    "server.lab.voices", reason="server.lab.voices (the synthetic test voices) is unavailable")

LINES = {
    "doctor": ["Good morning, what brings you in today?",
               "How long have you had the pain in your knee?"],
    "patient": ["It started about three weeks ago after a long walk.",
                "I have been taking ibuprofen but it does not help much."],
}


@pytest.fixture(scope="module")
def clips() -> dict[str, list[bytes]]:
    try:
        room = voices_module.voice_set("neural")
    except voices_module.VoiceUnavailable as err:
        pytest.skip(f"neural test voices unavailable: {err}")
    return {who: [voices_module.speak_cached(room[who], line) for line in lines]
            for who, lines in LINES.items()}


def test_same_voice_is_closer_than_another_voice(clips: dict[str, list[bytes]]) -> None:
    vectors = {who: [voiceprint.embed(pcm) for pcm in pcms] for who, pcms in clips.items()}
    flat = [v for vs in vectors.values() for v in vs]
    assert all(v is not None and v.shape == (256,) for v in flat)
    d1, d2 = (np.asarray(v) for v in vectors["doctor"])
    p1, p2 = (np.asarray(v) for v in vectors["patient"])
    within = min(float(d1 @ d2), float(p1 @ p2))
    across = max(float(a @ b) for a, b in itertools.product((d1, d2), (p1, p2)))
    assert within > across + 0.05, (within, across)
    # and the online clusters put them in two speakers
    clusters = SpeakerClusters()
    got = [clusters.add(i, v) for i, v in enumerate((d1, p1, d2, p2))]
    assert got == [0, 1, 0, 1]


def test_too_short_audio_has_no_voice() -> None:
    assert voiceprint.embed(b"") is None
    assert voiceprint.embed(bytes(16000)) is None  # 0.5 s of silence


def test_windows_find_where_the_voice_changes(clips: dict[str, list[bytes]]) -> None:
    doctor, patient = clips["doctor"][1], clips["patient"][0]
    windows = voiceprint.window_embeddings(doctor + patient, start_s=30.0)
    assert windows and windows[0].start_s == 30.0
    assert all(b.start_s - a.start_s == pytest.approx(voiceprint.WINDOW_STEP_S)
               for a, b in itertools.pairwise(windows))
    change = find_change(windows)
    boundary = 30.0 + len(doctor) / 32000
    assert change is not None and abs(change - boundary) < 1.0, (change, boundary)
