from __future__ import annotations

from nlp.notestyle import clean, clinician_statement, patient_statement, question_answer


def test_clean_drops_fillers_stutters_and_leading_discourse_words() -> None:
    assert clean("um , so , i , i have been uh having headaches .") == \
        "i have been having headaches."
    assert clean("okay . n- nothing out of the ordinary .") == "nothing out of the ordinary."


def test_safe_first_person_rewrites() -> None:
    assert patient_statement("i've had a cough for two weeks.") == \
        "Patient reports a cough for two weeks."
    assert patient_statement("i don't have any chest pain.") == "Patient denies chest pain."
    assert patient_statement("i'm allergic to penicillin.") == "Patient is allergic to penicillin."


def test_unsafe_sentences_are_not_rewritten() -> None:
    # another person in the sentence: the rule cannot know whose taking it is
    assert patient_statement("i've been taking my wife's pills.") is None
    assert patient_statement("my knee hurts when i walk.") is None


def test_question_and_one_word_answer() -> None:
    assert question_answer("any fever or chills?", "no.") == "Denies fever or chills."
    assert question_answer("do you have any chest pain?", "yes.") == "Endorses chest pain."
    assert question_answer("how are you?", "no.") is None
    assert question_answer("any fever?", "well, last week maybe.") is None


def test_clinician_sentences_to_the_patient() -> None:
    assert clinician_statement("your lungs are clear.") == "Lungs are clear."
    assert clinician_statement("you have some tenderness over the knee.") == \
        "Patient has some tenderness over the knee."
    assert clinician_statement("you have what your mother had.") is None
    assert clinician_statement("i think it's a sprain.") is None
