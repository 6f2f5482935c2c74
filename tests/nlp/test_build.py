from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nlp.build import MODEL_NAMES, build_key, build_models, main, models_present
from nlp.encoder import TextClassifier, base_encoder_dir
from tests.nlp.conftest import TINY


def test_build_writes_every_model_a_card_and_the_key(tiny_models: Path, data_dir: Path) -> None:
    root = tiny_models / "nlp"
    info = json.loads((root / "build.json").read_text())
    assert info["key"] == build_key(TINY, data_dir, base_encoder_dir())
    assert models_present(tiny_models, info["key"])
    assert set(info["models"]) == set(MODEL_NAMES)
    card = (root / "MODEL_CARD.md").read_text()
    assert "MTS-Dialog" in card and "ACI-BENCH" in card and "PriMock57" in card
    roles = json.loads((root / "roles" / "meta.json").read_text())
    assert len(roles["transitions"]) == 3 and roles["labels"] == ["doctor", "patient", "other"]
    clf = TextClassifier.load(root / "mts-sections")
    assert len(clf.labels) == 20
    assert clf.predict_proba(["Doctor: Any allergies?\nPatient: None."]).shape == (1, 20)


def test_second_build_reuses_the_cache_and_a_new_recipe_gets_a_new_key(
        tiny_models: Path, data_dir: Path, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    cache = tiny_models.parent / "cache"
    key = json.loads((tiny_models / "nlp" / "build.json").read_text())["key"]
    stamp = (cache / key / "build.json").stat().st_mtime_ns
    build_models(data_dir, tmp_path / "models", cache, plan=TINY)
    assert "found in cache" in capfd.readouterr().err
    assert (cache / key / "build.json").stat().st_mtime_ns == stamp
    assert models_present(tmp_path / "models", key)
    changed = replace(TINY, role_examples=TINY.role_examples + 1)
    assert build_key(changed, data_dir, base_encoder_dir()) != key


def test_check_reports_missing_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--models", str(tmp_path)]) == 1
    assert "missing or stale" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "nowhere"), "--models", str(tmp_path),
                 "--cache", str(tmp_path / "c")]) == 1
