from nlp.faithful import problems, unsupported_words
from nlp.rewrite import HE, PATIENT, SHE, patient_person, rewrite


def test_patient_first_person_becomes_third_person_with_agreement() -> None:
    assert rewrite("uh , i take lisinopril twenty milligrams once a day .", "patient", HE) == \
        "He takes lisinopril 20 mg once daily."
    assert rewrite("i do n't have any chest pain .", "patient", SHE) == \
        "She does not have any chest pain."
    assert rewrite("i've been taking my medications .", "patient", PATIENT) == \
        "The patient has been taking their medications."
    # past tense stays past; a verb whose past is the same word is left alone
    assert rewrite("i was golfing and i hurt my back .", "patient", HE) == \
        "He was golfing and he hurt his back."


def test_clinician_you_becomes_the_patient_and_intentions_read_as_a_plan() -> None:
    assert rewrite("you have , you know , decreased range of motion .", "doctor", HE) == \
        "He has decreased range of motion."
    assert rewrite("so , i'm gon na prescribe you meloxicam fifteen milligrams once a day .",
                   "doctor", HE) == "We will prescribe him meloxicam 15 mg once daily."
    assert rewrite("i want you to take it with food .", "doctor", SHE) == \
        "She should take it with food."
    assert rewrite("your lungs are clear .", "doctor", PATIENT) == "The patient's lungs are clear."


def test_you_after_a_verb_of_thinking_is_the_subject_and_after_let_the_object() -> None:
    assert rewrite("i think you have a lumbar strain from the lifting .", "doctor", HE) == \
        "I think he has a lumbar strain from the lifting."
    assert rewrite("i want to let you know that you are doing well .", "doctor", SHE) == \
        "We will let her know that she is doing well."
    assert rewrite("we can prescribe you some meloxicam .", "doctor", HE) == \
        "We can prescribe him some meloxicam."
    assert rewrite("hey dragon , sharon is a 48 year old female here for finger pain .",
                   "doctor", SHE) == "Sharon is a 48 year old female here for finger pain."


def test_an_unnamed_patient_is_they_after_the_first_mention() -> None:
    assert rewrite("i think i twisted it when i was running .", "patient", PATIENT) == \
        "The patient thinks they twisted it when they were running."


def test_no_rewrite_when_someone_is_still_addressed_or_it_is_a_question() -> None:
    assert rewrite("i feel like you told me that last time .", "patient", HE) is None
    assert rewrite("do you have any chest pain ?", "doctor", HE) is None
    assert rewrite("i take it daily .", "guest_family", HE) is None


def test_other_people_in_the_sentence_keep_the_patient_unambiguous() -> None:
    assert rewrite("my husband , he thinks i snore .", "patient", HE) == \
        "The patient's husband, he thinks the patient snores."


def test_patient_sex_only_when_the_clinician_states_it() -> None:
    assert patient_person(["james is a 57-year-old male with back pain ."]) is HE
    assert patient_person(["hi mrs. jones , how are you ?"]) is SHE
    assert patient_person(["how are you ?", "your wife is a 50 year old woman",
                           "he's a 12 year old boy"]) is PATIENT
    assert patient_person(["how are you today ?"]) is PATIENT


def test_faithfulness_flags_changed_numbers_drugs_sides_and_negation() -> None:
    said = "i take lisinopril twenty milligrams for my left knee"
    assert problems("He takes lisinopril 20 mg for his left knee.", said) == []
    assert problems("He takes lisinopril 10 mg for his left knee.", said) == \
        ["numbers not said: ['10']", "numbers dropped: ['20']"]
    assert "drugs not said: ['aspirin']" in problems("He takes aspirin 20 mg, left.", said)
    assert "sides not said: ['right']" in problems("Lisinopril 20 mg, right knee.", said)
    assert problems("He has chest pain.", "i don't have chest pain") == ["negation dropped"]
    assert problems("No fever.", "i have a fever") == ["negation added"]
    assert problems("Pain for 3 weeks.", "pain for three days") == \
        ["durations not said: ['week']"]
    # "right" that is no side: "right away", "right on the inside", "all right"
    assert problems("Call right away.", "call all right away") == []
    assert problems("On the inside of her knee.", "right on the inside of my knee") == []


def test_unsupported_words_allow_inflections_digits_and_pronouns_only() -> None:
    said = "i feel dizzy when i stand up , about four times a day"
    assert unsupported_words("He feels dizzy when he stands up, about 4 times daily.", said) \
        == set()
    assert unsupported_words("He feels dizzy and faint.", said) == {"and", "faint"}
