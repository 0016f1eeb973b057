"""Shared fixtures: the Kestrel spaCy pipeline, built once per session from tenant/products.yml,
and the Rasa SpacyNLP + SpacyTokenizer pipeline that Backline's NLU components run after."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

import pytest
import spacy
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.nlu.training_data.message import Message
from spacy.language import Language

from backline.nlp.build import build_pipeline

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = PROJECT_ROOT / "tenant" / "products.yml"

_built: Dict[str, Path] = {}


@pytest.fixture(scope="session")
def kestrel_pipeline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the built pipeline (built on first use, shared by every module)."""
    if "path" not in _built:
        _built["path"] = build_pipeline(PRODUCTS, tmp_path_factory.mktemp("spacy") / "kestrel_en")
    return _built["path"]


@pytest.fixture(scope="session")
def kestrel_nlp(kestrel_pipeline_path: Path) -> Language:
    """The built pipeline loaded the way Rasa's SpacyNLP loads it."""
    return spacy.load(kestrel_pipeline_path, disable=["parser"])


@pytest.fixture
def model_storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), model_id="backline-test")


def make_spacy_nlp(
    pipeline_path: Path,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    **options: Any,
) -> SpacyNLP:
    """Rasa's SpacyNLP over the built pipeline; `options` (e.g. case_sensitive) override its defaults."""
    config = {"model": str(pipeline_path), **options}
    return SpacyNLP.create(config, model_storage, Resource("spacy_nlp"), execution_context)


@pytest.fixture
def spacy_nlp(
    kestrel_pipeline_path: Path,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> SpacyNLP:
    return make_spacy_nlp(kestrel_pipeline_path, model_storage, execution_context)


@pytest.fixture
def tokenizer(model_storage: LocalModelStorage, execution_context: ExecutionContext) -> SpacyTokenizer:
    return SpacyTokenizer.create(
        SpacyTokenizer.get_default_config(), model_storage, Resource("tokenizer"), execution_context
    )


def build_component(
    component: Type[GraphComponent],
    resource_name: str,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    config: Optional[Dict[str, Any]] = None,
    constructor: str = "create",
) -> GraphComponent:
    """`component` built by its `create` (or `load`) from its default config updated with `config`."""
    full_config = {**component.get_default_config(), **(config or {})}
    return getattr(component, constructor)(full_config, model_storage, Resource(resource_name), execution_context)


def spacy_pipeline(spacy_nlp: SpacyNLP, tokenizer: SpacyTokenizer, messages: List[Message]) -> List[Message]:
    """The messages after SpacyNLP and SpacyTokenizer, as Rasa hands them to the next component."""
    messages = spacy_nlp.process(messages, spacy_nlp.provide())
    return tokenizer.process(messages)


def train_nlu_model(tmp_path: Path, pipeline_path: Path, components: List[Dict[str, Any]], nlu: str) -> str:
    """Trains a real NLU model in `tmp_path` and returns its path.

    Its pipeline is SpacyNLP over `pipeline_path`, SpacyTokenizer, `components` (config.yml
    pipeline entries) and a KeywordIntentClassifier; `nlu` is the nlu.yml training data.
    """
    from rasa.model_training import train_nlu

    config = {
        "recipe": "default.v1",
        "language": "en",
        "assistant_id": "backline-test",
        "pipeline": [
            {"name": "SpacyNLP", "model": str(pipeline_path)},
            {"name": "SpacyTokenizer"},
            *components,
            {"name": "KeywordIntentClassifier", "case_sensitive": False},
        ],
        "policies": [],
    }
    config_path, nlu_path = tmp_path / "config.yml", tmp_path / "nlu.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    nlu_path.write_text(textwrap.dedent(nlu), encoding="utf-8")
    return train_nlu(str(config_path), str(nlu_path), str(tmp_path / "models"), fixed_model_name="nlu")
