"""The drafting pipeline end to end: tiny models for the plumbing, the real built
models for behaviour (orders and evidence on the issue's sentences)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nlp.assemble import unsupported_sentences
from nlp.cli import main
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.pipeline import DraftWriter, label_speakers
from nlp.schema import DraftNote, Transcript, TranscriptSegment

VISIT = """[doctor] good morning . what brings you in today ?
[patient] i've had a cough for two weeks . my blood pressure has been high at home .
[doctor] any fever or chills ?
[patient] no .
[doctor] what medications are you taking ?
[patient] i take metformin 500 mg twice a day , and ibuprofen for my knee .
[doctor] okay . your x-ray from last month showed no fracture in the knee .
[doctor] on exam your lungs are clear and your blood pressure is 150 over 92 .
[doctor] so let's start lisinopril 10 mg once a day . i'm going to order a chest x-ray , \
and we'll get a cbc and a bmp .
[patient] okay .
[doctor] i also want you to see cardiology . we don't need an mri for the knee . \
i'm going to switch you from ibuprofen to meloxicam 15 mg daily .
[patient] sounds good .
[doctor] come back in two weeks .
[patient] thank you ."""


def write(tmp_path: Path, text: str = VISIT) -> Path:
    path = tmp_path / "visit.txt"
    path.write_text(text)
    return path


def test_tiny_models_draft_with_evidence_everywhere(tiny_models: Path) -> None:
    writer = DraftWriter.load(tiny_models)
    transcript = parse_dialogue(VISIT, "enc-9")
    note = writer.draft(transcript)
    assert note.encounter_id == "enc-9" and note.template == "soap"
    assert set(note.model_versions) == {"sections", "roles", "orders"}
    assert all(s.evidence for sec in note.sections for s in sec.sentences)
    assert unsupported_sentences(note, transcript) == 0
    assert len(writer.label_speakers(transcript.segments)) == len(transcript.segments)


def test_cli_json_and_text(tiny_models: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert main(["draft", str(path), "--format", "json", "--models", str(tiny_models)]) == 0
    note = DraftNote.from_dict(json.loads(capsys.readouterr().out))
    assert note.sections
    assert main(["draft", str(path), "--template", "aci", "--models", str(tiny_models)]) == 0
    out = capsys.readouterr().out
    assert "ORDERS" in out and "seg " in out


def test_cli_orders_in_the_mediqa_oe_format(tiny_models: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert main(["orders", str(path), "--models", str(tiny_models)]) == 0
    orders = json.loads(capsys.readouterr().out)
    assert all(o["evidence"] for o in orders)
    assert main(["orders", str(path), "--format", "mediqa-oe",
                 "--models", str(tiny_models)]) == 0
    mediqa = json.loads(capsys.readouterr().out)
    assert all(set(o) == {"order_type", "description", "reason", "provenance"} for o in mediqa)
    # turn ids count from 1; every order cites at least one turn
    turns = len(VISIT.splitlines())
    assert all(o["provenance"] and all(1 <= t <= turns for t in o["provenance"]) for o in mediqa)
    assert {o["order_type"] for o in mediqa} <= {"medication", "lab", "imaging", "followup"}


def test_cli_errors_are_clear(tiny_models: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draft", str(tmp_path / "nope.txt"), "--models", str(tiny_models)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["draft", str(write(tmp_path)), "--models", str(tmp_path / "empty")]) == 1
    assert "roomscribe models build" in capsys.readouterr().err
    assert main(["draft", str(write(tmp_path)), "--template", "nope",
                 "--models", str(tiny_models)]) == 1
    assert "unknown template" in capsys.readouterr().err


def test_real_models_orders_and_evidence(real_models: Path) -> None:
    transcript = parse_dialogue(VISIT, "enc-real")
    note = DraftWriter.load(real_models).draft(transcript)
    got = {(o.kind, o.name, o.status) for o in note.orders}
    assert got == {
        ("medication", "lisinopril", "new"), ("imaging", "chest x-ray", "new"),
        ("lab", "cbc", "new"), ("lab", "bmp", "new"), ("referral", "cardiology", "new"),
        ("medication", "ibuprofen", "stop"), ("medication", "meloxicam", "new"),
        ("follow_up", "follow-up", "new"),
    }
    # not orders: the declined MRI, the reported metformin, the x-ray already read
    assert not {n for _, n, _ in got} & {"mri", "metformin", "knee x-ray", "x-ray"}
    for o in note.orders:
        assert o.evidence and all(e.quote for e in o.evidence)
        assert transcript.segments[o.evidence[0].segment_ids[0]].speaker == "doctor"
    assert unsupported_sentences(note, transcript) == 0
    text = note.text()
    assert "The patient has had a cough for 2 weeks." in text
    assert "We will switch the patient from ibuprofen to meloxicam 15 mg daily." in text
    assert "good morning" not in text.lower() and "sounds good" not in text.lower()
    verbatim = DraftWriter.load(real_models).draft(transcript, style="verbatim").text()
    assert "Patient reports a cough for two weeks" in verbatim


def test_real_models_label_speakers_from_diarization_clusters(real_models: Path) -> None:
    transcript = parse_dialogue(VISIT)
    clusters = ["spk_a" if s.speaker == "doctor" else "spk_b" for s in transcript.segments]
    segs = [TranscriptSegment(s.id, s.start_s, s.end_s, s.text, c)
            for s, c in zip(transcript.segments, clusters, strict=True)]
    roles = label_speakers(segs, models_dir=real_models)
    assert roles == [s.speaker for s in transcript.segments]


#: Speech-recognition finals whose roles the ASR stage named from the voices. From the
#: words alone, with these tags as a 0.9 prior, the role model hands "and a urinalysis
#: ...", "what about the pain?" and the oxycodone sentence to the other speaker (seen
#: 2026-12-03, before the drafting stage kept the stage's roles).
VOICED = [("doctor", "so the ct scan shows a five millimeter stone in your right ureter."),
          ("patient", "okay."),
          ("doctor", "i'm going to order a basic metabolic panel."),
          ("doctor", "and a urinalysis, and a urine culture."),
          ("patient", "okay, and what about the pain?"),
          ("doctor", "i'll prescribe oxycodone five milligrams every six hours as needed."),
          ("doctor", "and i want to see you again in one to two weeks."),
          ("patient", "sounds good.")]


def test_roles_the_voices_gave_are_kept_in_the_draft(real_models: Path) -> None:
    writer = DraftWriter.load(real_models)
    segments = tuple(TranscriptSegment(i, 3.0 * i, 3.0 * i + 2.5, text, role)
                     for i, (role, text) in enumerate(VOICED))
    spoken = Transcript("enc-voiced", segments, engine="whisper:whisper-tiny.en")
    assert [s.speaker for s in writer.with_roles(spoken).segments] == [r for r, _ in VOICED]
    names = {o.name.lower() for o in writer.draft(spoken).orders}
    assert {"bmp", "oxycodone", "follow-up"} <= names, names
    # a typed dialogue's tags are evidence only, and unlabelled finals get roles
    typed = writer.with_roles(replace(spoken, engine="text"))
    assert all(s.speaker in ("doctor", "patient", "other") for s in typed.segments)
    unlabelled = replace(spoken, segments=tuple(replace(s, speaker="unknown") for s in segments))
    assert "unknown" not in {s.speaker for s in writer.with_roles(unlabelled).segments}


def test_cli_reads_a_transcript_json_with_diarization_labels(
        tiny_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = parse_dialogue(VISIT, "enc-json")
    segs = tuple(TranscriptSegment(s.id, s.start_s, s.end_s, s.text,
                                   "SPEAKER_00" if s.speaker == "doctor" else "SPEAKER_01")
                 for s in t.segments)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"encounter_id": "enc-json", "engine": "whisper",
                                "segments": [s.to_dict() for s in segs]}))
    assert main(["draft", str(path), "--format", "json", "--models", str(tiny_models)]) == 0
    note = DraftNote.from_dict(json.loads(capsys.readouterr().out))
    assert note.encounter_id == "enc-json"
    evidence = [e for sec in note.sections for s in sec.sentences for e in s.evidence]
    assert evidence and all(e.end_s > e.start_s for e in evidence)


def test_a_growing_transcript_only_sends_what_is_new_through_the_models(
        tiny_models: Path) -> None:
    """Drafting the visit so far, then the whole visit: only the new sentences and the
    one whose context (the sentence after it) changed go through the section model,
    although every sentence moved to another part of the longer visit; the note is the
    one a cold writer drafts."""
    full = parse_dialogue(VISIT, "enc-grow")
    cold = DraftWriter.load(tiny_models).draft(full)
    warm = DraftWriter.load(tiny_models)
    start = replace(full, segments=full.segments[:-2])
    warm.draft(start)
    clf = warm._sections  # type: ignore[attr-defined]
    computed_before, hits_before = clf.computed, clf.memo_hits
    again = warm.draft(full)
    new = clf.computed - computed_before
    n_sentences = clf.memo_hits - hits_before + new
    added = len(transcript_sentences(full)) - len(transcript_sentences(start))
    assert added >= 2 and new == added + 1
    assert n_sentences == len(transcript_sentences(full))
    assert again.to_dict() == cold.to_dict()
    before = clf.computed
    warm.draft(full)
    assert clf.computed == before  # nothing new: every answer from memory


def test_sentence_split_turns_keep_the_clinicians_orders(tiny_models: Path) -> None:
    """SIMORD-style input: a clinician's turn split into sentences, one a line. However
    the role model repairs the tags, an order in a clinician's line stays a candidate."""
    from nlp.encoder import TextClassifier
    from nlp.roles import RoleLabeller

    root = tiny_models / "nlp"
    writer = DraftWriter(TextClassifier.load(root / "sections"),
                         RoleLabeller.load(root / "roles"))  # the cue rules decide
    dialogue = ("[doctor] so for your blood pressure .\n[doctor] it is still high .\n"
                "[doctor] let's start lisinopril 10 mg once a day .\n[patient] okay .\n"
                "[patient] i also take aspirin .")
    got = writer.orders(parse_dialogue(dialogue, "simord-like"))
    assert [(o.name, o.reason, [e.segment_ids for e in o.evidence]) for o in got] == [
        ("lisinopril", "blood pressure", [(0,), (2,)])]
