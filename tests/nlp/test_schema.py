from __future__ import annotations

import json

from nlp.schema import (
    DraftNote,
    Evidence,
    NoteSection,
    NoteSentence,
    OrderIntent,
    PatientInstruction,
    Transcript,
    TranscriptSegment,
    Word,
)


def test_transcript_round_trips_through_json() -> None:
    t = Transcript("e1", (TranscriptSegment(0, 0.0, 1.2, "hi there", "doctor",
                                            (Word("hi", 0.0, 0.4, 0.9),)),), engine="whisper")
    assert Transcript.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_draft_round_trips_and_renders_text() -> None:
    ev = Evidence((3, 4), 10.0, 14.5, "let's start lisinopril 10 mg once a day")
    draft = DraftNote(
        "e1", "soap",
        (NoteSection("plan", "PLAN", (NoteSentence("Start lisinopril 10 mg daily.", (ev,)),)),
         NoteSection("results", "RESULTS", ())),
        (OrderIntent("medication", "lisinopril", dose="10", unit="mg", frequency="once a day",
                     evidence=(ev,)),),
        {"sections": "test"},
        (PatientInstruction("medication", "Start lisinopril 10 mg once a day.", evidence=(ev,)),
         PatientInstruction("test", "Get a blood test: CBC.", verify="unsure it heard 'cbc'")),
    )
    assert DraftNote.from_dict(json.loads(json.dumps(draft.to_dict()))) == draft
    assert draft.text() == "PLAN\nStart lisinopril 10 mg daily."
    # a draft stored before the after-visit summary existed still loads
    old = draft.to_dict()
    del old["instructions"]
    assert DraftNote.from_dict(old).instructions == ()
