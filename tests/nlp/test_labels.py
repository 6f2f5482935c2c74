from __future__ import annotations

from nlp.align import align_sections
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.labels import MTS_HEADERS, MTS_TO_SECTION, SECTIONS, parse_aci_note, score_section

NOTE = """CHIEF COMPLAINT

Knee pain.

HISTORY OF PRESENT ILLNESS

The patient reports right knee pain after moving boxes last weekend.

ASSESSMENT AND PLAN

Right knee strain.
We will order an x-ray of the right knee."""


def test_every_mts_header_maps_to_a_note_section() -> None:
    assert sorted(MTS_TO_SECTION) == sorted(MTS_HEADERS) and len(MTS_HEADERS) == 20
    assert set(MTS_TO_SECTION.values()) <= set(SECTIONS) - {"none"}
    assert score_section("family_history") == score_section("social_history")


def test_aci_note_headings_and_assessment_plan_split() -> None:
    lines = parse_aci_note(NOTE)
    assert [(x.section, x.text) for x in lines] == [
        ("chief_complaint", "Knee pain."),
        ("history_of_present_illness",
         "The patient reports right knee pain after moving boxes last weekend."),
        ("assessment", "Right knee strain."),
        ("plan", "We will order an x-ray of the right knee.")]


def test_alignment_labels_matching_sentences_and_leaves_small_talk_none() -> None:
    t = parse_dialogue("[doctor] hi , how are you ?\n"
                       "[patient] my right knee hurts since moving boxes last weekend .\n"
                       "[doctor] i'll order an x-ray of your right knee .")
    labels = align_sections(transcript_sentences(t), parse_aci_note(NOTE))
    assert labels == ["none", "history_of_present_illness", "plan"]
