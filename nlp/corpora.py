"""Readers for the three public corpora under the shared data directory.

``../shared/data`` beside the checkout (see ``/work/shared/data/README.md``):
ACI-BENCH (full visits + notes), MTS-Dialog (snippets + section headers),
PriMock57 (TextGrid transcripts per speaker + notes). Nothing here is copied
into the repository; readers return small frozen records.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from nlp.errors import DataError

__all__ = [
    "ACI_SPLITS",
    "MTS_SPLITS",
    "AciVisit",
    "MtsSnippet",
    "PrimockTurn",
    "PrimockVisit",
    "default_data_dir",
    "read_aci",
    "read_mts",
    "read_primock",
]

ACI_SPLITS = {
    "train": "train.csv",
    "valid": "valid.csv",
    "test1": "clinicalnlp_taskB_test1.csv",
    "test2": "clinicalnlp_taskC_test2.csv",
}
MTS_SPLITS = {
    "train": "MTS-Dialog-TrainingSet.csv",
    "valid": "MTS-Dialog-ValidationSet.csv",
    "test1": "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv",
}


def default_data_dir() -> Path:
    """``../shared/data`` next to the checkout this package lives in."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True, slots=True)
class AciVisit:
    split: str
    encounter_id: str
    dialogue: str  # one turn a line, "[doctor] ..." / "[patient] ..."
    note: str


@dataclass(frozen=True, slots=True)
class MtsSnippet:
    split: str
    id: str
    header: str  # one of the 20 MTS-Dialog section headers
    section_text: str
    dialogue: str  # "Doctor: ...\nPatient: ..."


@dataclass(frozen=True, slots=True)
class PrimockTurn:
    speaker: str  # doctor | patient
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class PrimockVisit:
    name: str  # "day1_consultation01"
    turns: tuple[PrimockTurn, ...]
    note: str


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"corpus file not found: {path} (is ../shared/data beside the checkout?)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_aci(data_dir: Path, split: str) -> list[AciVisit]:
    if split not in ACI_SPLITS:
        raise DataError(f"unknown ACI-BENCH split {split!r}; one of {sorted(ACI_SPLITS)}")
    rows = _csv_rows(data_dir / "aci-bench" / ACI_SPLITS[split])
    try:
        return [AciVisit(split, r["encounter_id"], r["dialogue"], r["note"]) for r in rows]
    except KeyError as err:
        raise DataError(f"ACI-BENCH {split}: missing column {err}") from err


def read_mts(data_dir: Path, split: str) -> list[MtsSnippet]:
    if split not in MTS_SPLITS:
        raise DataError(f"unknown MTS-Dialog split {split!r}; one of {sorted(MTS_SPLITS)}")
    rows = _csv_rows(data_dir / "mts-dialog" / MTS_SPLITS[split])
    try:
        return [MtsSnippet(split, r["ID"], r["section_header"].strip(), r["section_text"],
                           r["dialogue"]) for r in rows]
    except KeyError as err:
        raise DataError(f"MTS-Dialog {split}: missing column {err}") from err


_INTERVAL = re.compile(
    r'xmin = ([\d.]+)\s*\n\s*xmax = ([\d.]+)\s*\n\s*text = "((?:[^"]|"")*)"', re.M)
_TAGS = re.compile(r"<[^>]*>")


def _textgrid_turns(path: Path, speaker: str) -> list[PrimockTurn]:
    turns = []
    for m in _INTERVAL.finditer(path.read_text(encoding="utf-8")):
        text = " ".join(_TAGS.sub(" ", m.group(3).replace('""', '"')).split())
        if text:
            turns.append(PrimockTurn(speaker, float(m.group(1)), float(m.group(2)), text))
    return turns


def read_primock(data_dir: Path) -> list[PrimockVisit]:
    """Every consultation: both speakers' utterances merged in time order."""
    root = data_dir / "primock57"
    if not (root / "transcripts").is_dir():
        raise DataError(f"PriMock57 transcripts not found under {root}")
    visits = []
    for doctor in sorted((root / "transcripts").glob("*_doctor.TextGrid")):
        name = doctor.name.removesuffix("_doctor.TextGrid")
        patient = doctor.with_name(f"{name}_patient.TextGrid")
        if not patient.is_file():
            continue
        turns = _textgrid_turns(doctor, "doctor") + _textgrid_turns(patient, "patient")
        turns.sort(key=lambda t: (t.start_s, t.end_s))
        note_path = root / "notes" / f"{name}.json"
        note = ""
        if note_path.is_file():
            note = str(json.loads(note_path.read_text(encoding="utf-8")).get("note", ""))
        visits.append(PrimockVisit(name, tuple(turns), note))
    if not visits:
        raise DataError(f"no PriMock57 consultations under {root}")
    return visits
