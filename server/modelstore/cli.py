"""``roomscribe models``: list the models, fetch one, or build the NLP models.

    roomscribe models list [--json]
    roomscribe models fetch NAME [--force]
    roomscribe models build ...          (handed to nlp.build.main)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from server.modelstore.errors import ModelMissing, ModelStoreError
from server.modelstore.fetch import fetch_model, resolve_model_dir
from server.modelstore.manifest import find_model, load_manifests
from server.settings import Settings

__all__ = ["main"]


def _list(models_dir: Path, as_json: bool) -> int:
    rows = []
    for spec in load_manifests(models_dir).values():
        try:
            where: str | None = str(resolve_model_dir(spec, models_dir))
        except ModelMissing:
            where = None
        rows.append({"name": spec.name, "version": spec.version, "kind": spec.kind,
                     "engine": spec.engine, "language": spec.language, "source": spec.source,
                     "present": where is not None, "path": where})
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            state = r["path"] if r["present"] else "missing"
            print(f"{r['name']:<24} {r['kind']:<4} {r['engine']:<15} {state}")
    return 0


def _build(rest: list[str], settings: Settings) -> int:
    try:
        build = importlib.import_module("nlp.build")
    except ModuleNotFoundError as err:
        if err.name not in ("nlp.build", "nlp"):
            raise
        print("roomscribe: `models build` needs the NLP package (nlp/build.py), which is not "
              "installed in this checkout", file=sys.stderr)
        return 1
    return int(build.main(rest, settings))


def main(argv: list[str], settings: Settings) -> int:
    if argv[:1] == ["build"]:
        return _build(list(argv[1:]), settings)
    p = argparse.ArgumentParser(prog="roomscribe models", description="model manifests")
    sub = p.add_subparsers(dest="verb", required=True)
    ls = sub.add_parser("list", help="every model in models/*.toml and where it is")
    ls.add_argument("--json", action="store_true")
    fetch = sub.add_parser("fetch", help="download, verify (sha256) and unpack a model")
    fetch.add_argument("name")
    fetch.add_argument("--force", action="store_true", help="fetch again even if present")
    sub.add_parser("build", help="build the NLP models (nlp/build.py)")
    args = p.parse_args(argv)
    models_dir = settings.models_dir
    try:
        if args.verb == "list":
            return _list(models_dir, args.json)
        spec = find_model(models_dir, args.name)
        path = fetch_model(spec, models_dir, force=args.force)
    except ModelStoreError as err:
        print(f"roomscribe: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"name": spec.name, "path": str(path)}))
    return 0
