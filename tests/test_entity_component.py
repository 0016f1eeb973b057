"""BacklineEntityExtractor as a Rasa 3.6 graph component after SpacyNLP and SpacyTokenizer."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any, List

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.rasa.entities import BacklineEntityExtractor
from tests._spacy_fixture import (  # noqa: F401
    build_component,
    execution_context,
    kestrel_pipeline_path,
    make_spacy_nlp,
    model_storage,
    spacy_nlp,
    spacy_pipeline,
    tokenizer,
    train_nlu_model,
)

COMPONENT = "backline.rasa.entities.BacklineEntityExtractor"


make_extractor = partial(build_component, BacklineEntityExtractor, "backline_entities")


def run(spacy_nlp: SpacyNLP, tokenizer: SpacyTokenizer, extractor: Any, messages: List[Message]) -> List[Message]:
    return extractor.process(spacy_pipeline(spacy_nlp, tokenizer, messages))


def triples(message: Message) -> List[tuple]:
    text = message.get(TEXT)
    return [
        (e["entity"], text[e["start"] : e["end"]], e["value"])
        for e in message.get(ENTITIES, [])
        if e.get("extractor") == "BacklineEntityExtractor"
    ]


def test_registered_with_the_default_recipe() -> None:
    registered = DefaultV1Recipe._from_registry(COMPONENT)
    assert registered.clazz is BacklineEntityExtractor
    assert registered.types == {DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR}
    assert not registered.is_trainable


def test_extracts_entities_from_real_messages(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    messages = [
        Message(data={TEXT: "Where is my order #10023?"}),
        Message(data={TEXT: "I want a refund of €780 for the Hub X1"}),
        Message(data={TEXT: "EUR 1,200.50 was charged twice on INV-2025-0107"}),
        Message(data={TEXT: "email me at Ann@Example.com"}),
        Message(data={TEXT: "hello there"}),
    ]
    extractor = make_extractor(model_storage, execution_context)
    processed = run(spacy_nlp, tokenizer, extractor, messages)

    assert processed[0].get(SPACY_DOCS[TEXT]).text == "where is my order #10023?"
    assert [t.text for t in processed[0].get(TOKENS_NAMES[TEXT])][:5] == ["where", "is", "my", "order", "#"]
    assert triples(processed[0]) == [("order_id", "10023", "10023")]
    assert triples(processed[1]) == [
        ("amount", "€780", 780.0),
        ("currency", "€780", "EUR"),
        ("product", "the Hub X1", "Kestrel Hub X1"),
    ]
    assert triples(processed[2]) == [
        ("amount", "EUR 1,200.50", 1200.5),
        ("currency", "EUR 1,200.50", "EUR"),
        ("invoice_id", "INV-2025-0107", "INV-2025-0107"),
    ]
    assert triples(processed[3]) == [("email", "Ann@Example.com", "Ann@Example.com")]
    assert processed[4].get(ENTITIES) == []
    first = processed[1].get(ENTITIES)[0]
    assert first == {
        "entity": "amount",
        "start": 19,
        "end": 23,
        "value": 780.0,
        "confidence_entity": 1.0,
        "extractor": "BacklineEntityExtractor",
    }
    assert "entities" in processed[1].output_properties


def test_keeps_entities_of_other_extractors(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    other = {"entity": "city", "start": 0, "end": 6, "value": "berlin", "extractor": "Other"}
    message = Message(data={TEXT: "Berlin order 10023", ENTITIES: [dict(other)]})
    extractor = make_extractor(model_storage, execution_context)
    [processed] = run(spacy_nlp, tokenizer, extractor, [message])
    assert processed.get(ENTITIES)[0] == other
    assert triples(processed) == [("order_id", "10023", "10023")]


def test_case_sensitive_spacy_nlp_gives_the_same_entities(
    kestrel_pipeline_path: Path,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    nlp = make_spacy_nlp(kestrel_pipeline_path, model_storage, execution_context, case_sensitive=True)
    extractor = make_extractor(model_storage, execution_context)
    message = Message(data={TEXT: "Kestrel Cloud Pro for 29 EUR"})
    [processed] = run(nlp, tokenizer, extractor, [message])
    assert processed.get(SPACY_DOCS[TEXT]).text == "Kestrel Cloud Pro for 29 EUR"
    assert triples(processed) == [
        ("product", "Kestrel Cloud Pro", "Kestrel Cloud Pro"),
        ("amount", "29 EUR", 29.0),
        ("currency", "29 EUR", "EUR"),
    ]


def test_dimensions_filter_entities(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    config = {"dimensions": ["currency", "order_id"]}
    extractor = make_extractor(model_storage, execution_context, config)
    message = Message(data={TEXT: "order 10023: €780 for the hub x1"})
    [processed] = run(spacy_nlp, tokenizer, extractor, [message])
    assert triples(processed) == [("order_id", "10023", "10023"), ("currency", "€780", "EUR")]


def test_unknown_dimension_is_a_config_error(
    model_storage: LocalModelStorage, execution_context: ExecutionContext
) -> None:
    with pytest.raises(InvalidConfigException, match="money"):
        make_extractor(model_storage, execution_context, {"dimensions": ["money"]})


def test_message_without_spacy_doc_still_gets_money(
    model_storage: LocalModelStorage, execution_context: ExecutionContext
) -> None:
    extractor = make_extractor(model_storage, execution_context)
    [processed] = extractor.process([Message(data={TEXT: "order 10023 for €780"})])
    assert [e["entity"] for e in processed.get(ENTITIES)] == ["amount", "currency"]


def test_load_round_trip(
    spacy_nlp: SpacyNLP,
    tokenizer: SpacyTokenizer,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    config = {"dimensions": ["order_id"]}
    created = make_extractor(model_storage, execution_context, config)
    loaded = make_extractor(model_storage, execution_context, config, constructor="load")
    assert isinstance(loaded, BacklineEntityExtractor)
    text = "order 10023 for €780"
    [from_created] = run(spacy_nlp, tokenizer, created, [Message(data={TEXT: text})])
    [from_loaded] = run(spacy_nlp, tokenizer, loaded, [Message(data={TEXT: text})])
    assert from_loaded.get(ENTITIES) == from_created.get(ENTITIES)
    assert triples(from_loaded) == [("order_id", "10023", "10023")]


def test_trained_rasa_model_parses_entities(
    kestrel_pipeline_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Train a real NLU model with the component in config.yml, load it, parse a message."""
    from rasa.core.agent import Agent
    from rasa.engine.caching import CACHE_LOCATION_ENV

    monkeypatch.setenv(CACHE_LOCATION_ENV, str(tmp_path / "rasa-cache"))

    nlu = """\
        version: "3.1"
        nlu:
        - intent: order_status
          examples: |
            - where is my order
            - order status
        - intent: refund_request
          examples: |
            - i want a refund
            - refund please
        """
    model = train_nlu_model(tmp_path, kestrel_pipeline_path, [{"name": COMPONENT}], nlu)
    agent = Agent.load(model)
    text = "I want a refund of 1.200,50 € for order #10023"
    parsed = asyncio.run(agent.parse_message(text))
    assert parsed["intent"]["name"] == "refund_request"
    assert [(e["entity"], text[e["start"] : e["end"]], e["value"]) for e in parsed["entities"]] == [
        ("amount", "1.200,50 €", 1200.5),
        ("currency", "1.200,50 €", "EUR"),
        ("order_id", "10023", "10023"),
    ]
