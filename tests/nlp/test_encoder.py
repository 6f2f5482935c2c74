"""The text classifier with features beside the text: trained, saved, loaded, and
answering a changed feature from memory (no new pass through the encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.encoder import Example, Recipe, TextClassifier, train_classifier
from nlp.errors import ModelError
from nlp.features import POSITION_FEATURES, position_features, section_position

TEXTS = ["doctor: let's start lisinopril", "patient: i have a cough", "doctor: any fever ?",
         "patient: no fever", "doctor: your lungs are clear", "doctor: come back in a week"]
LABELS = ["early", "late"]


def examples() -> list[Example]:
    """The same sentences early and late in a visit: only the position tells the label."""
    out = []
    for text in TEXTS:
        for tenth in range(10):
            out.append(Example(text, "", int(tenth >= 5), position_features(tenth)))
    return out


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    recipe = Recipe(max_length=32, epochs=6, lr=5e-4, head_lr=5e-2, batch_size=8,
                    train_layers=1)
    return train_classifier(examples(), LABELS, recipe)


def test_positions_are_tenths_of_the_visit_one_hot_with_an_unknown_slot() -> None:
    assert [section_position(i, 20) for i in (0, 1, 2, 10, 19)] == [0, 0, 1, 5, 9]
    assert section_position(0, 0) == 0
    assert position_features(3) == tuple(float(i == 3) for i in range(POSITION_FEATURES))
    assert position_features(None)[-1] == 1.0 and sum(position_features(None)) == 1.0


def test_the_head_learns_the_features_and_memory_keeps_only_the_text(
        classifier: TextClassifier) -> None:
    text = ["doctor: your lungs are clear"]
    early = classifier.predict_proba(text, None, [position_features(0)])
    computed = classifier.computed
    late = classifier.predict_proba(text, None, [position_features(9)])
    assert classifier.computed == computed  # same words: not encoded again
    assert early[0].argmax() == 0 and late[0].argmax() == 1
    assert np.allclose(early.sum(1), 1.0) and np.allclose(late.sum(1), 1.0)
    assert classifier.predict(text * 2, None, [position_features(1), position_features(8)]) \
        == ["early", "late"]


def test_features_are_required_and_counted(classifier: TextClassifier,
                                           tiny_models: Path) -> None:
    without = TextClassifier.load(tiny_models / "nlp" / "mts-sections")
    with pytest.raises(ModelError, match="trained without features"):
        without.predict_proba(["Doctor: Any allergies?"], None, [position_features(0)])
    with pytest.raises(ModelError, match="11 features"):
        classifier.predict_proba(["doctor: hello"])
    with pytest.raises(ModelError, match="not 3"):
        classifier.predict_proba(["doctor: hello"], None, [(1.0, 0.0, 0.0)])
    with pytest.raises(ModelError, match="same number of features"):
        train_classifier([Example("a", "", 0, (1.0,)), Example("b", "", 1)], LABELS,
                         Recipe(epochs=1, train_layers=1))


def test_saved_and_loaded_it_answers_the_same(classifier: TextClassifier,
                                              tmp_path: Path) -> None:
    classifier.save(tmp_path / "clf")
    loaded = TextClassifier.load(tmp_path / "clf")
    assert loaded.n_features == POSITION_FEATURES
    features = [position_features(t) for t in range(10)]
    texts = [TEXTS[t % len(TEXTS)] for t in range(10)]
    # weights are stored in fp16: the same answers to about three digits
    assert np.allclose(loaded.predict_proba(texts, None, features),
                       classifier.predict_proba(texts, None, features), atol=5e-3)
