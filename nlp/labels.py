"""Section label sets and how the corpora's headings map onto them.

Our sections are ``nlp.schema.SectionKey``. MTS-Dialog has 20 headers of its
own (``MTS_HEADERS``); ``MTS_TO_SECTION`` is the documented map used to train
and to score MTS-Dialog on our sections:

    CC → chief_complaint          GENHX, EDCOURSE → history_of_present_illness
    ROS → review_of_systems       PASTMEDICALHX, PASTSURGICAL, OTHER_HISTORY,
    MEDICATIONS → medications       GYNHX, IMMUNIZATIONS, PROCEDURES → past_medical_history
    ALLERGY → allergies           FAM/SOCHX → social_history (MTS does not split family
    EXAM → physical_exam            from social history; scoring merges the two, see
    LABS, IMAGING → results         ``score_section``)
    ASSESSMENT, DIAGNOSIS → assessment     PLAN, DISPOSITION → plan

ACI-BENCH notes use headings (``ACI_HEADINGS``); "ASSESSMENT AND PLAN" is
split sentence by sentence with ``is_plan_sentence``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlp.schema import SectionKey

__all__ = [
    "MTS_HEADERS",
    "MTS_TO_SECTION",
    "NOTE_SECTIONS",
    "SECTIONS",
    "NoteLine",
    "is_plan_sentence",
    "parse_aci_note",
    "score_section",
]

#: Every label of the section classifier, in note order, ``none`` last.
SECTIONS: list[str] = [k.value for k in SectionKey]
NOTE_SECTIONS: list[str] = [k for k in SECTIONS if k != SectionKey.NONE]

MTS_HEADERS = ["ALLERGY", "ASSESSMENT", "CC", "DIAGNOSIS", "DISPOSITION", "EDCOURSE", "EXAM",
               "FAM/SOCHX", "GENHX", "GYNHX", "IMAGING", "IMMUNIZATIONS", "LABS", "MEDICATIONS",
               "OTHER_HISTORY", "PASTMEDICALHX", "PASTSURGICAL", "PLAN", "PROCEDURES", "ROS"]

S = SectionKey
MTS_TO_SECTION: dict[str, str] = {
    "CC": S.CHIEF_COMPLAINT, "GENHX": S.HPI, "EDCOURSE": S.HPI, "ROS": S.ROS,
    "PASTMEDICALHX": S.PAST_MEDICAL_HISTORY, "PASTSURGICAL": S.PAST_MEDICAL_HISTORY,
    "OTHER_HISTORY": S.PAST_MEDICAL_HISTORY, "GYNHX": S.PAST_MEDICAL_HISTORY,
    "IMMUNIZATIONS": S.PAST_MEDICAL_HISTORY, "PROCEDURES": S.PAST_MEDICAL_HISTORY,
    "MEDICATIONS": S.MEDICATIONS, "ALLERGY": S.ALLERGIES, "FAM/SOCHX": S.SOCIAL_HISTORY,
    "EXAM": S.PHYSICAL_EXAM, "LABS": S.RESULTS, "IMAGING": S.RESULTS,
    "ASSESSMENT": S.ASSESSMENT, "DIAGNOSIS": S.ASSESSMENT, "PLAN": S.PLAN,
    "DISPOSITION": S.PLAN,
}


def score_section(label: str) -> str:
    """The label used when scoring against MTS-Dialog: family and social history merged."""
    return S.SOCIAL_HISTORY if label == S.FAMILY_HISTORY else label


ACI_HEADINGS: dict[str, str | None] = {
    "CHIEF COMPLAINT": S.CHIEF_COMPLAINT, "CC": S.CHIEF_COMPLAINT,
    "HISTORY OF PRESENT ILLNESS": S.HPI, "HPI": S.HPI, "SUBJECTIVE": S.HPI,
    "REVIEW OF SYSTEMS": S.ROS, "REVIEW OF SYMPTOMS": S.ROS, "ROS": S.ROS,
    "MEDICAL HISTORY": S.PAST_MEDICAL_HISTORY, "PAST HISTORY": S.PAST_MEDICAL_HISTORY,
    "PAST MEDICAL HISTORY": S.PAST_MEDICAL_HISTORY, "SURGICAL HISTORY": S.PAST_MEDICAL_HISTORY,
    "PAST SURGICAL HISTORY": S.PAST_MEDICAL_HISTORY, "BIRTH HISTORY": S.PAST_MEDICAL_HISTORY,
    "MEDICATIONS": S.MEDICATIONS, "CURRENT MEDICATIONS": S.MEDICATIONS,
    "ALLERGIES": S.ALLERGIES, "SOCIAL HISTORY": S.SOCIAL_HISTORY,
    "FAMILY HISTORY": S.FAMILY_HISTORY,
    "PHYSICAL EXAM": S.PHYSICAL_EXAM, "PHYSICAL EXAMINATION": S.PHYSICAL_EXAM,
    "EXAM": S.PHYSICAL_EXAM, "VITALS": S.PHYSICAL_EXAM, "VITALS REVIEWED": S.PHYSICAL_EXAM,
    "RESULTS": S.RESULTS, "ASSESSMENT": S.ASSESSMENT, "IMPRESSION": S.ASSESSMENT,
    "PLAN": S.PLAN, "INSTRUCTIONS": S.PLAN, "PROCEDURE": S.PLAN,
    "ASSESSMENT AND PLAN": None,  # split per sentence
}

_PLAN_CUE = re.compile(
    r"\b(will|would like|plan|order|ordered|prescri\w*|recommend\w*|refer\w*|follow[- ]?up|"
    r"schedul\w*|continue|start\w*|increas\w*|decreas\w*|stop\w*|discontinu\w*|return\w*|"
    r"come back|counsel\w*|advis\w*|instruct\w*|encourag\w*|initiat\w*|additional testing|"
    r"medical treatment|patient education|agree\w*|should)\b", re.I)


def is_plan_sentence(sentence: str) -> bool:
    return bool(_PLAN_CUE.search(sentence))


@dataclass(frozen=True, slots=True)
class NoteLine:
    section: str
    text: str


_SENT = re.compile(r"(?<=[.?!])\s+(?=[A-Z•\d])")


def parse_aci_note(note: str) -> list[NoteLine]:
    """An ACI-BENCH reference note as (section, sentence) lines; unknown headings skipped."""
    lines: list[NoteLine] = []
    section: str | None = S.HPI
    split_ap = False
    for raw in note.splitlines():
        line = raw.strip()
        if not line:
            continue
        heading = line.rstrip(":").strip()
        if heading.upper() == heading and heading in ACI_HEADINGS:
            section = ACI_HEADINGS[heading]
            split_ap = section is None
            continue
        if heading.upper() == heading and len(heading) < 40 and heading.isalpha():
            continue  # another all-caps heading we do not map: its text follows the last section
        for sentence in _SENT.split(line.lstrip("•-* ").strip()):
            if not sentence:
                continue
            if split_ap:
                key = str(S.PLAN if is_plan_sentence(sentence) else S.ASSESSMENT)
            else:
                key = str(section or S.ASSESSMENT)
            lines.append(NoteLine(key, sentence))
    return lines
