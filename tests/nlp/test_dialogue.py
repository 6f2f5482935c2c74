from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.dialogue import load_transcript, parse_dialogue, split_sentences, transcript_sentences
from nlp.errors import InputError
from nlp.schema import Transcript, TranscriptSegment


def test_aci_text_becomes_one_segment_per_turn_with_synthetic_times() -> None:
    t = parse_dialogue("[doctor] hi , how are you ?\n[patient] fine .\n"
                       "[patient_guest] he's been coughing .", "e1")
    assert [s.speaker for s in t.segments] == ["doctor", "patient", "other"]
    assert [s.id for s in t.segments] == [0, 1, 2]
    first, second, _ = t.segments
    assert first.start_s == 0.0 and first.end_s == 2.4  # 6 words at 2.5 words/s
    assert second.start_s == pytest.approx(first.end_s + 0.5)


def test_mts_colon_tags_and_continuation_lines() -> None:
    t = parse_dialogue("Doctor: Any allergies?\nPatient: No.\nnone at all.")
    assert [(s.speaker, s.text) for s in t.segments] == [
        ("doctor", "Any allergies?"), ("patient", "No. none at all.")]


def test_untagged_text_is_refused() -> None:
    with pytest.raises(InputError, match="speaker tags"):
        parse_dialogue("just some words\nand more")
    with pytest.raises(InputError, match="no turns"):
        parse_dialogue("\n\n")


def test_load_transcript_json_and_errors(tmp_path: Path) -> None:
    t = Transcript("enc", (TranscriptSegment(0, 0.0, 1.0, "hello there", "spk0"),))
    path = tmp_path / "t.json"
    path.write_text(json.dumps(t.to_dict()))
    assert load_transcript(path) == t
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a transcript JSON"):
        load_transcript(bad)
    with pytest.raises(InputError, match="cannot read"):
        load_transcript(tmp_path / "missing.txt")


def test_sentences_keep_decimals_and_know_their_segment() -> None:
    assert split_sentences("it's 2.5 mg . take it daily ? yes") == [
        "it's 2.5 mg.", "take it daily?", "yes"]
    sentences = transcript_sentences(parse_dialogue("[doctor] one . two .\n[patient] three ."))
    assert [(s.segment.id, s.turn_position, s.text) for s in sentences] == [
        (0, 0, "one."), (0, 1, "two."), (1, 0, "three.")]
