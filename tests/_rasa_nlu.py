"""Rasa NLU helpers for component tests: a component created as Rasa's graph creates it, and a
real round trip (train with Rasa's own API, load the model back with Agent.load, classify texts
through the processor as a server would)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Type, TypeVar

from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource

Component = TypeVar("Component")


def created(component: Type[Component], tmp_path: Path, name: str, **config: Any) -> Component:
    """`component.create` with its defaults overridden by `config`, on a model storage in `tmp_path`."""
    return component.create(  # type: ignore[attr-defined,no-any-return]
        {**component.get_default_config(), **config},  # type: ignore[attr-defined]
        LocalModelStorage(tmp_path),
        Resource(name),
        ExecutionContext(node_name=name, graph_schema=None),  # type: ignore[arg-type]
    )


def featurizer_config(featurizer: str) -> str:
    """A minimal NLU pipeline around one featurizer: whitespace tokens, `featurizer`, and Rasa's
    logistic regression, so the featurizer's features are all the classifier sees."""
    return f"""
recipe: default.v1
language: en
assistant_id: featurizer-test
pipeline:
  - name: WhitespaceTokenizer
  - name: {featurizer}
  - name: LogisticRegressionClassifier
policies: []
"""


def trained_classifier(tmp_path: Path, config: str, nlu_data: str) -> Callable[[str], str]:
    """Trains `config` on `nlu_data` (YAML texts) under `tmp_path`; returns text -> predicted intent."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu

    (tmp_path / "config.yml").write_text(config)
    (tmp_path / "nlu.yml").write_text(nlu_data)
    model = train_nlu(str(tmp_path / "config.yml"), str(tmp_path / "nlu.yml"), str(tmp_path / "models"))
    assert model is not None, "Rasa trained no model"
    processor = Agent.load(model).processor

    async def intent(text: str) -> str:
        return (await processor.parse_message(UserMessage(text)))["intent"]["name"]

    return lambda text: asyncio.run(intent(text))
