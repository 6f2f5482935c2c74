from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.intents import INTENTS, IntentModel, candidate_input, plan_statuses, template_examples
from nlp.orders import Candidate, extract_orders, sentence_candidates

NOTE = """ASSESSMENT AND PLAN

Acute lumbar strain.
• Additional Testing: If he continues to have pain, we will obtain an MRI.
• Medical Treatment: Initiate meloxicam 15 mg once daily.
• Specialist Referrals: We will refer him to physical therapy.

Diabetes type 2.
• Medical Reasoning: His recent hemoglobin A1c was 8.
• Medical Treatment: Increase metformin to 1000 mg twice daily. Continue lisinopril 20 mg.
• Medical Treatment: Discontinue ibuprofen.

INSTRUCTIONS

The patient will follow-up in 2 weeks.
"""


def test_the_plan_of_a_reference_note_gives_each_name_its_status() -> None:
    got = plan_statuses(NOTE)
    assert got[("medication", "meloxicam")] == "new"
    assert got[("referral", "physical therapy")] == "new"
    assert got[("medication", "metformin")] == "change"
    assert got[("medication", "lisinopril")] == "continue"
    assert got[("medication", "ibuprofen")] == "stop"
    assert got[("imaging", "mri")] == "none"  # conditional
    assert got[("follow_up", "follow up")] == "new"


def test_generated_examples_cover_every_intent_with_the_name_marked() -> None:
    examples = template_examples(400, seed=3)
    assert len(examples) > 350
    counts = Counter(INTENTS[e.label] for e in examples)
    assert set(counts) == set(INTENTS) and min(counts.values()) > 20
    assert all("[" in e.text and "]" in e.text for e in examples)
    assert template_examples(50, seed=3) == template_examples(50, seed=3)


def test_candidate_input_marks_the_name_and_keeps_the_sentence_before() -> None:
    [c] = sentence_candidates("Let's start lisinopril 10 mg once a day.")
    c.previous = "Your blood pressure is high."
    text, pair = candidate_input(c)
    assert text == "rules say new. medication: let's start [ lisinopril ] 10 mg once a day ."
    assert pair == "Your blood pressure is high."


def test_the_classifier_decides_which_candidates_are_orders() -> None:
    sentences = transcript_sentences(parse_dialogue(
        "[doctor] let's start lisinopril 10 mg once a day and get a cbc .\n"
        "[patient] i take metformin .\n"
        "[doctor] we don't need an mri ."))
    seen: list[str] = []

    def classify(candidates: Sequence[Candidate]) -> list[str | None]:
        seen.extend(c.mention.name for c in candidates)
        return ["continue" if c.mention.kind == "medication" else None for c in candidates]

    got = extract_orders(sentences, classify=classify)
    assert seen == ["lisinopril", "cbc", "mri"]  # the patient's words are no candidates
    assert [(o.name, o.status, o.dose) for o in got] == [("lisinopril", "continue", "10")]


def test_tiny_intent_model_loads_and_answers_for_each_candidate(tiny_models: Path) -> None:
    model = IntentModel.load(tiny_models / "nlp" / "orders")
    assert model.classifier.labels == INTENTS
    candidates = sentence_candidates("We'll get a CBC and a BMP, and stop the ibuprofen.")
    out = model(candidates)
    assert len(out) == 3 and all(x is None or x in INTENTS[1:] for x in out)
    info = json.loads((tiny_models / "nlp" / "orders" / "build.json").read_text())
    assert info["train_examples"] > 0
