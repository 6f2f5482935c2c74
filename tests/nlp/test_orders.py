from __future__ import annotations

from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.orders import extract_orders, normalise_name
from nlp.schema import OrderIntent


def orders(dialogue: str) -> list[OrderIntent]:
    return extract_orders(transcript_sentences(parse_dialogue(dialogue)))


def keys(dialogue: str) -> set[tuple[str, str, str]]:
    return {(o.kind, o.name, o.status) for o in orders(dialogue)}


def test_start_a_medication_with_dose_and_frequency() -> None:
    [o] = orders("[doctor] let's start lisinopril 10 mg once a day .")
    assert (o.kind, o.name, o.status) == ("medication", "lisinopril", "new")
    assert (o.dose, o.unit, o.frequency) == ("10", "mg", "once a day")


def test_a_dose_change_takes_the_new_dose() -> None:
    [o] = orders("[doctor] i'd like to increase the lisinopril from 10 mg to 20 mg a day .")
    assert (o.name, o.status, o.dose, o.unit) == ("lisinopril", "change", "20", "mg")


def test_imaging_lab_referral_follow_up() -> None:
    [xray] = orders("[doctor] i'm going to order a chest x-ray .")
    assert (xray.kind, xray.name, xray.body_site) == ("imaging", "chest x-ray", "chest")
    assert keys("[doctor] we'll get a cbc and a bmp .") == {("lab", "cbc", "new"),
                                                            ("lab", "bmp", "new")}
    [ref] = orders("[doctor] i want you to see cardiology .")
    assert (ref.kind, ref.specialty) == ("referral", "cardiology")
    [fu] = orders("[doctor] come back in two weeks .")
    assert (fu.kind, fu.interval) == ("follow_up", "2 weeks")


def test_follow_up_said_interval_first() -> None:
    [fu] = orders("[doctor] in three weeks i'd like you to return .")
    assert (fu.kind, fu.interval) == ("follow_up", "3 weeks")
    [fu] = orders("[doctor] we'll be seeing you again in two weeks .")
    assert (fu.kind, fu.interval) == ("follow_up", "2 weeks")
    # without an interval a follow-up is no candidate (see nlp.orders._follow_ups)
    assert orders("[doctor] the nurse will help you schedule a follow-up appointment .") == []


def test_how_to_take_it_said_next_is_part_of_the_order() -> None:
    [o] = orders("[doctor] we'll get you some motrin .\n"
                 "[doctor] uh , we'll give you 600 milligrams every six hours .\n"
                 "[patient] okay .\n"
                 "[doctor] and a chest x-ray today .\n"
                 "[doctor] take it twice a day .")
    assert o.name == "ibuprofen"
    assert o.description == "motrin 600 milligrams every six hours"
    assert [e.segment_ids for e in o.evidence] == [(0,), (1,)]  # not past the x-ray
    # a frequency alone is other advice, not the drug's dose
    [o] = orders("[doctor] let's start some meloxicam .\n"
                 "[doctor] and ice your knee twice a day for twenty minutes .")
    assert (o.description, len(o.evidence)) == ("meloxicam", 1)


def test_a_dose_said_before_the_name_keeps_its_number() -> None:
    [o] = orders("[doctor] let's do 600 milligrams of ibuprofen three times a day .")
    assert o.description.startswith("600 milligrams of ibuprofen")


def test_switch_is_a_stop_and_a_new_order() -> None:
    got = orders("[doctor] i'm going to switch you from ibuprofen to meloxicam 15 mg daily .")
    assert {(o.name, o.status) for o in got} == {("ibuprofen", "stop"), ("meloxicam", "new")}
    meloxicam = next(o for o in got if o.name == "meloxicam")
    assert (meloxicam.dose, meloxicam.unit) == ("15", "mg")
    ibuprofen = next(o for o in got if o.name == "ibuprofen")
    assert ibuprofen.dose == ""  # the dose belongs to the new drug


def test_change_continue_and_brand_names() -> None:
    assert keys("[doctor] i want to increase your lasix to 80 mg once a day .") == {
        ("medication", "furosemide", "change")}
    assert keys("[doctor] let's continue the metformin 500 mg twice a day .") == {
        ("medication", "metformin", "continue")}


def test_declined_reported_and_resulted_are_not_orders() -> None:
    assert orders("[doctor] we don't need an mri .") == []
    assert orders("[doctor] let's hold off on the mri for now .") == []
    assert orders("[patient] i take metformin 500 mg twice a day .") == []
    assert orders("[doctor] are you taking your metformin ?") == []
    assert orders("[doctor] your chest x-ray showed no pneumonia .") == []
    assert orders("[doctor] so we reviewed your a1c , it came back at 8 .") == []


def test_conditional_tentative_and_purpose_clauses_are_not_orders() -> None:
    assert keys("[doctor] come back in a week , and if it's not better , we'll get an mri .") \
        == {("follow_up", "follow-up", "new")}
    assert orders("[doctor] if the pain persists we could do a steroid injection .") == []
    assert keys("[doctor] i'm gon na order a bmp to make sure your kidney function is ok .") \
        == {("lab", "bmp", "new")}
    assert orders("[doctor] i don't think you need to follow up with the surgeon .") == []


def test_spoken_forms_gon_na_and_stop_by() -> None:
    assert keys("[doctor] i'm gon na write you a consult to nutrition .") == {
        ("referral", "nutrition", "new")}
    assert keys("[doctor] stop by the front desk and schedule your colonoscopy .") == {
        ("procedure", "colonoscopy", "new")}


def test_same_order_twice_is_merged_with_both_evidence_spans() -> None:
    got = orders("[doctor] we'll get an echocardiogram .\n[patient] okay .\n"
                 "[doctor] hey dragon , order an echocardiogram .")
    [echo] = got
    assert [e.segment_ids for e in echo.evidence] == [(0,), (2,)]
    assert echo.evidence[0].quote == "we'll get an echocardiogram."
    assert echo.evidence[1].start_s > echo.evidence[0].end_s


def test_normalised_names_for_matching() -> None:
    assert normalise_name("imaging", "Knee X-Ray") == "x ray"
    assert normalise_name("lab", "Hemoglobin A1C") == "hemoglobin a1c"


def test_description_reason_codes_and_provenance() -> None:
    got = orders("[doctor] so , for your first problem of your shortness of breath , i think "
                 "you are in heart failure .\n"
                 "[doctor] i want to put you on some lasix , 40 milligrams a day .\n"
                 "[doctor] and i want you to stop the advil .")
    lasix = next(o for o in got if o.name == "furosemide")
    assert (lasix.spoken, lasix.description, lasix.reason) == (
        "lasix", "lasix 40 milligrams a day", "shortness of breath")
    assert (lasix.code_system, lasix.code, lasix.verify) == (
        "https://go.drugbank.com/drugs", "DB00695", "")
    # the order rests on the sentence that orders it and the one that gives its reason
    assert [e.segment_ids for e in lasix.evidence] == [(0,), (1,)]
    advil = next(o for o in got if o.name == "ibuprofen")
    assert (advil.status, advil.description) == ("stop", "stop advil")


def test_a_drug_the_hand_lexicon_lacks_comes_from_the_vocabulary() -> None:
    [o] = orders("[doctor] let's start cardura four milligrams once a day .")
    assert (o.name, o.spoken, o.code) == ("doxazosin", "cardura", "DB00590")
    assert o.description == "cardura four milligrams once a day"


def test_a_drug_name_outside_the_vocabulary_is_drafted_for_verification() -> None:
    [o] = orders("[doctor] let's start zanoprolol 10 mg daily .")
    assert o.name == "zanoprolol" and o.code == ""
    assert "not in the drug vocabulary" in o.verify


def test_a_follow_up_takes_no_reason_from_the_problem_heading() -> None:
    got = orders("[doctor] for your third problem , your hypertension .\n"
                 "[doctor] come back in two weeks .")
    [fu] = [o for o in got if o.kind == "follow_up"]
    assert (fu.description, fu.reason) == ("come back in two weeks", "")


def test_a_drug_name_the_recogniser_was_unsure_of_is_drafted_for_verification() -> None:
    from nlp.schema import Transcript, TranscriptSegment, Word

    words = tuple(Word(w, i * 0.3, i * 0.3 + 0.3, p) for i, (w, p) in enumerate(
        [("Let's", 0.98), ("start", 0.97), ("insulin", 0.31), ("today.", 0.95)]))
    seg = TranscriptSegment(0, 0.0, 1.2, "Let's start insulin today.", "doctor", words)
    [o] = extract_orders(transcript_sentences(Transcript("e", (seg,))))
    assert o.name == "insulin" and o.verify.startswith("the recogniser was unsure")
    sure = TranscriptSegment(0, 0.0, 1.2, "Let's start insulin today.", "doctor",
                             tuple(Word(w.text, w.start_s, w.end_s, 0.9) for w in words))
    [o] = extract_orders(transcript_sentences(Transcript("e", (sure,))))
    assert o.verify == ""
