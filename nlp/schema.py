"""The shapes that travel between transcription, NLP and review.

Standard library only, so every stage (and the device-free server) can import
them without torch. JSON in and out with ``to_dict()`` / ``from_dict()``.

    Transcript ─< TranscriptSegment ─< Word          (made by server/asr)
    DraftNote  ─< NoteSection ─< NoteSentence ─< Evidence   (made by nlp/)
              ├< OrderIntent ─< Evidence                 (reviewed in server/review)
              └< PatientInstruction ─< Evidence          (the after-visit summary)

Evidence points back to the transcript: the segment ids and the time span, so
a reviewer can jump to the words and play the audio they came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

__all__ = [
    "DraftNote",
    "Evidence",
    "InstructionKind",
    "NoteSection",
    "NoteSentence",
    "OrderIntent",
    "OrderKind",
    "OrderStatus",
    "PatientInstruction",
    "SectionKey",
    "Speaker",
    "Transcript",
    "TranscriptSegment",
    "Word",
]


class Speaker(StrEnum):
    DOCTOR = "doctor"
    PATIENT = "patient"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One final segment (roughly one turn or utterance) of a visit."""

    id: int  # unique within the encounter, increasing with time
    start_s: float  # seconds from the start of the encounter's audio
    end_s: float
    text: str
    speaker: str = Speaker.UNKNOWN
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        words = tuple(Word(**w) for w in d.get("words", ()))
        return cls(id=int(d["id"]), start_s=float(d["start_s"]), end_s=float(d["end_s"]),
                   text=str(d["text"]), speaker=str(d.get("speaker", Speaker.UNKNOWN)),
                   words=words)


@dataclass(frozen=True, slots=True)
class Transcript:
    encounter_id: str
    segments: tuple[TranscriptSegment, ...]
    engine: str = ""
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "engine": self.engine,
                "language": self.language, "segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(encounter_id=str(d.get("encounter_id", "")),
                   segments=tuple(TranscriptSegment.from_dict(s) for s in d["segments"]),
                   engine=str(d.get("engine", "")), language=str(d.get("language", "en")))


class SectionKey(StrEnum):
    """Note sections, in the order a note shows them."""

    CHIEF_COMPLAINT = "chief_complaint"
    HPI = "history_of_present_illness"
    ROS = "review_of_systems"
    PAST_MEDICAL_HISTORY = "past_medical_history"
    MEDICATIONS = "medications"
    ALLERGIES = "allergies"
    SOCIAL_HISTORY = "social_history"
    FAMILY_HISTORY = "family_history"
    PHYSICAL_EXAM = "physical_exam"
    RESULTS = "results"
    ASSESSMENT = "assessment"
    PLAN = "plan"
    NONE = "none"  # greetings, small talk, logistics: never in the note


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where in the transcript a note line or order came from."""

    segment_ids: tuple[int, ...]
    start_s: float
    end_s: float
    quote: str = ""  # the transcript words it rests on

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(segment_ids=tuple(int(i) for i in d["segment_ids"]),
                   start_s=float(d["start_s"]), end_s=float(d["end_s"]),
                   quote=str(d.get("quote", "")))


@dataclass(frozen=True, slots=True)
class NoteSentence:
    text: str
    evidence: tuple[Evidence, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(text=str(d["text"]),
                   evidence=tuple(Evidence.from_dict(e) for e in d.get("evidence", ())))


@dataclass(frozen=True, slots=True)
class NoteSection:
    key: str  # a SectionKey value
    title: str  # heading from the template, e.g. "HISTORY OF PRESENT ILLNESS"
    sentences: tuple[NoteSentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(key=str(d["key"]), title=str(d["title"]),
                   sentences=tuple(NoteSentence.from_dict(s) for s in d.get("sentences", ())))


class OrderKind(StrEnum):
    MEDICATION = "medication"
    LAB = "lab"
    IMAGING = "imaging"
    REFERRAL = "referral"
    FOLLOW_UP = "follow_up"
    PROCEDURE = "procedure"
    OTHER = "other"


class OrderStatus(StrEnum):
    NEW = "new"
    CONTINUE = "continue"
    CHANGE = "change"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order spoken in the visit. Fields that were not said stay empty."""

    kind: str  # an OrderKind value
    name: str  # normalised: "lisinopril", "chest x-ray", "cbc", "cardiology"
    status: str = OrderStatus.NEW
    dose: str = ""  # "10"
    unit: str = ""  # "mg"
    route: str = ""  # "oral"
    frequency: str = ""  # "once a day"
    duration: str = ""  # "for 10 days"
    body_site: str = ""
    laterality: str = ""  # left | right | bilateral
    specialty: str = ""  # for referrals
    interval: str = ""  # for follow-ups: "2 weeks"
    spoken: str = ""  # the name as said: "lasix" (``name`` is the generic: "furosemide")
    description: str = ""  # the clinician's words: "lasix 40 milligrams a day"
    reason: str = ""  # the indication as said: "shortness of breath"
    code_system: str = ""  # where the vocabulary gives one: "https://go.drugbank.com/drugs"
    code: str = ""  # "DB00695"
    #: why a reviewer must check this order against the audio ("" when nothing stands out):
    #: a drug name outside the vocabulary, or an order the model is unsure of
    verify: str = ""
    #: every sentence the order rests on (where it was said, its reason, its repeats)
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)} - {"evidence"}
        values = {k: str(v) for k, v in d.items() if k in names}
        return cls(**values, evidence=tuple(Evidence.from_dict(e)
                                            for e in d.get("evidence", ())))


class InstructionKind(StrEnum):
    """What a patient instruction asks for, in the order the after-visit summary lists them."""

    MEDICATION = "medication"
    TEST = "test"
    REFERRAL = "referral"
    OTHER = "other"
    FOLLOW_UP = "follow_up"
    WARNING = "warning"  # a red flag: when to call or go to the emergency room


@dataclass(frozen=True, slots=True)
class PatientInstruction:
    """One line of the after-visit summary, in plain words addressed to the patient."""

    kind: str  # an InstructionKind value
    text: str  # "Start lisinopril 10 mg once a day."
    #: the caution carried over from an uncertain order ("" when nothing stands out)
    verify: str = ""
    evidence: tuple[Evidence, ...] = ()
    #: the order it was written from, as ``kind:name`` ("medication:lisinopril"; "" for a
    #: red flag or advice): a reviewer who rejects the order drops the line with it
    order: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(kind=str(d["kind"]), text=str(d["text"]), verify=str(d.get("verify", "")),
                   evidence=tuple(Evidence.from_dict(e) for e in d.get("evidence", ())),
                   order=str(d.get("order", "")))


@dataclass(frozen=True, slots=True)
class DraftNote:
    """What the NLP stage hands to the review queue."""

    encounter_id: str
    template: str  # "soap" | "aci"
    sections: tuple[NoteSection, ...]
    orders: tuple[OrderIntent, ...] = ()
    model_versions: dict[str, str] = field(default_factory=dict)
    #: the after-visit summary (``nlp.instructions``); drafts from before it have none
    instructions: tuple[PatientInstruction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(encounter_id=str(d.get("encounter_id", "")),
                   template=str(d.get("template", "soap")),
                   sections=tuple(NoteSection.from_dict(s) for s in d["sections"]),
                   orders=tuple(OrderIntent.from_dict(o) for o in d.get("orders", ())),
                   model_versions={str(k): str(v)
                                   for k, v in d.get("model_versions", {}).items()},
                   instructions=tuple(PatientInstruction.from_dict(i)
                                      for i in d.get("instructions", ())))

    def text(self) -> str:
        """The note as plain text, headings and sentences."""
        parts = []
        for section in self.sections:
            if section.sentences:
                parts.append(f"{section.title}\n{section.text}")
        return "\n\n".join(parts)
