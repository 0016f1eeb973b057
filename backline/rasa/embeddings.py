"""Rasa NLU component: dense features from pretrained static embeddings (backline/nlp/static_embeddings.py).

A thin adapter in the shape of Rasa's SpacyFeaturizer: for every message it adds one
vector per token of the tokenizer before it (sequence features, for sequence models such as
Rasa's ResponseSelector and DIET, in a pipeline that has them) and the L2-normalised mean of the text's subwords times `scale` (sentence
features, for the logistic regressions of IntentEnsembleClassifier and DIET). Not trainable and nothing persisted: the table is read from the installed
`wordllama` package when the component is created or loaded (once per process), and a
missing package fails the training or the model load with the command that installs it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message

from backline.nlp import static_embeddings
from backline.rasa.pretrained import PretrainedFeaturizer, require_positive


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class StaticEmbeddingFeaturizer(PretrainedFeaturizer):
    """Word and sentence vectors from a pretrained token-embedding table shipped in a PyPI package."""

    @staticmethod
    def required_packages() -> List[Text]:
        return ["safetensors", "tokenizers"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "package": static_embeddings.PACKAGE,
            "weights": static_embeddings.WEIGHTS,
            "tokenizer": static_embeddings.TOKENIZER,
            "lowercase": True,
            # Multiplies the sentence vector (unit length): beside raw counts in one logistic
            # regression a unit vector weighs little; chosen on CLINC150 (docs/routing-experiments.md).
            "scale": 3.0,
        }

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self.embeddings = static_embeddings.load(
            self._config["package"], self._config["weights"], self._config["tokenizer"], bool(self._config["lowercase"])
        )

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        require_positive(cls.__name__, config, "scale", (int, float))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                self._set_features(message, attribute)
        return messages

    def _set_features(self, message: Message, attribute: Text) -> None:
        text = message.get(attribute)
        tokens = message.get(TOKENS_NAMES[attribute])
        if not isinstance(text, str) or not text.strip() or not tokens:
            return
        sequence, mean = self.embeddings.vectors(text, [(t.start, t.end) for t in tokens])
        sentence = mean.reshape(1, -1) * float(self._config["scale"])
        alias = self._config[FEATURIZER_CLASS_ALIAS]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, attribute, alias))
        message.add_features(Features(np.asarray(sentence, dtype=np.float32), FEATURE_TYPE_SENTENCE, attribute, alias))
