"""The after-visit summary: orders and spoken safety-nets in plain words, with evidence.

Dialogues are ACI-BENCH style (tokenised, one turn a line) and PriMock57 style
(British GP safety-netting); orders come from the cue rules (no model needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.instructions import order_instruction, patient_instructions, unsupported
from nlp.orders import extract_orders
from nlp.safetynet import red_flag, self_care
from nlp.schema import Evidence, OrderIntent, PatientInstruction

VISIT = """[doctor] good morning . what brings you in today ?
[patient] i've had a cough for two weeks . my blood pressure has been high at home .
[doctor] what medications are you taking ?
[patient] i take metformin 500 mg twice a day , and ibuprofen for my knee .
[doctor] so let's start lisinopril 10 mg once a day . i'm going to order an x-ray of your \
left knee , and we'll get a hemoglobin a1c .
[doctor] i also want you to see cardiology . we don't need an mri for the knee . \
i'm going to switch you from ibuprofen to meloxicam 15 mg daily .
[doctor] let's continue the metformin 500 mg twice a day .
[doctor] i want you to ice your knee twice a day for twenty minutes .
[doctor] come back in two weeks .
[doctor] if you notice any chest pain or shortness of breath , please call us or go to the \
emergency room .
[patient] thank you ."""


def summary(dialogue: str, label: str = "plan",
            orders: Sequence[OrderIntent] | None = None) -> tuple[PatientInstruction, ...]:
    sentences = transcript_sentences(parse_dialogue(dialogue))
    found = extract_orders(sentences) if orders is None else orders
    return patient_instructions(sentences, [label] * len(sentences),
                                [s.speaker for s in sentences], found)


def lines(dialogue: str, label: str = "plan") -> list[tuple[str, str]]:
    return [(i.kind, i.text) for i in summary(dialogue, label)]


def ev(quote: str, *ids: int) -> Evidence:
    return Evidence(ids or (0,), 0.0, 1.0, quote)


def test_a_visit_becomes_a_plain_list_in_the_second_person() -> None:
    assert lines(VISIT) == [
        ("medication", "Start lisinopril 10 mg once a day."),
        ("medication", "Stop taking ibuprofen."),
        ("medication", "Start meloxicam 15 mg once a day."),
        ("medication", "Keep taking metformin 500 mg twice a day."),
        ("test", "Get an x-ray of your left knee."),
        ("test", "Get a blood test: hemoglobin A1c."),
        ("referral", "See cardiology (referral)."),
        ("other", "Ice your knee twice a day for twenty minutes."),
        ("follow_up", "Come back in 2 weeks."),
        ("warning", "Call us or go to the emergency room if you notice any chest pain or "
                    "shortness of breath."),
    ]


def test_every_line_rests_on_the_sentence_it_came_from() -> None:
    found = summary(VISIT)
    assert all(i.evidence for i in found)
    assert all(not unsupported(i.text, i.evidence) for i in found)
    by_text = {i.text: i for i in found}
    xray = by_text["Get an x-ray of your left knee."]
    assert any("x-ray of your left knee" in e.quote for e in xray.evidence)
    flag = by_text["Call us or go to the emergency room if you notice any chest pain or "
                   "shortness of breath."]
    assert [e.segment_ids for e in flag.evidence] == [(9,)]


def test_declined_and_conditional_orders_make_no_instruction() -> None:
    found = lines("""[doctor] we don't need an mri for the knee .
[doctor] let's hold off on the antibiotics for now .
[doctor] come back in a week , and if it's not better , we'll get a ct scan .""")
    assert found == [("follow_up", "Come back in 1 week.")]


def test_status_words_and_a_brand_name_as_said() -> None:
    found = lines("""[doctor] i want to increase your lasix to 80 mg once a day .
[doctor] let's stop the aspirin .
[doctor] keep taking your zestril 20 mg once a day .""")
    assert found == [("medication", "Change your dose: lasix 80 mg once a day."),
                     ("medication", "Stop taking aspirin."),
                     ("medication", "Keep taking zestril 20 mg once a day.")]
    # the generic the vocabulary linked the brand to is never stated
    assert not any("furosemide" in t or "lisinopril" in t for _, t in found)


def test_spoken_numbers_pass_and_a_number_never_said_does_not() -> None:
    [line] = lines("[doctor] i'm going to prescribe meloxicam fifteen milligrams once a day .")
    assert line == ("medication", "Start meloxicam fifteen milligrams once a day.")
    # the order says 20 mg, the clinician said ten: the template gives way to her words
    order = OrderIntent("medication", "lisinopril", dose="20", unit="mg",
                        frequency="once a day", spoken="lisinopril",
                        evidence=(ev("let's start lisinopril ten milligrams once a day ."),))
    assert order_instruction(order).text == "Let's start lisinopril ten milligrams once a day."


def test_an_uncertain_order_keeps_its_caution_and_no_other_drug_name() -> None:
    unknown = OrderIntent("medication", "xylotrex", dose="10", unit="mg", spoken="xylotrex",
                          verify="'xylotrex' is not in the drug vocabulary",
                          evidence=(ev("let's start xylotrex 10 mg ."),))
    line = order_instruction(unknown)
    assert (line.text, line.verify) == ("Start xylotrex 10 mg.", unknown.verify)
    # a generic the evidence never says is not written: the spoken sentence stands instead
    linked = OrderIntent("medication", "lisinopril", dose="10", unit="mg",
                         verify="the recogniser was unsure it heard 'zestril' (p=0.41)",
                         evidence=(ev("so we'll start the zestril 10 mg today ."),))
    line = order_instruction(linked)
    assert "lisinopril" not in line.text.lower() and line.verify == linked.verify
    assert line.text == "We'll start the zestril 10 mg today."


def test_laterality_is_stated_only_where_the_site_was_said_with_it() -> None:
    merged = OrderIntent("imaging", "chest x-ray", body_site="chest", laterality="left",
                         evidence=(ev("i'm going to order a chest x-ray ."),
                                   ev("and an x-ray of your left knee .")))
    assert order_instruction(merged).text == "Get an x-ray of your chest."
    both = OrderIntent("imaging", "knee x-ray", body_site="knee", laterality="bilateral",
                       evidence=(ev("let's get x-rays of both knees ."),))
    assert order_instruction(both).text == "Get an x-ray of both knees."


@pytest.mark.parametrize(("text", "quote", "missing"), [
    ("Start lisinopril 20 mg once a day.", "let's start lisinopril ten milligrams daily",
     ["numbers not said: ['20']"]),
    ("Start lisinopril 10 mg once a day.", "let's start lisinopril ten milligrams daily", []),
    ("Keep taking metformin 1,000 mg twice a day.",
     "continue metformin one thousand milligrams twice a day", []),
    ("Take it for 10 days.", "take it for ten weeks", ["durations not said: ['day']"]),
    ("Come back in 1 week.", "come back in a week", []),
    ("Get an x-ray of your right knee.", "x-ray of your left knee", ["sides not said: ['right']"]),
    ("Do not walk on it.", "walk on it as much as you can", ["negation added"]),
    ("Start aspirin.", "start the baby aspirin", []),
    ("Start warfarin.", "start the aspirin", ["drug_names not said: ['warfarin']"]),
    ("Call us right away if you have chest pain.", "call us right away if chest pain", []),
])
def test_the_faithfulness_rule(text: str, quote: str, missing: list[str]) -> None:
    assert unsupported(text, [ev(quote)]) == missing


@pytest.mark.parametrize(("said", "plain"), [
    # ACI-BENCH
    ("if your symptoms worsen, just give me a call, okay?",
     "Give me a call if your symptoms worsen."),
    ("and call me if your weight starts to go up, okay?",
     "Call me if your weight starts to go up."),
    ("and then again please if it gets worse please don't hesitate to call me and come in "
     "sooner", "Call me and come in sooner if it gets worse."),
    # PriMock57
    ("if you're still not better next week, I want you to come back and see me.",
     "Come back and see me if you're still not better next week."),
    ("But you know, if you have any chest pains, or change in bowel habits, do get in touch "
     "with us.", "Get in touch with us if you have any chest pains, or change in bowel habits."),
    ("If things are getting worse in the next two weeks, call us before hand.",
     "Call us before hand if things are getting worse in the next two weeks."),
    # a negation it would drop: the sentence stays whole
    ("if you feel fine, don't come back.", "If you feel fine, don't come back."),
])
def test_red_flags_move_the_condition_after_the_action(said: str, plain: str) -> None:
    assert red_flag(said) == plain


@pytest.mark.parametrize("said", [
    "give me a call if you have any questions, okay?",
    "you know to call me if, if you need anything.",
    "if you don't mind, i'm gon na go ahead and examine you.",
    "if it's too expensive, just let me know.",
    "Do that straight away and if mum can call.",
    "let's see if the medicine helps and come back in two weeks.",
    "if it's not better, we'll get an mri.",
    "call me if you get a chance?",
    "i want you to call me if you have.",  # the symptom cut off: nothing to watch for
])
def test_courtesy_and_conditional_plans_are_no_red_flags(said: str) -> None:
    assert red_flag(said) is None


def test_red_flags_come_only_from_the_clinician_and_only_once() -> None:
    found = lines("""[patient] if it gets worse i'll call you .
[doctor] if it gets worse , call us .
[doctor] and if it gets worse , call us .""")
    assert found == [("warning", "Call us if it gets worse.")]


def test_self_care_advice_comes_from_the_plan_and_names_no_drug() -> None:
    assert self_care("I want you to ice your knee twice a day.") == "Ice your knee twice a day."
    assert self_care("i really want you to watch your salt intake, okay?") == \
        "Watch your salt intake."
    assert self_care("I want you to use my general exam template.") is None  # dictation
    assert self_care("make sure you take it all, even if you start feeling better.") is None
    advice = "[doctor] i want you to drink plenty of fluids ."
    assert lines(advice) == [("other", "Drink plenty of fluids.")]
    assert lines(advice, label="history_of_present_illness") == []
    # a drug the order list lacks never enters the summary, not even as advice
    assert summary("[doctor] i want you to use some advil for the pain .", orders=[]) == ()


def test_no_duplicates_and_nothing_from_an_empty_visit() -> None:
    twice = """[doctor] come back in two weeks .
[doctor] so again , come back in two weeks ."""
    assert lines(twice) == [("follow_up", "Come back in 2 weeks.")]
    assert summary("[doctor] hello .\n[patient] hi .") == ()
