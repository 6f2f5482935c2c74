#!/usr/bin/env python
"""Evaluate order extraction; print a table and write JSON.

    python scripts/eval_orders.py --json var/eval_orders.json [--models models] [--data DIR]
                                  [--split dev] [--skip-asr] [--skip-primock] [--rules]

Sections of the report (each documented under "about" in the JSON):

* ``simord_<split>``: the official MEDIQA-OE 2025 scorer (``<data>/simord/scorer``)
  on SIMORD's ``dev`` split (the one the team reports on; ``--split train`` for the
  split the extractor learned from): description Match / ROUGE-1, reason ROUGE-1,
  type Strict, provenance MultiLabel F1 and the leaderboard average of the four.
  Beside it, by our own counting: predicted orders, those the scorer could not pair
  with a gold order (``false_alarms``; medications among them: ``false_medications``),
  orders without provenance (must be 0), and per source (ACI-BENCH / PriMock57).
* ``aci_valid``: P/R/F1 and status accuracy against ``nlp/data/orders_gold_aci_valid.jsonl``
  (20 visits, our annotation; includes continued medications and referrals), also on the
  12 visits that are in neither SIMORD split (8 are in SIMORD train: the model saw them).
  ``invented``: drafted orders the clinician did not give (false positives), and
  ``patient_said``: orders resting only on the patient's words.
* ``asr``: SIMORD dev visits that ACI-BENCH also ships as raw speech-recogniser output
  (test1/test2 ``*_asr.csv``), scored by the official scorer against the same gold;
  provenance cannot be scored there (turns differ), so ``text_average`` is the mean of
  description, reason and type. The same visits from the clean transcript beside it.
* ``primock``: orders drafted per PriMock57 consultation (manual transcripts; no gold).
* ``cpu_s_per_visit``: CPU seconds of order extraction per SIMORD visit (whole visit, cold;
  the speaker roles it starts from are timed apart, ``roles_cpu_s_per_visit``, as every
  draft needs them whether or not it has orders).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_nlp import match_orders, prf, r4, read_order_gold

from nlp import corpora, simord
from nlp.dialogue import parse_dialogue
from nlp.encoder import set_inference_threads
from nlp.pipeline import DraftWriter
from nlp.schema import OrderKind, Speaker

ROOT = Path(__file__).resolve().parents[1]
AVERAGED = ("description_Rouge1_f1", "reason_Rouge1_f1", "order_type_Strict_f1",
            "provenance_MultiLabel_f1")


def official_scores(data: Path, truth: dict[str, list[dict[str, Any]]],
                    preds: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Run the official scorer on ``truth`` (id → gold orders) and ``preds``."""
    evaluation = data / "simord" / "scorer" / "evaluation"
    with tempfile.TemporaryDirectory() as tmp:
        truth_file, pred_file, out = Path(tmp, "truth.json"), Path(tmp, "pred.json"), Path(
            tmp, "scores")
        truth_file.write_text(json.dumps({"split": [{"id": k, "expected_orders": v}
                                                    for k, v in truth.items()]}))
        pred_file.write_text(json.dumps(preds))
        run = subprocess.run([sys.executable, "evaluate_oe.py", "-d", "split", "-t",
                              str(truth_file), "-p", str(pred_file), "-o", str(out)],
                             cwd=evaluation, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise SystemExit(f"the MEDIQA-OE scorer failed:\n{run.stderr[-2000:]}")
        scores = json.loads((out / "scores.json").read_text())
    flat = {k: r4(v) for k, v in scores.items() if isinstance(v, (int, float))}
    flat["leaderboard_average"] = r4(100 * sum(scores[k] for k in AVERAGED) / 4)
    return flat


def _unpaired(predicted: int, match_precision: float) -> int:
    """Predictions the scorer paired with no gold order (its Match precision is the
    paired share of the predictions)."""
    return predicted - round(match_precision * predicted)


def eval_simord(writer: DraftWriter, data: Path, split: str) -> dict[str, Any]:
    encounters = simord.read_simord(data, split)
    preds: dict[str, list[dict[str, Any]]] = {}
    cpu: list[float] = []
    no_provenance = 0
    roles_cpu: list[float] = []
    for e in encounters:
        transcript = simord.transcript_of(e)
        t0 = time.process_time()
        writer.label_speakers(transcript.segments)  # the draft needs roles anyway
        t1 = time.process_time()
        orders = writer.orders(transcript)  # role answers are remembered: orders alone
        cpu.append(time.process_time() - t1)
        roles_cpu.append(t1 - t0)
        preds[e.id] = simord.to_mediqa(orders)
        no_provenance += sum(not o["provenance"] for o in preds[e.id])
    truth = {e.id: list(e.expected) for e in encounters}
    out: dict[str, Any] = {"encounters": len(encounters),
                           "gold_orders": sum(len(v) for v in truth.values()),
                           "predicted_orders": sum(len(v) for v in preds.values()),
                           "orders_without_provenance": no_provenance,
                           **official_scores(data, truth, preds)}
    out["false_alarms"] = _unpaired(out["predicted_orders"], out["description_Match_precision"])
    out["false_alarms_per_visit"] = r4(out["false_alarms"] / len(encounters))
    # the same pairing over the medications alone
    meds = {k: [p for p in v if p["order_type"] == "medication"] for k, v in preds.items()}
    scores = official_scores(data, {k: [g for g in v if g["order_type"] == "medication"]
                                    for k, v in truth.items()}, meds)
    out["false_medications"] = _unpaired(sum(len(v) for v in meds.values()),
                                         scores["description_Match_precision"])
    for source in sorted({e.source.split(":")[0] for e in encounters}):
        ids = [e.id for e in encounters if e.source.split(":")[0] == source]
        scores = official_scores(data, {k: truth[k] for k in ids}, {k: preds[k] for k in ids})
        out[f"by_source_{source}"] = {"encounters": len(ids),
                                      "leaderboard_average": scores["leaderboard_average"],
                                      "description_Match_f1": scores["description_Match_f1"]}
    out["cpu_s_per_visit_p50"] = r4(sorted(cpu)[len(cpu) // 2])
    out["cpu_s_per_visit_max"] = r4(max(cpu))
    out["roles_cpu_s_per_visit_p50"] = r4(sorted(roles_cpu)[len(roles_cpu) // 2])
    out["_predictions"] = preds
    return out


def eval_aci_valid(writer: DraftWriter, data: Path) -> dict[str, Any]:
    gold_by = read_order_gold()
    seen = simord.aci_encounter_ids(simord.read_simord(data, "train"))
    visits = corpora.read_aci(data, "valid")
    out: dict[str, Any] = {}
    for name, subset in (("all", visits), ("unseen", [v for v in visits
                                                     if v.encounter_id not in seen])):
        tp = fp = fn = status_ok = invented_meds = patient_said = 0
        for v in subset:
            transcript = parse_dialogue(v.dialogue, v.encounter_id)
            speakers = {s.id: s.speaker for s in transcript.segments}
            orders = writer.orders(transcript)
            patient_said += sum(all(speakers[i] == Speaker.PATIENT for e in o.evidence
                                    for i in e.segment_ids) for o in orders)
            pairs, false, missed = match_orders(orders, gold_by.get(v.encounter_id, []))
            tp, fp, fn = tp + len(pairs), fp + len(false), fn + missed
            status_ok += sum(g["status"] == o.status for o, g in pairs)
            invented_meds += sum(o.kind == OrderKind.MEDICATION for o in false)
        p, r, f1 = prf(tp, fp, fn)
        out[name] = {"visits": len(subset), "precision": p, "recall": r, "f1": f1,
                     "status_accuracy": r4(status_ok / tp if tp else 0.0),
                     "invented": fp, "invented_medications": invented_meds,
                     "invented_per_20_visits": r4(20 * fp / max(1, len(subset))),
                     "patient_said": patient_said}
    return out


def _asr_visits(data: Path) -> dict[str, str]:
    """D2N id → raw ASR dialogue, for the ACI-BENCH test1/test2 visits shipped as ASR."""
    csv.field_size_limit(10**9)
    asr = data / "aci-bench" / "asr"
    out: dict[str, str] = {}
    for split, meta in (("test1", "clinicalnlp_taskB_test1_metadata.csv"),
                        ("test2", "clinicalnlp_taskC_test2_metadata.csv")):
        with (data / "aci-bench" / meta).open() as f:
            to_d2n = {r["id"]: r["encounter_id"] for r in csv.DictReader(f)}
        for kind in ("aci", "virtscribe"):
            path = asr / f"{split}_{kind}_asr.csv"
            if path.is_file():
                with path.open() as f:
                    for r in csv.DictReader(f):
                        if r["id"] in to_d2n:
                            out[to_d2n[r["id"]]] = r["dialogue"]
    return out


def eval_asr(writer: DraftWriter, data: Path, split: str,
             clean: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    asr = _asr_visits(data)
    encounters = [e for e in simord.read_simord(data, split) if e.aci_id in asr]
    truth = {e.id: list(e.expected) for e in encounters}
    preds = {e.id: simord.to_mediqa(writer.orders(parse_dialogue(asr[e.aci_id or ""], e.id)))
             for e in encounters}
    out: dict[str, Any] = {"encounters": len(encounters)}
    for name, p in (("asr", preds), ("clean", {k: clean[k] for k in truth})):
        s = official_scores(data, truth, p)
        out[name] = {k: s[k] for k in ("description_Match_f1", *AVERAGED[:3])}
        out[name]["text_average"] = r4(100 * sum(s[k] for k in AVERAGED[:3]) / 3)
        out[name]["predicted_orders"] = sum(len(v) for v in p.values())
    return out


def eval_primock(writer: DraftWriter, data: Path) -> dict[str, Any]:
    from nlp.schema import Transcript, TranscriptSegment

    counts: dict[str, int] = {}
    for pv in corpora.read_primock(data):
        segs = tuple(TranscriptSegment(id=i, start_s=t.start_s, end_s=t.end_s, text=t.text,
                                       speaker=t.speaker) for i, t in enumerate(pv.turns))
        orders = writer.orders(Transcript(pv.name, segs, engine="text"))
        counts[pv.name] = len(simord.to_mediqa(orders))
    n = len(counts)
    return {"consultations": n, "orders": sum(counts.values()),
            "orders_per_consultation": r4(sum(counts.values()) / max(1, n)),
            "consultations_with_orders": sum(1 for c in counts.values() if c),
            "per_consultation": counts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--data", type=Path, default=corpora.default_data_dir())
    p.add_argument("--split", default="dev", choices=["dev", "train"])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--predictions", type=Path, default=None,
                   help="also write the SIMORD predictions (the official format) here")
    p.add_argument("--skip-asr", action="store_true")
    p.add_argument("--skip-primock", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rules", action="store_true",
                   help="the cue rules decide instead of the order model (the baseline)")
    args = p.parse_args()
    set_inference_threads(args.threads)
    writer = DraftWriter.load(args.models)
    if args.rules:
        writer = writer.with_cue_rules()
    t0 = time.monotonic()
    report: dict[str, Any] = {"models": writer.versions}
    sim = eval_simord(writer, args.data, args.split)
    preds = sim.pop("_predictions")
    report[f"simord_{args.split}"] = sim
    if args.predictions:
        args.predictions.parent.mkdir(parents=True, exist_ok=True)
        args.predictions.write_text(json.dumps(preds, indent=1) + "\n")
    report["aci_valid"] = eval_aci_valid(writer, args.data)
    if not args.skip_asr:
        report["asr"] = eval_asr(writer, args.data, args.split, preds)
    if not args.skip_primock:
        report["primock"] = eval_primock(writer, args.data)
    report["seconds"] = round(time.monotonic() - t0, 1)
    report["about"] = __doc__
    s = report[f"simord_{args.split}"]
    print(f"SIMORD {args.split} ({s['encounters']} visits, {s['gold_orders']} gold, "
          f"{s['predicted_orders']} predicted): leaderboard average "
          f"{s['leaderboard_average']:.1f} | desc {100 * s['description_Rouge1_f1']:.1f} "
          f"reason {100 * s['reason_Rouge1_f1']:.1f} type {100 * s['order_type_Strict_f1']:.1f} "
          f"prov {100 * s['provenance_MultiLabel_f1']:.1f} | match F1 "
          f"{100 * s['description_Match_f1']:.1f} | false alarms {s['false_alarms']} "
          f"({s['false_medications']} medications) | CPU/visit p50 "
          f"{s['cpu_s_per_visit_p50']:.2f} s")
    for name, a in report["aci_valid"].items():
        print(f"ACI-BENCH valid ({name}, {a['visits']} visits): P {a['precision']:.3f} "
              f"R {a['recall']:.3f} F1 {a['f1']:.3f} status {a['status_accuracy']:.3f} "
              f"invented {a['invented']} ({a['invented_medications']} medications)")
    if "asr" in report:
        a = report["asr"]
        print(f"ASR transcripts ({a['encounters']} SIMORD {args.split} visits): text average "
              f"{a['asr']['text_average']:.1f} (clean {a['clean']['text_average']:.1f}); "
              f"match F1 {100 * a['asr']['description_Match_f1']:.1f} "
              f"(clean {100 * a['clean']['description_Match_f1']:.1f})")
    if "primock" in report:
        pm = report["primock"]
        print(f"PriMock57: {pm['orders']} orders in {pm['consultations_with_orders']} of "
              f"{pm['consultations']} consultations")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
