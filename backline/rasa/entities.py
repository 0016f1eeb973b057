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

from typing import Any, Dict, List, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp.entities import ENTITY_NAMES, extract
from backline.rasa.base import SpacyDocAnnotator, spacy_doc


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class BacklineEntityExtractor(SpacyDocAnnotator, EntityExtractorMixin):
    """Adds amount, currency, order_id, invoice_id, product and email entities."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`dimensions`: entity names to keep; None keeps all of them."""
        return {"dimensions": None}

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Validates the configured dimensions."""
        super().__init__(config)
        dimensions: Optional[List[Text]] = self._config["dimensions"]
        unknown = sorted(set(dimensions or []) - set(ENTITY_NAMES))
        if unknown:
            raise InvalidConfigException(f"{self.name}: unknown dimensions {unknown}; choose from {list(ENTITY_NAMES)}")
        self._dimensions = set(dimensions) if dimensions else None

    def annotate(self, message: Message) -> None:
        """Appends this extractor's entities, keeping those other extractors found."""
        text = message.get(TEXT)
        if not text:
            return
        entities = extract(spacy_doc(message), text)
        entities = self.filter_irrelevant_entities(entities, self._dimensions)
        message.set(
            ENTITIES,
            message.get(ENTITIES, []) + self.add_extractor_name(entities),
            add_to_output=True,
        )
