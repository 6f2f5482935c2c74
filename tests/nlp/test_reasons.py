from __future__ import annotations

from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.reasons import find_reason


def sentences(dialogue: str):  # type: ignore[no-untyped-def]
    return transcript_sentences(parse_dialogue(dialogue))


def test_reason_beside_the_order() -> None:
    s = sentences("[doctor] let's start amlodipine 5 mg for your blood pressure .")
    assert find_reason(s, 0, "5 mg for your blood pressure .") == ("blood pressure", 0)


def test_a_duration_is_no_reason() -> None:
    s = sentences("[doctor] take amoxicillin for ten days .")
    assert find_reason(s, 0, "for ten days .") is None


def test_reason_from_the_problem_heading_before() -> None:
    s = sentences("[doctor] so for your second problem of your type i diabetes , okay .\n"
                  "[patient] okay .\n"
                  "[doctor] i want to order a hemoglobin a1c .")
    assert find_reason(s, 2, ".") == ("type i diabetes", 0)
    assert find_reason(s, 2, ".", headings=False) is None


def test_the_patient_gives_no_heading() -> None:
    s = sentences("[patient] for your first problem , your back pain .\n"
                  "[doctor] let's get an x-ray .")
    assert find_reason(s, 1, ".") is None


def test_the_presenting_problem_when_nothing_closer_is_said() -> None:
    s = sentences("[doctor] she is here today for left shoulder pain .\n"
                  "[patient] i'm here for my back .\n"
                  "[doctor] let's get an x-ray .")
    assert find_reason(s, 2, ".") == ("left shoulder pain", 0)


def test_the_diagnosis_the_clinician_named() -> None:
    s = sentences("[doctor] she is here today for knee pain .\n"
                  "[doctor] you have what we call a medial collateral ligament strain .\n"
                  "[doctor] let's get an mri .")
    assert find_reason(s, 2, ".") == ("medial collateral ligament strain", 1)
