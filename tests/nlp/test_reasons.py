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


def test_a_negated_finding_is_no_reason() -> None:
    s = sentences("[doctor] she is here today for knee pain .\n"
                  "[doctor] the x-ray shows no signs of fracture .\n"
                  "[doctor] let's get an mri .")
    assert find_reason(s, 2, ".") == ("knee pain", 0)


def test_the_diagnosis_given_as_an_impression_or_standpoint() -> None:
    s = sentences("[doctor] my impression , alcohol use disorder .\n"
                  "[doctor] she would like to start naltrexone .")
    assert find_reason(s, 1, ".") == ("alcohol use disorder", 0)
    s = sentences("[doctor] from an atrial fibrillation standpoint , your rate is good .\n"
                  "[doctor] we'll continue your metoprolol 25 milligrams twice a day .")
    assert find_reason(s, 1, "25 milligrams twice a day .") == ("atrial fibrillation", 0)


def test_the_heading_nearest_the_order_in_a_long_turn() -> None:
    s = sentences("[doctor] for your first problem the back pain take naprosyn and for the "
                  "second problem the diabetes i'd like to order another hemoglobin a1c today")
    assert find_reason(s, 0, "today") == ("diabetes", 0)
    assert find_reason(s, 0, "and for the second problem")[0] == "back pain"


def test_i_think_you_are_is_no_diagnosis() -> None:
    s = sentences("[doctor] i think you're aware of that .\n"
                  "[doctor] let's get an x-ray .")
    assert find_reason(s, 1, ".") is None
