#!/usr/bin/env python
"""Choose the order model's decision threshold and SIMORD weight without SIMORD dev.

    python scripts/select_orders.py --json var/select_orders.json [--weights 1,3]
                                    [--thresholds 0.2,0.3,0.4,0.5,0.6]

Two-fold cross-validation over SIMORD train: for each fold, an order-intent model
is trained (the build's recipe) on the other fold's SIMORD visits plus the ACI-BENCH
weak labels and generated sentences, then drafts the orders of the held-out fold.
Every SIMORD train visit is thus predicted by a model that never saw it; the official
MEDIQA-OE scorer rates the pooled predictions per (SIMORD weight, threshold). The
best pair is what ``nlp.intents.ORDER_ABOVE`` and ``nlp.build`` use; SIMORD dev stays
for ``scripts/eval_orders.py``. Needs the built section and role models (``make
setup``); about 1.5 minutes of training per fold and weight on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_orders import official_scores

from nlp import corpora, simord
from nlp.build import RECIPES, default_models_dir
from nlp.encoder import Recipe, TextClassifier, base_encoder_dir, train_classifier
from nlp.intents import INTENTS, IntentModel, order_examples
from nlp.pipeline import DraftWriter
from nlp.roles import RoleLabeller


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=default_models_dir())
    p.add_argument("--data", type=Path, default=corpora.default_data_dir())
    p.add_argument("--weights", default="1,3")
    p.add_argument("--thresholds", default="0.2,0.3,0.4,0.5,0.6")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    weights = [int(w) for w in args.weights.split(",")]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    train = simord.read_simord(args.data, "train")
    ids = sorted(e.id for e in train)
    folds = [frozenset(ids[0::2]), frozenset(ids[1::2])]
    root = args.models / "nlp"
    sections, roles = TextClassifier.load(root / "sections"), RoleLabeller.load(root / "roles")
    truth = {e.id: list(e.expected) for e in train}
    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for weight in weights:
        preds: dict[float, dict[str, list[dict[str, Any]]]] = {t: {} for t in thresholds}
        for fold in folds:
            examples = order_examples(args.data, RECIPES.orders_generated, RECIPES.seed,
                                      weight, leave_out=fold)
            clf = train_classifier(examples, INTENTS, Recipe(**RECIPES.orders, seed=RECIPES.seed),
                                   base_encoder_dir())
            for threshold in thresholds:
                writer = DraftWriter(sections, roles,
                                     order_intents=IntentModel(clf, order_above=threshold))
                for e in train:
                    if e.id in fold:
                        preds[threshold][e.id] = simord.to_mediqa(
                            writer.orders(simord.transcript_of(e)))
        for threshold in thresholds:
            s = official_scores(args.data, truth, preds[threshold])
            row = {"simord_weight": weight, "order_above": threshold,
                   "leaderboard_average": s["leaderboard_average"],
                   "match_f1": s["description_Match_f1"],
                   "match_precision": s["description_Match_precision"],
                   "match_recall": s["description_Match_recall"]}
            results.append(row)
            print(json.dumps(row), flush=True)
    best = max(results, key=lambda r: r["leaderboard_average"])
    print(f"best: SIMORD weight {best['simord_weight']}, threshold {best['order_above']} "
          f"(out-of-fold average {best['leaderboard_average']:.1f}) in "
          f"{(time.monotonic() - t0) / 60:.1f} min")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "best": best,
                                         "about": __doc__}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
