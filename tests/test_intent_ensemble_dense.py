"""IntentEnsembleClassifier's dense member (`dense_model: true`): trained, persisted beside Rasa's
model, loaded, and combined with the count model."""

from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix

from backline.rasa.intent_ensemble import DENSE_SUFFIX, IntentEnsembleClassifier, geometric_mean

# The counts say nothing (the same for every example); the dense vector tells the intents apart.
EXAMPLES = [
    ([1.0, 0.0], "greet"),
    ([0.9, 0.1], "greet"),
    ([0.0, 1.0], "goodbye"),
    ([0.1, 0.9], "goodbye"),
]


def message(dense: Optional[List[float]], intent: Optional[str] = None) -> Message:
    result = Message(data={TEXT: "x", **({INTENT: intent} if intent else {})})
    result.add_features(Features(csr_matrix(np.array([[1.0, 1.0]])), FEATURE_TYPE_SENTENCE, TEXT, "counts"))
    if dense is not None:
        result.add_features(Features(np.array([dense]), FEATURE_TYPE_SENTENCE, TEXT, "embeddings"))
    return result


def train(tmp_path: Path, examples=EXAMPLES, **config: object):
    storage = LocalModelStorage(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    resource = Resource("ensemble")
    context = ExecutionContext(GraphSchema({}), node_name="ensemble")
    config = {**IntentEnsembleClassifier.get_default_config(), "ranking_length": 2, "dense_model": True, **config}
    component = IntentEnsembleClassifier.create(config, storage, resource, context)
    component.train(TrainingData([message(dense, intent) for dense, intent in examples]))
    return component, IntentEnsembleClassifier.load(config, storage, resource, context), tmp_path


def test_the_dense_member_decides_where_the_counts_cannot(tmp_path: Path) -> None:
    component, loaded, _ = train(tmp_path)
    assert loaded.dense_clf is not None
    probe = [[1.0, 0.0], [0.0, 1.0]]
    before = [m.get(INTENT) for m in component.process([message(d) for d in probe])]
    after = [m.get(INTENT) for m in loaded.process([message(d) for d in probe])]
    assert [intent["name"] for intent in after] == ["greet", "goodbye"]
    assert after == before
    assert after[0]["confidence"] > 0.5


def test_the_dense_model_is_persisted_beside_rasas(tmp_path: Path) -> None:
    _, _, storage = train(tmp_path)
    assert list(storage.rglob(f"*{DENSE_SUFFIX}"))
    assert list(storage.rglob("*.skops"))


def restored_under(tmp_path: Path, name: str, rename=None):
    """The trained component's directory copied to another resource name, as Rasa's training cache
    restores a component whose node name changed; `rename` maps old file names to new ones."""
    import shutil

    _, _, storage_dir = train(tmp_path / "trained")
    (source,) = [d for d in storage_dir.iterdir() if d.is_dir()]
    target = tmp_path / "restored" / name
    shutil.copytree(source, target)
    for old, new in (rename or {}).items():
        (target / old).rename(target / new)
    config = {**IntentEnsembleClassifier.get_default_config(), "ranking_length": 2, "dense_model": True}
    context = ExecutionContext(GraphSchema({}), node_name=name)
    return IntentEnsembleClassifier.load(config, LocalModelStorage(tmp_path / "restored"), Resource(name), context)


def test_a_model_restored_under_another_node_name_loads_both_members(tmp_path: Path) -> None:
    loaded = restored_under(tmp_path, "run_IntentEnsembleClassifier11")
    assert loaded.clf is not None and loaded.dense_clf is not None
    names = [m.get(INTENT)["name"] for m in loaded.process([message([1.0, 0.0]), message([0.0, 1.0])])]
    assert names == ["greet", "goodbye"]


def test_a_model_persisted_with_the_resource_names_still_loads(tmp_path: Path) -> None:
    """Models trained before the fixed file names: files named after their resource."""
    loaded = restored_under(
        tmp_path,
        "other",
        {"counts.skops": "ensemble.skops", "dense-dense.skops": f"ensemble{DENSE_SUFFIX}"},
    )
    assert loaded.clf is not None and loaded.dense_clf is not None


def test_the_count_model_reads_the_sparse_features_only(tmp_path: Path) -> None:
    component, _, _ = train(tmp_path)
    assert component._create_X([message([0.3, 0.7])]).shape == (1, 2)
    without = IntentEnsembleClassifier.get_default_config()
    assert without["dense_model"] is False


def test_without_any_dense_features_the_count_model_stands_alone(tmp_path: Path) -> None:
    component, loaded, _ = train(tmp_path, examples=[(None, "greet"), (None, "goodbye")])
    assert component.dense_clf is None and loaded.dense_clf is None
    assert loaded.process([message(None)])[0].get(INTENT)["name"] in {"greet", "goodbye"}


def test_dense_features_on_some_examples_only_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigException, match="dense sentence features on every example"):
        train(tmp_path, examples=[([1.0, 0.0], "greet"), (None, "goodbye")])


def test_weighted_geometric_mean() -> None:
    combined = geometric_mean(np.array([[0.8, 0.2]]), np.array([[0.2, 0.8]]), weights=(2, 1))
    # (0.8² · 0.2)^⅓ = 0.5429 and (0.2² · 0.8)^⅓ = 0.3420, renormalised
    assert combined[0] == pytest.approx([0.6135, 0.3865], abs=1e-4)


def test_trained_and_loaded_models_keep_coefficients_whose_transpose_is_contiguous(tmp_path: Path) -> None:
    component, loaded, _ = train(tmp_path)
    for model in (component.clf, component.dense_clf, loaded.clf, loaded.dense_clf):
        assert model.coef_.T.flags["C_CONTIGUOUS"]


def test_fast_coefficients_keeps_the_predictions() -> None:
    from sklearn.linear_model import LogisticRegression

    from backline.rasa.intent_ensemble import fast_coefficients

    rows = np.array(
        [[1.0, 0.0, 2.0], [0.0, 1.0, 0.5], [2.0, 0.5, 0.0], [0.1, 2.0, 1.0], [1.5, 1.5, 0.2], [0.0, 0.3, 2.5]]
    )
    model = LogisticRegression(max_iter=500).fit(rows, ["a", "b", "a", "b", "c", "c"])
    probe = csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]))
    before = model.predict_proba(probe)
    assert not model.coef_.T.flags["C_CONTIGUOUS"]
    fast_coefficients(model)
    assert model.coef_.T.flags["C_CONTIGUOUS"]
    assert model.predict_proba(probe) == pytest.approx(before, abs=1e-12)
    fast_coefficients(None)  # an unfitted member: nothing to do


def test_weighted_geometric_mean_of_three_members() -> None:
    from backline.rasa.intent_ensemble import weighted_geometric_mean

    members = [np.array([[0.9, 0.1]]), np.array([[0.5, 0.5]]), np.array([[0.6, 0.4]])]
    # (0.9 · 0.5 · 0.6)^⅓ = 0.6463 and (0.1 · 0.5 · 0.4)^⅓ = 0.2714, renormalised
    assert weighted_geometric_mean(members, [1, 1, 1])[0] == pytest.approx([0.7042, 0.2958], abs=1e-4)
    # a member of weight 0 takes no part: (0.9 · 0.6)^½ = 0.7348, (0.1 · 0.4)^½ = 0.2
    assert weighted_geometric_mean(members, [1, 0, 1])[0] == pytest.approx([0.7860, 0.2140], abs=1e-4)


def test_the_weights_decide_how_much_each_member_counts(tmp_path: Path) -> None:
    # Counts say nothing, so with the earlier classifier's ranking silenced (weight 0) the dense
    # member decides; raising the earlier ranking's weight lets it overrule.
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _, dense_only, _ = train(tmp_path / "a", weights={"counts": 1.0, "dense": 1.0, "earlier": 0.0})
    _, earlier_heavy, _ = train(tmp_path / "b", weights={"counts": 1.0, "dense": 1.0, "earlier": 20.0})

    def parse(component: IntentEnsembleClassifier) -> dict:
        probe = message([1.0, 0.0])
        probe.set("intent_ranking", [{"name": "goodbye", "confidence": 0.99}, {"name": "greet", "confidence": 0.01}])
        return component.process([probe])[0].get(INTENT)

    assert parse(dense_only)["name"] == "greet"
    assert parse(earlier_heavy)["name"] == "goodbye"


@pytest.mark.parametrize(
    "weights, error",
    [
        ({"diet": 1.0}, "maps counts, dense, earlier"),
        ({"dense": -1.0}, "weight of `dense` must be a number >= 0"),
        ({"earlier": "high"}, "weight of `earlier` must be a number >= 0"),
        ({"counts": 0.0}, "`counts` weight must be > 0"),
    ],
)
def test_bad_weights_are_refused_with_the_member_named(weights: dict, error: str) -> None:
    config = IntentEnsembleClassifier.get_default_config()
    config["weights"] = {**config["weights"], **weights}
    with pytest.raises(InvalidConfigException, match=error):
        IntentEnsembleClassifier.validate_config(config)
