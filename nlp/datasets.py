"""Training and evaluation examples for each classifier, built from the corpora.

* ``mts`` — MTS-Dialog snippet → one of its 20 headers (train split only).
* ``sections`` — transcript sentence (+ context) → ``SectionKey``: ACI-BENCH
  sentences with silver labels from ``align.align_sections`` (``none``
  down-sampled), plus every MTS-Dialog snippet with its header mapped by
  ``labels.MTS_TO_SECTION``.
* ``roles`` — turn (+ neighbours) → doctor / patient / other: ACI-BENCH tags,
  PriMock57 speakers (days 1–3; day 4 is held out), MTS-Dialog speakers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from nlp import corpora
from nlp.align import align_sections
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.encoder import Example
from nlp.features import (
    mts_input,
    position_features,
    role_input,
    section_input,
    section_position,
)
from nlp.labels import MTS_HEADERS, MTS_TO_SECTION, SECTIONS, parse_aci_note
from nlp.schema import SectionKey, Speaker

__all__ = [
    "ROLES",
    "aci_section_examples",
    "mts_examples",
    "primock_eval_split",
    "role_examples",
    "section_examples",
]

ROLES = [Speaker.DOCTOR.value, Speaker.PATIENT.value, Speaker.OTHER.value]
PRIMOCK_EVAL_DAY = "day4"


def mts_examples(data_dir: Path, split: str) -> list[Example]:
    idx = {h: i for i, h in enumerate(MTS_HEADERS)}
    return [Example(mts_input(s.dialogue), "", idx[s.header])
            for s in corpora.read_mts(data_dir, split)]


def aci_section_examples(visits: Sequence[corpora.AciVisit]) -> list[Example]:
    idx = {k: i for i, k in enumerate(SECTIONS)}
    out: list[Example] = []
    for v in visits:
        sentences = transcript_sentences(parse_dialogue(v.dialogue, v.encounter_id))
        labels = align_sections(sentences, parse_aci_note(v.note))
        for i, label in enumerate(labels):
            text, pair = section_input(sentences, i)
            position = position_features(section_position(i, len(sentences)))
            out.append(Example(text, pair, idx[label], position))
    return out


def section_examples(data_dir: Path, none_keep: float, seed: int) -> list[Example]:
    rng = random.Random(seed)
    none = SECTIONS.index(SectionKey.NONE)
    aci = [e for e in aci_section_examples(corpora.read_aci(data_dir, "train"))
           if e.label != none or rng.random() < none_keep]
    idx = {k: i for i, k in enumerate(SECTIONS)}
    mts = [Example(mts_input(s.dialogue), "", idx[MTS_TO_SECTION[s.header]],
                   position_features(None))
           for s in corpora.read_mts(data_dir, "train")]
    return aci + mts


def _role_examples_from(speakers: Sequence[str], texts: Sequence[str]) -> list[Example]:
    idx = {r: i for i, r in enumerate(ROLES)}
    out = []
    for i, sp in enumerate(speakers):
        text, pair = role_input(texts, i)
        out.append(Example(text, pair, idx.get(sp, idx[Speaker.OTHER])))
    return out


def primock_eval_split(visits: Sequence[corpora.PrimockVisit], held_out: bool
                       ) -> list[corpora.PrimockVisit]:
    return [v for v in visits if v.name.startswith(PRIMOCK_EVAL_DAY) == held_out]


def role_examples(data_dir: Path, aci_splits: Sequence[str], primock_held_out: bool,
                  include_mts: bool) -> list[Example]:
    out: list[Example] = []
    for split in aci_splits:
        for v in corpora.read_aci(data_dir, split):
            t = parse_dialogue(v.dialogue, v.encounter_id)
            out += _role_examples_from([s.speaker for s in t.segments],
                                       [s.text for s in t.segments])
    for pv in primock_eval_split(corpora.read_primock(data_dir), primock_held_out):
        out += _role_examples_from([t.speaker for t in pv.turns], [t.text for t in pv.turns])
    if include_mts:
        for s in corpora.read_mts(data_dir, "train"):
            t = parse_dialogue(s.dialogue)
            out += _role_examples_from([x.speaker for x in t.segments],
                                       [x.text for x in t.segments])
    return out
