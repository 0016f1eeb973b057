"""The routing-layer overhead benchmark (backline.bench.overhead): the pruned predict graph, and a short
measurement on the trained model (models/backline.tar.gz, as the other model tests find it)."""

from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest

from tests.conftest import PROJECT_ROOT

os.environ["RASA_TELEMETRY_ENABLED"] = "false"

from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble  # noqa: E402
from rasa.core.policies.memoization import MemoizationPolicy  # noqa: E402
from rasa.core.policies.rule_policy import RulePolicy  # noqa: E402
from rasa.core.policies.ted_policy import TEDPolicy  # noqa: E402
from rasa.engine.graph import GraphSchema, SchemaNode  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.graph_components.converters.nlu_message_converter import NLUMessageConverter  # noqa: E402
from rasa.graph_components.providers.domain_provider import DomainProvider  # noqa: E402
from rasa.nlu.classifiers.diet_classifier import DIETClassifier  # noqa: E402
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler  # noqa: E402
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer  # noqa: E402
from rasa.nlu.utils.spacy_utils import SpacyNLP  # noqa: E402

from backline.bench.overhead import ROUTING_LAYER, component_name, measure, prune_schema, render  # noqa: E402
from backline.rasa.entities import BacklineEntityExtractor  # noqa: E402
from backline.rasa.routing_policy import RoutingPolicy  # noqa: E402
from backline.rasa.sentiment import SentimentAnalyzer  # noqa: E402
from backline.rasa.signals import SignalDetectorComponent  # noqa: E402
from backline.rasa.vocabulary import KnownWordsDetector  # noqa: E402

MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
POLICIES = {"policy0": "run_routing", "policy1": "run_memo", "policy2": "run_rule", "policy3": "run_ted"}


def _node(uses: Any, fn: str, needs: Dict[str, str]) -> SchemaNode:
    return SchemaNode(needs=needs, uses=uses, constructor_name="load", fn=fn, config={}, eager=True)


def _schema() -> GraphSchema:
    """The shape of the model's predict graph: the routing layer in the NLU chain and in the ensemble."""
    tracker = {"tracker": "__tracker__", "domain": "domain_provider"}
    return GraphSchema(
        {
            "convert": _node(NLUMessageConverter, "convert_user_message", {"messages": "__message__"}),
            "provide_spacy": _node(SpacyNLP, "provide", {}),
            "run_spacy": _node(SpacyNLP, "process", {"model": "provide_spacy", "messages": "convert"}),
            "run_tokenizer": _node(SpacyTokenizer, "process", {"messages": "run_spacy"}),
            "run_entities": _node(BacklineEntityExtractor, "process", {"messages": "run_tokenizer"}),
            "run_sentiment": _node(SentimentAnalyzer, "process", {"messages": "run_entities"}),
            "run_signals": _node(
                SignalDetectorComponent, "process", {"model": "provide_spacy", "messages": "run_sentiment"}
            ),
            "run_vocabulary": _node(KnownWordsDetector, "process", {"messages": "run_signals"}),
            "run_diet": _node(DIETClassifier, "process", {"messages": "run_vocabulary"}),
            "run_regex": _node(RegexMessageHandler, "process", {"messages": "run_diet", "domain": "domain_provider"}),
            "domain_provider": _node(DomainProvider, "provide_inference", {}),
            "run_routing": _node(RoutingPolicy, "predict_action_probabilities", dict(tracker)),
            "run_memo": _node(MemoizationPolicy, "predict_action_probabilities", dict(tracker)),
            "run_rule": _node(RulePolicy, "predict_action_probabilities", dict(tracker)),
            "run_ted": _node(TEDPolicy, "predict_action_probabilities", dict(tracker)),
            "select_prediction": _node(
                DefaultPolicyPredictionEnsemble, "combine_predictions_from_kwargs", {**POLICIES, **tracker}
            ),
        }
    )


def _nlu_chain(schema: GraphSchema, target: str) -> List[str]:
    """The nodes from `target` back to the message converter, following `messages`."""
    chain = [target]
    while schema.nodes[chain[-1]].needs.get("messages") in schema.nodes:
        chain.append(schema.nodes[chain[-1]].needs["messages"])
    return chain[::-1]


def test_pruning_removes_the_routing_layer_and_rewires_the_graph() -> None:
    schema = _schema()
    pruned = prune_schema(schema)

    assert not {"run_sentiment", "run_signals", "run_routing"} & set(pruned.nodes)
    assert all(component_name(node.uses) not in ROUTING_LAYER for node in pruned.nodes.values())
    parents = {parent for node in pruned.nodes.values() for parent in node.needs.values()}
    assert parents - set(pruned.nodes) == {"__message__", "__tracker__"}
    assert _nlu_chain(pruned, "run_regex") == [
        "convert",
        "run_spacy",
        "run_tokenizer",
        "run_entities",
        "run_vocabulary",
        "run_diet",
        "run_regex",
    ]
    assert pruned.nodes["run_spacy"].needs == {"model": "provide_spacy", "messages": "convert"}
    ensemble = pruned.nodes["select_prediction"].needs
    assert ensemble == {
        "policy0": "run_memo",
        "policy1": "run_rule",
        "policy2": "run_ted",
        "tracker": "__tracker__",
        "domain": "domain_provider",
    }
    # the other nodes are kept as they were, and the original schema is untouched
    assert pruned.nodes["run_ted"] == schema.nodes["run_ted"]
    assert schema.nodes["select_prediction"].needs["policy0"] == "run_routing"
    assert "run_sentiment" in schema.nodes


def test_pruning_nothing_keeps_the_schema() -> None:
    schema = _schema()
    assert prune_schema(schema, removed=()).nodes == schema.nodes


def test_a_removed_node_without_messages_input_cannot_be_bypassed() -> None:
    # without SpacyNLP, the signal detector would lose the spaCy model it needs
    with pytest.raises(ValueError, match="run_signals needs provide_spacy"):
        prune_schema(_schema(), removed=(component_name(SpacyNLP),))


def test_pruning_the_trained_models_predict_graph() -> None:
    assert MODEL.is_file(), f"{MODEL} is missing: `make train` first"
    schema = LocalModelStorage.metadata_from_archive(MODEL).predict_schema
    pruned = prune_schema(schema)

    removed = set(schema.nodes) - set(pruned.nodes)
    assert sorted(component_name(schema.nodes[name].uses) for name in removed) == sorted(ROUTING_LAYER)
    assert not removed & {parent for node in pruned.nodes.values() for parent in node.needs.values()}
    chain = [
        component_name(pruned.nodes[name].uses).rsplit(".", 1)[-1]
        for name in _nlu_chain(pruned, "run_RegexMessageHandler")
    ]
    assert chain[:5] == [
        "NLUMessageConverter",
        "SpacyNLP",
        "SpacyTokenizer",
        "BacklineEntityExtractor",
        "KnownWordsDetector",
    ]
    ensemble = pruned.nodes["select_prediction"].needs
    policies = [component_name(pruned.nodes[ensemble[f"policy{i}"]].uses).rsplit(".", 1)[-1] for i in range(3)]
    assert policies == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"] and "policy3" not in ensemble


def test_measure_on_the_trained_model() -> None:
    assert MODEL.is_file(), f"{MODEL} is missing: `make train` first"
    lines: List[str] = []
    result = measure(MODEL, rounds=1, log=lines.append)

    # "hello" is a greeting the routing layer lets through: both stacks answer it the same way
    assert result.first_actions["hello"][0] == result.first_actions["hello"][1] == "utter_greet"
    for summary in (result.with_routing, result.without_routing, result.turn_with, result.turn_without):
        assert summary.messages >= 40
        assert 0 < summary.p50 <= summary.p95
    assert result.p50_ratio > 0 and result.p95_ratio > 0
    assert min(result.parse_p50) > 0 and min(result.predictions_per_turn) >= 1
    assert lines and lines[-1].startswith("[overhead] round 1/1")
    section = render(result)
    assert section[0] == "## Routing-layer overhead"
    assert "| with routing layer |" in "\n".join(section) and "Ratio with/without" in section[-1]
