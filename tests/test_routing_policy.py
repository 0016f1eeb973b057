"""RoutingPolicy as a Rasa 3.6 graph component: registration, config, and persist/load (the model
carries its matrix). The fixtures and scenarios: tests/routing_policy_kit.py."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphModelConfiguration, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.data import TrainingType
from rasa.shared.utils.io import read_yaml_file

from backline.rasa.routing_policy import RoutingPolicy
from tests.routing_policy_kit import (  # noqa: F401  (fixtures)
    MATRIX_TEXT,
    POLICY,
    REFUND_780,
    ROOT,
    SCENARIOS,
    assert_escalation,
    config_for,
    domain,
    escalated,
    execution_context,
    explicit_request,
    load,
    matrix_file,
    model_storage,
    policy,
    predicted,
    record_of,
    refund,
    resource,
    tracker_of,
    train,
    trained,
)

# --- registration and configuration -------------------------------------------------------


def test_registered_with_the_default_recipe() -> None:
    registered = DefaultV1Recipe._from_registry(POLICY)
    assert registered.clazz is RoutingPolicy
    assert registered.types == {DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT}
    assert registered.is_trainable


def test_config_yml_puts_the_policy_ahead_of_the_others() -> None:
    """Priority breaks ties between equally confident predictions: RoutingPolicy's 1.0 wins."""
    policies = read_yaml_file(ROOT / "config.yml")["policies"]
    [entry] = [p for p in policies if p["name"] == POLICY]
    assert entry["matrix"] == "escalation.yml"
    priority = {**RoutingPolicy.get_default_config(), **entry}["priority"]
    others = [
        {**DefaultV1Recipe._from_registry(p["name"]).clazz.get_default_config(), **p}["priority"]
        for p in policies
        if p["name"] != POLICY
    ]
    assert [p["name"] for p in policies if p["name"] != POLICY] == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
    assert priority == 7 > max(others)


# --- persist and load: the model carries its matrix -----------------------------------------


def test_training_stores_the_matrix_with_the_model(
    trained: RoutingPolicy, matrix_file: Path, model_storage: LocalModelStorage, resource: Resource
) -> None:
    with model_storage.read_from(resource) as directory:
        assert sorted(p.name for p in directory.iterdir()) == ["escalation.yml", "signals.yml"]
        assert (directory / "escalation.yml").read_bytes() == matrix_file.read_bytes()
        assert (directory / "signals.yml").read_bytes() == (matrix_file.parent / "signals.yml").read_bytes()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_loaded_policy_predicts_like_the_trained_one(
    scenario: str, trained: RoutingPolicy, policy: RoutingPolicy, domain: Domain
) -> None:
    events = SCENARIOS[scenario]()
    before = trained.predict_action_probabilities(tracker_of(domain, events), domain)
    after = policy.predict_action_probabilities(tracker_of(domain, events), domain)
    assert policy is not trained
    assert after.probabilities == before.probabilities
    assert (after.policy_name, after.policy_priority) == (before.policy_name, before.policy_priority)
    assert (after.policy_name, after.policy_priority) == ("RoutingPolicy", 7)
    assert after.events == before.events
    assert after.optional_events == before.optional_events
    assert after.action_metadata == before.action_metadata
    assert after.is_no_user_prediction == before.is_no_user_prediction


def test_loaded_policy_keeps_the_matrix_it_was_trained_with(
    trained: RoutingPolicy,
    matrix_file: Path,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    domain: Domain,
    tmp_path: Path,
) -> None:
    """Editing escalation.yml after training changes nothing until the model is retrained."""
    raised = MATRIX_TEXT.replace(
        "amount_above: {value: 500, currency: EUR}", "amount_above: {value: 1000, currency: EUR}"
    )
    assert raised != MATRIX_TEXT
    matrix_file.write_text(raised, encoding="utf-8")
    events = refund(REFUND_780, "€780", 780.0)

    loaded = load(config_for(matrix_file), model_storage, Resource("routing"), execution_context)
    record = escalated(loaded, domain, events, "action_handoff", "human", "sensitive_topic", "refund_over_limit")
    assert record["evidence"]["sensitive_topic"]["limit_eur"] == 500.0

    matrix_file.unlink()  # not even needed any more
    again = load(config_for(matrix_file), model_storage, Resource("routing"), execution_context)
    assert again.predict_action_probabilities(tracker_of(domain, events), domain).optional_events

    # Retrained on the edited matrix, 780 EUR is under the limit: the refund form collects the details.
    edited = tmp_path / "edited.yml"
    edited.write_text(raised, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", tmp_path / "signals.yml")
    retrained = train(config_for(edited), model_storage, Resource("routing2"), execution_context, domain)
    prediction = retrained.predict_action_probabilities(tracker_of(domain, events), domain)
    assert predicted(prediction, domain) == ("collect_refund_request", 1.0)
    assert record_of(prediction)["action"] == "collect"


def test_model_archive_round_trip(
    trained: RoutingPolicy,
    matrix_file: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
    tmp_path: Path,
) -> None:
    """Packed into a model archive and unpacked elsewhere, as `rasa run` loads a model."""
    archive = tmp_path / "model.tar.gz"
    configuration = GraphModelConfiguration(
        train_schema=GraphSchema({}),
        predict_schema=GraphSchema({}),
        training_type=TrainingType.CORE,
        assistant_id="backline-test",
        language="en",
        core_target=None,
        nlu_target=None,
    )
    model_storage.create_model_package(archive, configuration, domain)
    matrix_file.unlink()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    storage, _ = LocalModelStorage.from_model_archive(unpacked, archive)
    loaded = load(config_for(matrix_file), storage, resource, execution_context)
    events = explicit_request()
    escalated(loaded, domain, events, "action_handoff", "human", "explicit_request", None)


def test_fingerprint_addon_follows_the_matrix_content(
    matrix_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa retrains (and re-checks) the policy when the matrix or its signals file changes, not otherwise."""
    config = config_for(matrix_file)
    signals = matrix_file.parent / "signals.yml"
    original = RoutingPolicy.fingerprint_addon(config)
    assert original == hashlib.sha256(matrix_file.read_bytes() + b"\0" + signals.read_bytes()).hexdigest()
    assert RoutingPolicy.fingerprint_addon(config) == original

    same = tmp_path / "same.yml"
    same.write_bytes(matrix_file.read_bytes())
    shutil.copy(signals, tmp_path / "signals.yml")
    assert RoutingPolicy.fingerprint_addon(config_for(same)) == original

    signals.write_text(
        signals.read_text(encoding="utf-8").replace("- live agent\n", "- live agents\n"), encoding="utf-8"
    )
    assert RoutingPolicy.fingerprint_addon(config) != original
    shutil.copy(tmp_path / "signals.yml", signals)
    assert RoutingPolicy.fingerprint_addon(config) == original

    matrix_file.write_text(MATRIX_TEXT.replace("overlap: 0.70", "overlap: 0.75"), encoding="utf-8")
    changed = RoutingPolicy.fingerprint_addon(config)
    assert changed is not None and changed != original
    matrix_file.write_text(MATRIX_TEXT, encoding="utf-8")
    assert RoutingPolicy.fingerprint_addon(config) == original

    monkeypatch.chdir(ROOT)  # the default `matrix: escalation.yml`, relative, as `rasa train` sees it
    assert RoutingPolicy.fingerprint_addon(RoutingPolicy.get_default_config()) == original
    assert RoutingPolicy.fingerprint_addon(config_for(tmp_path / "missing.yml")) is None
