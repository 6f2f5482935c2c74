"""Fixtures for the NLP tests: tiny models built in test setup, and the real ones.

``tiny_models`` trains three throw-away classifiers (a few dozen examples, one
epoch, the top layer only) through the same build path as the real ones, once
per session. ``real_models`` is ``models/`` as built by ``roomscribe models
build`` (setup builds it; if it is missing, the same cached build runs here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.build import Plan, build_models, default_models_dir, models_present
from nlp.corpora import default_data_dir

TINY = Plan(recipes={
    "mts-sections": dict(max_length=48, epochs=1, lr=5e-4, train_layers=1),
    "sections": dict(max_length=48, epochs=1, lr=5e-4, train_layers=1),
    "roles": dict(max_length=48, epochs=1, lr=5e-4, train_layers=1),
}, section_none_keep=0.02, role_examples=48, max_examples=48, validate=False,
    orders=dict(max_length=48, epochs=1, lr=5e-4, train_layers=1), orders_generated=48)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "aci-bench").is_dir():
        pytest.fail(f"the shared corpora are missing at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    build_models(data_dir, root / "models", root / "cache", plan=TINY)
    return root / "models"


@pytest.fixture(scope="session")
def real_models(data_dir: Path) -> Path:
    models = default_models_dir()
    if not models_present(models):
        from nlp.build import default_cache_dir

        build_models(data_dir, models, default_cache_dir())
    return models
