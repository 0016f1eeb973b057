"""Rasa NLU component: Backline's rule-based entities from the spaCy doc.

Place it after SpacyNLP (whose `model:` is the pipeline built by
`python -m backline build-spacy`) and SpacyTokenizer:

    - name: SpacyNLP
      model: build/spacy/kestrel_en
    - name: SpacyTokenizer
    - name: backline.rasa.entities.BacklineEntityExtractor
      # dimensions: [amount, currency, order_id]   # default: all entities
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp.entities import ENTITY_NAMES, extract


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class BacklineEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds amount, currency, order_id, invoice_id, product and email entities."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """SpacyNLP must run first: it puts the doc on the message."""
        return [SpacyNLP]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`dimensions`: entity names to keep; None keeps all of them."""
        return {"dimensions": None}

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component needs."""
        return ["spacy"]

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Validates the configured dimensions."""
        self._config = {**self.get_default_config(), **config}
        dimensions: Optional[List[Text]] = self._config["dimensions"]
        unknown = sorted(set(dimensions or []) - set(ENTITY_NAMES))
        if unknown:
            raise InvalidConfigException(
                f"{self.name}: unknown dimensions {unknown}; "
                f"choose from {list(ENTITY_NAMES)}"
            )
        self._dimensions = set(dimensions) if dimensions else None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BacklineEntityExtractor:
        """Creates the component; there is nothing to train or persist."""
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        """Appends this extractor's entities, keeping those other extractors found."""
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            entities = extract(message.get(SPACY_DOCS[TEXT]), text)
            entities = self.filter_irrelevant_entities(entities, self._dimensions)
            message.set(
                ENTITIES,
                message.get(ENTITIES, []) + self.add_extractor_name(entities),
                add_to_output=True,
            )
        return messages
