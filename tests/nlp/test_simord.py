from __future__ import annotations

from pathlib import Path

from nlp.intents import INTENTS, simord_examples
from nlp.schema import Evidence, OrderIntent
from nlp.simord import SimordEncounter, gold_match, read_simord, to_mediqa, transcript_of

TURNS = (
    {"turn_id": 1, "speaker": "DOCTOR", "transcript": "how are you ?"},
    {"turn_id": 2, "speaker": "PATIENT", "transcript": "i take lisinopril every day ."},
    {"turn_id": 3, "speaker": "DOCTOR", "transcript": "let's start metformin 500 mg twice a day ."},
    {"turn_id": 4, "speaker": "DOCTOR", "transcript": "we don't need an mri ."},
    {"turn_id": 5, "speaker": "DOCTOR", "transcript": "continue the lisinopril ."},
)
GOLD = ({"order_type": "medication", "description": "metformin 500 mg twice a day",
         "reason": "", "provenance": [3]},)


def encounter() -> SimordEncounter:
    return SimordEncounter("acibench_D2N001_aci_train", TURNS, GOLD)


def test_turns_become_segments_numbered_from_zero() -> None:
    t = transcript_of(encounter())
    assert [(s.id, s.speaker) for s in t.segments][:3] == [
        (0, "doctor"), (1, "patient"), (2, "doctor")]
    assert t.engine == "text" and encounter().aci_id == "D2N001"


def test_mediqa_format_keeps_only_its_types_and_no_continues() -> None:
    ev = Evidence((2,), 0.0, 1.0)
    orders = [OrderIntent("medication", "metformin", description="metformin 500 mg",
                          reason="diabetes", evidence=(Evidence((0,), 0, 1), ev)),
              OrderIntent("medication", "lisinopril", status="continue", evidence=(ev,)),
              OrderIntent("referral", "cardiology", evidence=(ev,)),
              OrderIntent("follow_up", "follow-up", spoken="come back in 2 weeks",
                          evidence=(ev,))]
    assert to_mediqa(orders) == [
        {"order_type": "medication", "description": "metformin 500 mg", "reason": "diabetes",
         "provenance": [1, 3]},
        {"order_type": "followup", "description": "come back in 2 weeks", "reason": "",
         "provenance": [3]}]


def test_gold_match_needs_the_words_and_the_turn() -> None:
    e = encounter()
    assert gold_match(e, "medication", "metformin", 3) == "order"
    assert gold_match(e, "medication", "metformin", 5) == "other-turn"
    assert gold_match(e, "imaging", "metformin", 3) == "none"


def test_training_examples_from_the_gold() -> None:
    examples = simord_examples([encounter()])
    labels = sorted(INTENTS[e.label] for e in examples)
    # metformin → new; the declined mri → none; the continued lisinopril is left out
    # (SIMORD does not annotate continues); the patient's lisinopril is no candidate
    assert labels == ["new", "none"]


def test_the_shared_splits_read(data_dir: Path) -> None:
    train, dev = read_simord(data_dir, "train"), read_simord(data_dir, "dev")
    assert (len(train), len(dev)) == (53, 82)
    assert not {e.id for e in train} & {e.id for e in dev}
