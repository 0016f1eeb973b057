"""IntentEnsembleClassifier as a Rasa 3.6 graph component: train, persist, load, predict."""

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix

from backline.rasa.intent_ensemble import IntentEnsembleClassifier, geometric_mean, shift_prior

# One-hot-ish sentence features: feature 0 means "greet", 1 "bye", 2 "order".
EXAMPLES = [
    ([1, 0, 0], "greet"),
    ([1, 0, 1], "greet"),
    ([0, 1, 0], "goodbye"),
    ([0, 1, 1], "goodbye"),
    ([0, 0, 1], "order_status"),
    ([0, 0, 2], "order_status"),
]


def message(
    features: Optional[List[int]], intent: Optional[str] = None, ranking: Optional[Dict[str, float]] = None
) -> Message:
    data = {TEXT: "x" if features else ""}
    if intent:
        data[INTENT] = intent
    if ranking:
        data["intent_ranking"] = [{"name": name, "confidence": value} for name, value in ranking.items()]
    result = Message(data=data)
    if features:
        result.add_features(Features(csr_matrix(np.array([features], dtype=float)), FEATURE_TYPE_SENTENCE, TEXT, "cvf"))
    return result


def train(tmp_path: Path, **config: object):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ensemble")
    context = ExecutionContext(GraphSchema({}), node_name="ensemble")
    config = {**IntentEnsembleClassifier.get_default_config(), "ranking_length": 2, **config}
    component = IntentEnsembleClassifier.create(config, storage, resource, context)
    component.train(TrainingData([message(features, intent) for features, intent in EXAMPLES]))
    return component, IntentEnsembleClassifier.load(config, storage, resource, context)


@pytest.fixture
def trained(tmp_path: Path):
    return train(tmp_path)


def test_the_loaded_model_predicts_what_the_trained_one_did(trained) -> None:
    component, loaded = trained
    probe = [[1, 0, 0], [0, 1, 0], [0, 0, 3]]
    before = [m.get(INTENT) for m in component.process([message(f) for f in probe])]
    after = [m.get(INTENT) for m in loaded.process([message(f) for f in probe])]
    assert [intent["name"] for intent in after] == ["greet", "goodbye", "order_status"]
    assert after == before


def test_it_combines_its_probabilities_with_the_earlier_ranking(trained) -> None:
    _, loaded = trained
    earlier = {"greet": 0.2, "order_status": 0.8}  # goodbye missing: the floor
    [result] = loaded.process([message([1, 0, 0], ranking=earlier)])
    classes = list(loaded.clf.classes_)
    own = loaded.clf.predict_proba(csr_matrix(np.array([[1, 0, 0]], dtype=float)))
    expected = geometric_mean(own, np.array([[max(earlier.get(name, 0.0), 1e-6) for name in classes]]))[0]
    best = int(np.argmax(expected))
    assert result.get(INTENT) == {"name": classes[best], "confidence": pytest.approx(expected[best])}
    ranking = result.get("intent_ranking")
    assert len(ranking) == 2 and ranking[0]["name"] == classes[best]
    assert ranking[0]["confidence"] >= ranking[1]["confidence"]
    assert "intent" in result.as_dict(only_output_properties=True)


def test_without_an_earlier_ranking_it_is_the_logistic_regression(trained) -> None:
    _, loaded = trained
    [result] = loaded.process([message([0, 1, 0])])
    own = loaded.clf.predict_proba(csr_matrix(np.array([[0, 1, 0]], dtype=float)))[0]
    assert result.get(INTENT)["name"] == "goodbye"
    assert result.get(INTENT)["confidence"] == pytest.approx(own.max())


def test_geometric_mean_falls_back_to_the_first_where_the_product_vanishes() -> None:
    combined = geometric_mean(np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert combined[0] == pytest.approx([1.0, 0.0])
    assert combined[1] == pytest.approx([1 / 3, 2 / 3])
    assert geometric_mean(np.array([[0.3, 0.7]]), np.array([[0.0, 0.0]]))[0] == pytest.approx([0.3, 0.7])


def test_the_out_of_scope_intent_gets_its_prior(tmp_path: Path) -> None:
    # "goodbye" stands in for the out-of-scope intent: its combined probability is multiplied by 50.
    _, loaded = train(tmp_path, out_of_scope_intent="goodbye", out_of_scope_prior=50.0)
    earlier = {"greet": 0.6, "goodbye": 0.1, "order_status": 0.3}
    [result] = loaded.process([message([1, 0, 1], ranking=earlier)])
    classes = list(loaded.clf.classes_)
    own = loaded.clf.predict_proba(csr_matrix(np.array([[1, 0, 1]], dtype=float)))
    plain = geometric_mean(own, np.array([[earlier[name] for name in classes]]))
    expected = shift_prior(plain, classes.index("goodbye"), 50.0)[0]
    assert result.get(INTENT) == {"name": "goodbye", "confidence": pytest.approx(expected.max())}
    assert classes[int(np.argmax(plain))] != "goodbye"


def test_shift_prior_rescales_one_column_and_renormalises() -> None:
    shifted = shift_prior(np.array([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]]), 1, 3.0)
    assert shifted[0] == pytest.approx([1 / 3, 1 / 2, 1 / 6])
    assert shifted[1] == pytest.approx([0.0, 0.75, 0.25])


def test_a_message_without_features_keeps_the_earlier_intent(trained) -> None:
    _, loaded = trained
    empty = message(None, ranking={"greet": 0.4})
    empty.set(INTENT, {"name": "greet", "confidence": 0.4})
    [result, other] = loaded.process([empty, message([0, 1, 0])])
    assert result.get(INTENT) == {"name": "greet", "confidence": 0.4}
    assert other.get(INTENT)["name"] == "goodbye"
    assert loaded.process([message(None)])[0].get(INTENT) is None
