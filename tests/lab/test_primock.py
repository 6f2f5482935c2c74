from __future__ import annotations

import wave
from pathlib import Path

from server.lab.primock import (
    Consultation,
    clean_utterance,
    parse_textgrid,
    synthesize_consultation,
)
from server.lab.speech import Turn

GRID = '''File type = "ooTextFile"
Object class = "TextGrid"
xmin = 0
xmax = 6.5
item []:
    item [1]:
        class = "IntervalTier"
        name = "Doctor"
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 1.25
            text = ""
        intervals [2]:
            xmin = 1.25
            xmax = 4.0
            text = "<UNIN/> Any <UNSURE>chest</UNSURE> pain? Say ""no"" if not."
        intervals [3]:
            xmin = 4.0
            xmax = 6.5
            text = ""
'''


def test_textgrid_intervals_and_tags() -> None:
    intervals = parse_textgrid(GRID)
    assert [(a, b) for a, b, _ in intervals] == [(0.0, 1.25), (1.25, 4.0), (4.0, 6.5)]
    assert clean_utterance(intervals[1][2]) == 'Any chest pain? Say "no" if not.'


def test_synthesis_places_speech_at_its_real_time(tmp_path: Path) -> None:
    visit = Consultation("c", (Turn("doctor", "good morning", 1.0, 2.0),
                               Turn("patient", "hello", 3.0, 3.6)), 5.0, "", "")
    out = tmp_path / "c.wav"
    assert synthesize_consultation(visit, out) == 5.0
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 1, 80000)
        pcm = w.readframes(w.getnframes())
    first_second = pcm[: 16000 * 2]
    assert first_second == b"\0" * len(first_second)  # silent until the doctor speaks
    assert any(pcm[16000 * 2: 16000 * 4])
