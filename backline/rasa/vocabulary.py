"""Rasa NLU component: the ``no_known_words`` signal for messages with no word of the training data.

Trainable: `train` builds the vocabulary from the training examples (and the retrieval responses) and
persists it through the model storage, like Rasa's own featurizers; `load` reads it back, so the check
always uses the vocabulary of the data the model was trained on. At prediction time, a message whose
words (of two letters or more) are all unknown, and that has no entity (an order number, an amount),
gets ``{"name": "no_known_words", "phrase": <text>, "start": 0, "end": len(text)}`` appended to its
``signals`` (after `backline.rasa.signals.SignalDetectorComponent` in config.yml). A model trained
before this component existed has no vocabulary here: nothing is flagged.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, FrozenSet, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from backline.nlp.vocabulary import build_vocabulary, has_no_known_words
from backline.rasa.signals import SIGNALS
from backline.routing.signals import NO_KNOWN_WORDS

logger = logging.getLogger(__name__)
FILE = "vocabulary.json"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class KnownWordsDetector(GraphComponent):
    """Flags messages none of whose words the training data has (`no_known_words`)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

    def __init__(
        self, model_storage: ModelStorage, resource: Resource, vocabulary: Optional[FrozenSet[str]] = None
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary: FrozenSet[str] = vocabulary or frozenset()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KnownWordsDetector":
        return cls(model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """The vocabulary of the training examples and responses, persisted with the model."""
        texts = [m.get(TEXT) or "" for m in training_data.training_examples]
        texts += [
            v.get(TEXT) or ""
            for variants in (training_data.responses or {}).values()
            for v in variants
            if isinstance(v, dict)
        ]
        self.vocabulary = build_vocabulary(texts)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / FILE).write_text(json.dumps(sorted(self.vocabulary)), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "KnownWordsDetector":
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:
            logger.warning("no vocabulary in the model (%s): no message is flagged no_known_words", error)
            words = []
        return cls(model_storage, resource, frozenset(str(w) for w in words))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if message.get(ENTITIES) or not has_no_known_words(text, self.vocabulary):
                continue
            signals = list(message.get(SIGNALS) or [])
            signals.append({"name": NO_KNOWN_WORDS, "phrase": text, "start": 0, "end": len(text)})
            message.set(SIGNALS, signals, add_to_output=True)
        return messages
