from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nlp.assemble import RewriteCounts, assemble, load_template, unsupported_sentences
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.errors import InputError
from nlp.orders import extract_orders
from nlp.schema import DraftNote, NoteSentence

VISIT = """[doctor] hi there , how are you ?
[patient] um , i've had a cough for two weeks .
[doctor] any fever or chills ?
[patient] no .
[doctor] your lungs sound clear on exam today .
[doctor] let's start benzonatate 100 mg three times a day .
[patient] thanks ."""

LABELS = {0: "none", 1: "history_of_present_illness", 2: "review_of_systems", 3: "none",
          4: "physical_exam", 5: "none", 6: "none"}


def draft(template: str = "soap", style: str = "concise",  # type: ignore[no-untyped-def]
          counts: RewriteCounts | None = None, visit: str = VISIT,
          labels: dict[int, str] | None = None):
    t = parse_dialogue(visit, "enc-1")
    sentences = transcript_sentences(t)
    by_id = LABELS if labels is None else labels
    section = [by_id[s.segment.id] for s in sentences]
    speakers = [s.speaker for s in sentences]
    orders = extract_orders(sentences)
    return t, assemble(t, sentences, section, speakers, orders, template, style=style,
                       counts=counts)


def by_key(note: DraftNote) -> dict[str, list[str]]:
    return {s.key: [x.text for x in s.sentences] for s in note.sections if s.sentences}


def test_sections_in_template_order_with_note_style_and_evidence() -> None:
    t, note = draft()
    text = note.text()
    assert text.index("HISTORY OF PRESENT ILLNESS") < text.index("REVIEW OF SYSTEMS") \
        < text.index("PHYSICAL EXAM") < text.index("PLAN")
    sections = by_key(note)
    assert sections["history_of_present_illness"] == ["The patient has had a cough for 2 weeks."]
    assert sections["review_of_systems"] == ["Denies fever or chills."]
    assert sections["physical_exam"] == ["The patient's lungs sound clear on exam today."]
    # the order's sentence is in the plan even though the classifier said "none"
    assert sections["plan"] == ["We will start benzonatate 100 mg 3 times a day."]
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


def test_the_verbatim_style_keeps_the_spoken_sentences() -> None:
    counts = RewriteCounts()
    t, note = draft(style="verbatim", counts=counts)
    sections = by_key(note)
    assert sections["history_of_present_illness"] == ["Patient reports a cough for two weeks."]
    assert sections["plan"] == ["Let's start benzonatate 100 mg three times a day."]
    assert (counts.rewritten, counts.as_spoken) == (0, 3)
    assert unsupported_sentences(note, t) == 0


REPEATED = """[doctor] how is the knee ?
[patient] my left knee has been hurting for three days .
[patient] yeah my left knee has been hurting for about three days now .
[doctor] i want you to ice your left knee twice a day .
[patient] i think i twisted it when i was running , i felt a pop and i really thought \
i was gonna fall over ."""
REPEATED_LABELS = dict.fromkeys(range(5), "history_of_present_illness") | {3: "plan"}


def test_concise_says_a_fact_once_and_detailed_keeps_every_sentence() -> None:
    counts = RewriteCounts()
    t, concise = draft(style="concise", counts=counts, visit=REPEATED, labels=REPEATED_LABELS)
    hpi = by_key(concise)["history_of_present_illness"]
    assert hpi == ["The patient's left knee has been hurting for 3 days.",
                   "The patient thinks they twisted it when they were running, they felt a pop "
                   "and they thought they were going to fall over."]
    assert counts.repeats == 1
    _, detailed = draft(style="detailed", visit=REPEATED, labels=REPEATED_LABELS)
    assert by_key(detailed)["history_of_present_illness"][1] == \
        "The patient's left knee has been hurting for about 3 days now."
    assert by_key(concise)["plan"] == ["The patient should ice their left knee twice daily."]
    for note in (concise, detailed):
        assert unsupported_sentences(note, t) == 0
        assert not any("I " in x.text or " my " in x.text.lower()
                       for s in note.sections for x in s.sentences
                       if not x.text.startswith("The patient states"))


def test_an_unknown_style_is_refused() -> None:
    with pytest.raises(InputError, match="unknown note style"):
        draft(style="poetic")


def test_dictation_to_the_record_system_is_no_note_sentence() -> None:
    visit = """[doctor] hey dragon , show me the chest x-ray .
[doctor] show me the blood pressure readings .
[doctor] your chest x-ray shows no pneumonia ."""
    _, note = draft(visit=visit, labels=dict.fromkeys(range(3), "results"))
    assert by_key(note)["results"] == ["The patient's chest x-ray shows no pneumonia."]
