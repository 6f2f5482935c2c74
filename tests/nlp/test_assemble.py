from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nlp.assemble import assemble, load_template, unsupported_sentences
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.errors import InputError
from nlp.orders import extract_orders
from nlp.schema import NoteSentence

VISIT = """[doctor] hi there , how are you ?
[patient] um , i've had a cough for two weeks .
[doctor] any fever or chills ?
[patient] no .
[doctor] your lungs sound clear on exam today .
[doctor] let's start benzonatate 100 mg three times a day .
[patient] thanks ."""

LABELS = {0: "none", 1: "history_of_present_illness", 2: "review_of_systems", 3: "none",
          4: "physical_exam", 5: "none", 6: "none"}


def draft(template: str = "soap"):  # type: ignore[no-untyped-def]
    t = parse_dialogue(VISIT, "enc-1")
    sentences = transcript_sentences(t)
    labels = [LABELS[s.segment.id] for s in sentences]
    speakers = [s.speaker for s in sentences]
    orders = extract_orders(sentences)
    return t, assemble(t, sentences, labels, speakers, orders, template)


def test_sections_in_template_order_with_note_style_and_evidence() -> None:
    t, note = draft()
    text = note.text()
    assert text.index("HISTORY OF PRESENT ILLNESS") < text.index("REVIEW OF SYSTEMS") \
        < text.index("PHYSICAL EXAM") < text.index("PLAN")
    by_key = {s.key: [x.text for x in s.sentences] for s in note.sections}
    assert by_key["history_of_present_illness"] == ["Patient reports a cough for two weeks."]
    assert by_key["review_of_systems"] == ["Denies fever or chills."]
    # the order's sentence is in the plan even though the classifier said "none"
    assert by_key["plan"] == ["Let's start benzonatate 100 mg three times a day."]
    assert [o.name for o in note.orders] == ["benzonatate"]
    ros = next(s for s in note.sections if s.key == "review_of_systems").sentences[0]
    assert [e.segment_ids for e in ros.evidence] == [(2,), (3,)]
    assert unsupported_sentences(note, t) == 0
    assert "hi there" not in text.lower()


def test_unsupported_sentences_catches_invented_or_unanchored_lines() -> None:
    t, note = draft()
    hpi = next(i for i, s in enumerate(note.sections) if s.key == "history_of_present_illness")
    real = note.sections[hpi].sentences[0]
    invented = NoteSentence("Patient reports chest pain.", real.evidence)
    orphan = NoteSentence("Cough for two weeks.", ())
    misquoted = NoteSentence(real.text, (replace(real.evidence[0], quote="blood in stool"),))
    sections = list(note.sections)
    sections[hpi] = replace(sections[hpi], sentences=(real, invented, orphan, misquoted))
    assert unsupported_sentences(replace(note, sections=tuple(sections)), t) == 3


def test_aci_template_and_a_template_file(tmp_path: Path) -> None:
    _, note = draft("aci")
    assert [s.title for s in note.sections][:2] == ["CHIEF COMPLAINT",
                                                    "HISTORY OF PRESENT ILLNESS"]
    custom = tmp_path / "short.toml"
    custom.write_text('[[section]]\nkey = "plan"\ntitle = "TO DO"\n'
                      '[[section]]\nkey = "history_of_present_illness"\ntitle = "STORY"\n')
    name, layout = load_template(str(custom))
    assert name == "short" and layout[0] == ("plan", "TO DO")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[section]]\nkey = "gossip"\ntitle = "X"\n')
    with pytest.raises(InputError, match="unknown section keys"):
        load_template(str(bad))
    with pytest.raises(InputError, match="unknown template"):
        load_template("nope")
