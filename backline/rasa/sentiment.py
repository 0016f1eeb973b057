"""Rasa NLU component: VADER sentiment of each user message, in the parse data.

Anywhere in the pipeline (it reads only the text); next to the other rule-based
components:

    - name: SpacyNLP
      model: build/spacy/kestrel_en
    - name: SpacyTokenizer
    - name: backline.rasa.entities.BacklineEntityExtractor
    - name: backline.rasa.sentiment.SentimentAnalyzer
      # max_chars: 2000   # long messages: only their last max_chars characters count

Every parsed message gets `parse_data["sentiment"]`, e.g.
`{"compound": -0.77, "positive": 0.0, "negative": 0.57, "neutral": 0.43, "label": "negative"}`
(backline.nlp.sentiment.Sentiment.as_dict). It is an output property of the message, so
Rasa keeps it in `UserUttered.parse_data`: the tracker's `latest_message["sentiment"]`,
the tracker store and custom actions see it.

Registered as a non-trainable ENTITY_EXTRACTOR, as Rasa's own rule-based
DucklingEntityExtractor is: the recipe then runs it only in the prediction graph,
built with `create`, so `rasa train` neither trains it nor runs it over the training
data (a featurizer would, and would make the training cache depend on its output).
It is no EntityExtractorMixin and adds no entities.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp.sentiment import MAX_CHARS, score
from backline.rasa.base import MessageAnnotator

SENTIMENT = "sentiment"
"""The parse-data key (and Message property) holding the sentiment dict."""


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class SentimentAnalyzer(MessageAnnotator):
    """Sets the `sentiment` output property: VADER compound, positive, negative, neutral, label."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`max_chars`: longer messages are scored on their last `max_chars` characters."""
        return {"max_chars": MAX_CHARS}

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component needs."""
        return ["vaderSentiment"]

    @staticmethod
    def supported_languages() -> List[Text]:
        """VADER's lexicon is English."""
        return ["en"]

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Validates `max_chars`."""
        super().__init__(config)
        max_chars = self._config["max_chars"]
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise InvalidConfigException(
                f"{self.__class__.__name__}: max_chars must be a positive whole number of characters, not {max_chars!r}"
            )
        self._max_chars = max_chars

    def annotate(self, message: Message) -> None:
        """Scores the message; one without text gets the neutral zero score."""
        sentiment = score(message.get(TEXT), self._max_chars)
        message.set(SENTIMENT, sentiment.as_dict(), add_to_output=True)
