#!/usr/bin/env python
"""Evaluate the built NLP models and the draft note; print a table and write JSON.

    python scripts/eval_nlp.py --json var/eval_nlp.json [--models models] [--data DIR]

Metrics (each documented in the JSON under "about"):

* mts_20class_accuracy / mts_20class_macro_f1 — MTS-Dialog test-1, its own 20
  headers (anchor: best MEDIQA-Sum 2023 system 0.80); ``*_valid`` on validation.
* section_accuracy / section_macro_f1 — the drafting section classifier on
  MTS-Dialog validation and test-1 snippets, gold headers mapped to our sections
  (``nlp.labels.MTS_TO_SECTION``; family and social history merged, as MTS does).
  ``section_*_aci_valid_silver``: per transcript sentence on ACI-BENCH valid
  against the alignment (silver) labels.
* order_precision / order_recall / order_f1 — orders drafted from the 20
  ACI-BENCH valid dialogues against ``nlp/data/orders_gold_aci_valid.jsonl``
  (match on kind + normalised name); order_status_accuracy on matched pairs.
  ``order_*_rules``: the same with the cue rules deciding instead of the
  order-intent model (the comparison the model has to win).
* role_accuracy — speaker role per turn from the words alone (input tags
  ignored), against ACI-BENCH's tags on valid + test1 + test2 (tags are
  themselves sometimes wrong); PriMock57 day 4 (held out) separately.
* rouge1 / rouge2 / rougeLsum — the assembled note (ACI template) against the
  ACI-BENCH reference notes, per split (anchors on test1: BART 53.46,
  GPT-4 51.76, copying the transcript 32.84); ``transcript_copy`` is that
  baseline computed here.
* unsupported_sentences — draft sentences and orders without a transcript span
  backing them or failing the faithfulness check (numbers, units, drug names,
  laterality, negation: ``nlp.assemble.unsupported_sentences``), over all drafts.
* The rewriter (``nlp.rewrite``, style ``concise``, the default): ``rouge_<split>`` is
  the rewritten note; ``rouge_<split>_verbatim`` the extractive one (the spoken
  sentences, tidied) beside it; ``rewrite_counts`` (rewritten, fell back after a
  failed faithfulness check, kept as spoken, repeats left out) and
  ``rewrite_fallback_rate``; ``first_person_patient_sentences``: note sentences
  from the patient's words still in the first person; ``note_length_ratio_<split>``:
  words in the draft / words in the reference note (mean over visits);
  ``draft_cpu_seconds_mean``: CPU seconds per ACI-BENCH visit (process time).
* mts_section_text_rouge1_<split> — MEDIQA-Sum 2023 task B style: each MTS-Dialog
  snippet (its header given) → the section text, every sentence of the snippet
  through the same rewriter; ``..._verbatim`` the spoken sentences. Anchor: the
  best MEDIQA-Sum 2023 task B system, ROUGE-1 0.43 on that challenge's test set.
"""

from __future__ import annotations

import argparse
import copy as shallow
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp import corpora
from nlp.assemble import RewriteCounts, assemble, unsupported_sentences
from nlp.datasets import aci_section_examples, primock_eval_split
from nlp.dialogue import parse_dialogue, transcript_sentences
from nlp.features import mts_input, position_features
from nlp.labels import MTS_TO_SECTION, SECTIONS, score_section
from nlp.orders import normalise_name
from nlp.rewrite import FIRST_PERSON
from nlp.schema import DraftNote, OrderIntent, Speaker, Transcript, TranscriptSegment

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "nlp" / "data" / "orders_gold_aci_valid.jsonl"


def accuracy(gold: list[str], pred: list[str]) -> float:
    return float(np.mean([g == p for g, p in zip(gold, pred, strict=True)]))


def macro_f1(gold: list[str], pred: list[str]) -> float:
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def r4(x: float) -> float:
    return round(float(x), 4)


def eval_mts(models: Path, data: Path) -> dict[str, float]:
    from nlp.encoder import TextClassifier

    mts = TextClassifier.load(models / "nlp" / "mts-sections")
    sections = TextClassifier.load(models / "nlp" / "sections")
    out: dict[str, float] = {}
    for split in ("valid", "test1"):
        snippets = corpora.read_mts(data, split)
        gold = [s.header for s in snippets]
        pred = mts.predict([mts_input(s.dialogue) for s in snippets])
        suffix = "" if split == "test1" else "_valid"
        out[f"mts_20class_accuracy{suffix}"] = r4(accuracy(gold, pred))
        out[f"mts_20class_macro_f1{suffix}"] = r4(macro_f1(gold, pred))
        sgold = [score_section(MTS_TO_SECTION[h]) for h in gold]
        spred = [score_section(p) for p in sections.predict(
            [mts_input(s.dialogue) for s in snippets], None,
            [position_features(None)] * len(snippets))]
        out[f"section_accuracy_mts_{split}"] = r4(accuracy(sgold, spred))
        out[f"section_macro_f1_mts_{split}"] = r4(macro_f1(sgold, spred))
        out[f"mts20_mapped_section_accuracy_mts_{split}"] = r4(accuracy(
            sgold, [score_section(MTS_TO_SECTION[p]) for p in pred]))
    examples = aci_section_examples(corpora.read_aci(data, "valid"))
    pred = sections.predict([e.text for e in examples], [e.pair for e in examples],
                            [e.features for e in examples])
    gold = [SECTIONS[e.label] for e in examples]
    out["section_accuracy_aci_valid_silver"] = r4(accuracy(gold, pred))
    out["section_macro_f1_aci_valid_silver"] = r4(macro_f1(gold, pred))
    return out


def eval_roles(labeller: object, data: Path, limit: int | None) -> dict[str, float]:
    label = labeller.label  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    gold_all: list[str] = []
    pred_all: list[str] = []
    for split in ("valid", "test1", "test2"):
        gold: list[str] = []
        pred: list[str] = []
        for v in corpora.read_aci(data, split)[:limit]:
            segs = parse_dialogue(v.dialogue).segments
            gold += [s.speaker for s in segs]
            pred += label(segs, use_tags=False, turns=True)
        out[f"role_accuracy_aci_{split}"] = r4(accuracy(gold, pred))
        gold_all += gold
        pred_all += pred
    out["role_accuracy"] = r4(accuracy(gold_all, pred_all))
    gold, pred = [], []
    for pv in primock_eval_split(corpora.read_primock(data), held_out=True):
        segs = tuple(TranscriptSegment(id=i, start_s=t.start_s, end_s=t.end_s, text=t.text)
                     for i, t in enumerate(pv.turns))
        gold += [t.speaker for t in pv.turns]
        pred += label(segs, use_tags=False, turns=False)
    out["role_accuracy_primock_day4"] = r4(accuracy(gold, pred))
    return out


def read_order_gold() -> dict[str, list[dict[str, str]]]:
    """``nlp/data/orders_gold_aci_valid.jsonl`` by encounter id."""
    gold_by: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in GOLD.read_text().splitlines():
        g = json.loads(line)
        gold_by[g["encounter_id"]].append(g)
    return gold_by


def match_orders(orders: Sequence[OrderIntent], gold: Sequence[dict[str, str]]
                 ) -> tuple[list[tuple[OrderIntent, dict[str, str]]], list[OrderIntent], int]:
    """(matched pairs, orders matching no gold, gold orders missed) for one visit: a
    match is the same kind and normalised name; each gold order matches once."""
    left = list(gold)
    pairs: list[tuple[OrderIntent, dict[str, str]]] = []
    false: list[OrderIntent] = []
    for o in orders:
        key = (o.kind, normalise_name(o.kind, o.name))
        hit = next((g for g in left if (g["kind"], normalise_name(g["kind"], g["name"]))
                    == key), None)
        if hit is None:
            false.append(o)
        else:
            pairs.append((o, hit))
            left.remove(hit)
    return pairs, false, len(left)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return r4(p), r4(r), r4(2 * p * r / (p + r) if p + r else 0.0)


def score_orders(drafts: Mapping[str, DraftNote]) -> dict[str, float]:
    gold_by = read_order_gold()
    tp = fp = fn = status_ok = 0
    for enc, draft in drafts.items():
        pairs, false, missed = match_orders(draft.orders, gold_by.get(enc, []))
        tp, fp, fn = tp + len(pairs), fp + len(false), fn + missed
        status_ok += sum(g["status"] == o.status for o, g in pairs)
    p, r, f1 = prf(tp, fp, fn)
    return {"order_precision": p, "order_recall": r, "order_f1": f1,
            "order_status_accuracy": r4(status_ok / tp if tp else 0.0),
            "order_gold": tp + fn, "order_predicted": tp + fp}


def rouge(pairs: list[tuple[str, str]]) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    acc: dict[str, list[float]] = defaultdict(list)
    for pred, ref in pairs:
        for k, v in scorer.score(ref, pred).items():
            acc[k].append(v.fmeasure)
    return {k: round(100 * float(np.mean(v)), 2) for k, v in acc.items()}


def first_person_patient_sentences(draft: DraftNote, transcript: Transcript) -> int:
    """Note sentences resting on the patient's words alone that still say I/my/me
    (a quotation, "states: \"...\"", does not count)."""
    speaker = {s.id: s.speaker for s in transcript.segments}
    n = 0
    for section in draft.sections:
        for sentence in section.sentences:
            ids = [i for e in sentence.evidence for i in e.segment_ids]
            text = re.sub(r'"[^"]*"', "", sentence.text)
            if ids and all(speaker.get(i) == Speaker.PATIENT for i in ids) \
                    and FIRST_PERSON.search(text):
                n += 1
    return n


def note_text(draft: DraftNote) -> str:
    return "\n".join(f"{s.title}\n" + "\n".join(x.text for x in s.sentences)
                     for s in draft.sections if s.sentences)


def eval_mts_section_text(writer: object, data: Path, limit: int | None) -> dict[str, object]:
    """Snippet → section text (the header given): every sentence of the snippet in
    the header's section, through the rewriter, against MTS-Dialog's section text."""
    out: dict[str, object] = {}
    for split in ("valid", "test1"):
        by_style: dict[str, list[tuple[str, str]]] = {"concise": [], "verbatim": []}
        for snippet in corpora.read_mts(data, split)[:limit]:
            transcript = writer.with_roles(parse_dialogue(snippet.dialogue))
            sentences = transcript_sentences(transcript)
            section = MTS_TO_SECTION[snippet.header]
            for style, pairs in by_style.items():
                draft = assemble(transcript, sentences, [section] * len(sentences),
                                 [x.speaker for x in sentences], [], "aci", style=style)
                pairs.append((" ".join(x.text for s in draft.sections for x in s.sentences),
                              snippet.section_text))
        for style, pairs in by_style.items():
            suffix = "" if style == "concise" else "_verbatim"
            out[f"mts_section_text_rouge1_{split}{suffix}"] = rouge(pairs)["rouge1"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--data", type=Path, default=corpora.default_data_dir())
    p.add_argument("--orders-only", action="store_true",
                   help="only the order metrics (ACI-BENCH valid against the gold set)")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N ACI-BENCH visits of each split (a quick check; "
                        "the reported numbers need the full run)")
    args = p.parse_args()
    from nlp.pipeline import DraftWriter

    t0 = time.monotonic()
    result: dict[str, object] = {}
    if not args.orders_only:
        result.update(eval_mts(args.models, args.data))
        print(f"eval: MTS-Dialog done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    writer = DraftWriter.load(args.models, template="aci")
    rules = shallow.copy(writer)
    rules._order_intents = None
    if not args.orders_only:
        result.update(eval_roles(writer._roles, args.data, args.limit))
        print(f"eval: roles done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    if not args.orders_only:
        result.update(eval_mts_section_text(writer, args.data, args.limit))
        print(f"eval: MTS-Dialog section text done ({time.monotonic() - t0:.0f} s)",
              file=sys.stderr)
    unsupported = 0
    sentences = 0
    first_person = 0
    counts = RewriteCounts()
    draft_seconds: list[float] = []
    draft_cpu: list[float] = []
    for split in ("valid",) if args.orders_only else ("valid", "test1", "test2"):
        pairs: list[tuple[str, str]] = []
        verbatim: list[tuple[str, str]] = []
        copy: list[tuple[str, str]] = []
        lengths: list[float] = []
        drafts = {}
        for v in corpora.read_aci(args.data, split)[:args.limit]:
            transcript = parse_dialogue(v.dialogue, v.encounter_id)
            t, cpu = time.monotonic(), time.process_time()
            draft = writer.draft(transcript, counts=counts)
            draft_seconds.append(time.monotonic() - t)
            draft_cpu.append(time.process_time() - cpu)
            drafts[v.encounter_id] = draft
            unsupported += unsupported_sentences(draft, transcript)
            first_person += first_person_patient_sentences(draft, writer.with_roles(transcript))
            sentences += sum(len(s.sentences) for s in draft.sections)
            pairs.append((note_text(draft), v.note))
            lengths.append(len(note_text(draft).split()) / max(1, len(v.note.split())))
            if not args.orders_only:
                verbatim.append((note_text(writer.draft(transcript, style="verbatim")), v.note))
            copy.append(("\n".join(s.text for s in transcript.segments), v.note))
        scores = rouge(pairs)
        result[f"rouge_{split}"] = scores
        if verbatim:
            result[f"rouge_{split}_verbatim"] = rouge(verbatim)
        result[f"note_length_ratio_{split}"] = round(float(np.mean(lengths)), 3)
        result[f"transcript_copy_rouge_{split}"] = rouge(copy)
        if split == "test1":
            result.update(scores)
        if split == "valid":
            result.update(score_orders(drafts))
            by_rules = {a.encounter_id: rules.draft(parse_dialogue(a.dialogue, a.encounter_id))
                        for a in corpora.read_aci(args.data, split)[:args.limit]}
            result.update({f"{k}_rules": v for k, v in score_orders(by_rules).items()})
        print(f"eval: ACI-BENCH {split} drafted ({time.monotonic() - t0:.0f} s)",
              file=sys.stderr)
    result["unsupported_sentences"] = unsupported
    result["draft_sentences"] = sentences
    result["first_person_patient_sentences"] = first_person
    result["rewrite_counts"] = dict(vars(counts))
    result["rewrite_fallback_rate"] = round(counts.fallback_rate, 4)
    result["draft_seconds_mean"] = round(float(np.mean(draft_seconds)), 2)
    result["draft_cpu_seconds_mean"] = round(float(np.mean(draft_cpu)), 2)
    result["eval_seconds"] = round(time.monotonic() - t0)
    result["limit"] = args.limit
    build = args.models / "nlp" / "build.json"
    result["build_key"] = json.loads(build.read_text()).get("key") if build.is_file() else None
    result["about"] = __doc__
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        if k != "about":
            print(f"{k:44} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
