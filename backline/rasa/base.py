"""The shared part of Backline's rule-based Rasa NLU components.

Each one has nothing to train or persist, merges its config over the defaults and
annotates every message in `process`; a subclass says only what it adds to one message
(`annotate`) and, when it reads the SpacyNLP doc (`spacy_doc`), derives from
`SpacyDocAnnotator`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

if TYPE_CHECKING:
    from spacy.tokens import Doc


def spacy_doc(message: Message) -> Optional["Doc"]:
    """The doc SpacyNLP made of the message's text, or None when it made none."""
    return message.get(SPACY_DOCS[TEXT])


class MessageAnnotator(GraphComponent):
    """A non-trainable component that annotates each message; `self._config` holds its options."""

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Merges `config` over the defaults; subclasses validate `self._config` after this."""
        self._config = {**self.get_default_config(), **config}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MessageAnnotator:
        """Creates the component; there is nothing to train or persist."""
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        """Annotates every message in place and returns them."""
        for message in messages:
            self.annotate(message)
        return messages

    @abstractmethod
    def annotate(self, message: Message) -> None:
        """Adds this component's output to one message (each subclass says what)."""


class SpacyDocAnnotator(MessageAnnotator):
    """A MessageAnnotator that reads the SpacyNLP doc, so SpacyNLP must run before it."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """SpacyNLP must run first: it puts the doc on the message."""
        return [SpacyNLP]

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component needs."""
        return ["spacy"]
