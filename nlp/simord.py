"""SIMORD (MEDIQA-OE 2025 order extraction): read it, write our orders in its format,
and turn its gold orders into training examples for the order-intent model.

``../shared/data/simord/orders_data_transcript.json`` holds the train and dev
splits: transcripts already split into sentence turns (``turn_id`` from 1) with
the orders annotated on them. A transcript becomes one segment per turn
(segment id = turn id - 1), so an order's evidence maps straight back to the
turn ids the official scorer reads as provenance.

The MEDIQA-OE format has four order types: ``medication``, ``lab``,
``imaging``, ``followup``. Referrals, procedures and devices are orders in a
RoomScribe draft but not in SIMORD (it does not annotate them), and neither are
medications the clinician only continues (SIMORD annotates starts, changes and
stops): ``to_mediqa`` leaves both out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp.dialogue import TURN_GAP_S, WORDS_PER_SECOND
from nlp.errors import DataError
from nlp.schema import OrderIntent, OrderKind, OrderStatus, Speaker, Transcript, TranscriptSegment

__all__ = ["MEDIQA_TYPES", "SimordEncounter", "aci_encounter_ids", "gold_match", "read_simord",
           "to_mediqa", "transcript_of"]

FILE = "orders_data_transcript.json"
MEDIQA_TYPES = {OrderKind.MEDICATION.value: "medication", OrderKind.LAB.value: "lab",
                OrderKind.IMAGING.value: "imaging", OrderKind.FOLLOW_UP.value: "followup"}
_SPEAKERS = {"DOCTOR": Speaker.DOCTOR.value, "PATIENT": Speaker.PATIENT.value}


@dataclass(frozen=True)
class SimordEncounter:
    id: str  # "acibench_D2N093_virtassist_clinicalnlp_taskB_test1" | "primock57_1_3"
    turns: tuple[dict[str, Any], ...]  # {"turn_id", "speaker", "transcript"}
    expected: tuple[dict[str, Any], ...]  # gold orders in the MEDIQA-OE format

    @property
    def source(self) -> str:
        """``aci:<split file>`` or ``primock57``."""
        if self.id.startswith("acibench_"):
            return "aci:" + self.id.split("_", 3)[3]
        return "primock57"

    @property
    def aci_id(self) -> str | None:
        """The ACI-BENCH encounter id (``D2N093``), or ``None`` for PriMock57."""
        return self.id.split("_")[1] if self.id.startswith("acibench_") else None


def read_simord(data_dir: Path, split: str) -> list[SimordEncounter]:
    path = data_dir / "simord" / FILE
    if not path.is_file():
        raise DataError(f"SIMORD not found at {path}")
    data = json.loads(path.read_text())
    if split not in data:
        raise DataError(f"SIMORD has no split {split!r} (have {sorted(data)})")
    return [SimordEncounter(str(r["id"]), tuple(r["transcript"]), tuple(r["expected_orders"]))
            for r in data[split]]


def aci_encounter_ids(encounters: Sequence[SimordEncounter]) -> set[str]:
    return {e.aci_id for e in encounters if e.aci_id}


def transcript_of(encounter: SimordEncounter) -> Transcript:
    """One segment per SIMORD turn (id = turn id - 1), typed-dialogue timing."""
    segments = []
    t = 0.0
    for turn in encounter.turns:
        text = str(turn["transcript"])
        dur = max(1.0, len(text.split()) / WORDS_PER_SECOND)
        segments.append(TranscriptSegment(id=int(turn["turn_id"]) - 1, start_s=round(t, 2),
                                          end_s=round(t + dur, 2), text=text,
                                          speaker=_SPEAKERS.get(str(turn["speaker"]),
                                                                Speaker.OTHER.value)))
        t += dur + TURN_GAP_S
    return Transcript(encounter_id=encounter.id, segments=tuple(segments), engine="text")


def _turns_of(order: OrderIntent) -> list[int]:
    return sorted({i + 1 for e in order.evidence for i in e.segment_ids})


def to_mediqa(orders: Sequence[OrderIntent]) -> list[dict[str, Any]]:
    """Orders in the MEDIQA-OE format; provenance as turn ids (segment id + 1)."""
    out = []
    for o in orders:
        kind = MEDIQA_TYPES.get(o.kind)
        if kind is None or o.status == OrderStatus.CONTINUE:
            continue
        out.append({"order_type": kind, "description": o.description or o.spoken or o.name,
                    "reason": o.reason, "provenance": _turns_of(o)})
    return out


def _words(text: str) -> set[str]:
    return set(re.sub(r"[.,?!]", " ", text.lower()).split())


def gold_match(encounter: SimordEncounter, kind: str, spoken: str, turn_id: int) -> str:
    """``order`` when a gold order of the same type names these words and cites this
    turn, ``other-turn`` when it names them but cites other turns, else ``none``."""
    mediqa = MEDIQA_TYPES.get(kind)
    said = _words(spoken) - {"a", "the", "of", "and"}
    best = "none"
    for g in encounter.expected:
        if g.get("order_type") != mediqa:
            continue
        named = bool(said & _words(str(g.get("description", ""))))
        if kind in (OrderKind.FOLLOW_UP.value, OrderKind.LAB.value):
            # a visit has one follow-up, and SIMORD often words several labs as one
            # ("blood tests" for a cbc and a bmp): the cited turn decides
            named = True
        if not named:
            continue
        if turn_id in (g.get("provenance") or []):
            return "order"
        best = "other-turn"
    return best
