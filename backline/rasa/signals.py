"""Rasa NLU component: the escalation matrix's rule-based signals in each user message.

After SpacyNLP (it matches on the spaCy doc and uses the pipeline's vocabulary and
tokenizer) and SpacyTokenizer:

    - name: SpacyNLP
      model: build/spacy/kestrel_en
    - name: SpacyTokenizer
    - name: backline.rasa.signals.SignalDetectorComponent
      matrix: escalation.yml   # relative paths resolve against the directory Rasa runs in

Every parsed message gets `parse_data["signals"]`: a list (empty when nothing fired)
of `backline.routing.signals.Signal.as_dict()` dicts, sorted by position, e.g.
`[{"name": "explicit_request", "phrase": "talk to a real person", "start": 10, "end": 31}]`;
a `not_explicit_request` entry records a phrase such as "human resources" that
vetoed a request match. It is an output property of the message, so Rasa keeps it
in `UserUttered.parse_data` (the tracker's `latest_message["signals"]`).

The matrix and the signals file it names (signals.yml: the phrases and token patterns) are
read when the component is built: at `rasa run` / `rasa shell` / `Agent.load` time, from the
working directory, so an edited signals.yml applies on restart without retraining. A missing or invalid matrix, or a signal spec spaCy
cannot compile, raises `InvalidConfigException` naming the file and the problems.

Registered, like SentimentAnalyzer, as a non-trainable ENTITY_EXTRACTOR: it runs
only in the prediction graph and never touches the training data or the training
cache. It is no EntityExtractorMixin and adds no entities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.utils.spacy_utils import SpacyModel
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from backline.nlp.signals import SignalDetector, SignalSpecError
from backline.rasa.base import SpacyDocAnnotator, spacy_doc
from backline.routing import ConfigError, load_matrix
from backline.routing.signals import SignalSpec

SIGNALS = "signals"
"""The parse-data key (and Message property) holding the list of signal dicts."""
DEFAULT_MATRIX = "escalation.yml"


def resolve_matrix_path(matrix: Any) -> Path:
    """The configured matrix path, made absolute against the current directory."""
    if not isinstance(matrix, (str, Path)) or not str(matrix).strip():
        raise InvalidConfigException(
            f"{SignalDetectorComponent.__name__}: `matrix` must be the path of the escalation "
            f"matrix (e.g. {DEFAULT_MATRIX}), not {matrix!r}"
        )
    path = Path(matrix).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def load_signal_specs(path: Path) -> List[SignalSpec]:
    """The signal specs of the escalation matrix at `path`; InvalidConfigException if unusable."""
    where = f"{SignalDetectorComponent.__name__}: escalation matrix {path}"
    if not path.is_file():
        raise InvalidConfigException(
            f"{where}: no such file (relative `matrix` paths resolve against the directory "
            f"Rasa runs in, here {Path.cwd()})"
        )
    try:
        matrix = load_matrix(path)
        return list(matrix.signal_specs())
    except ConfigError as error:
        problems = "\n".join(f"  {problem}" for problem in error.problems)
        raise InvalidConfigException(f"{where} is invalid:\n{problems}") from None
    except (OSError, ValueError) as error:
        raise InvalidConfigException(f"{where}: {error}") from None


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=False,
    model_from="SpacyNLP",
)
class SignalDetectorComponent(SpacyDocAnnotator):
    """Sets the `signals` output property from the matrix's phrases and token patterns."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """`matrix`: path of escalation.yml, relative to the directory Rasa runs in."""
        return {"matrix": DEFAULT_MATRIX}

    def __init__(self, config: Dict[Text, Any], specs: Optional[Sequence[SignalSpec]] = None) -> None:
        """Loads the matrix's signal specs (unless given) and compiles them once to check them."""
        super().__init__(config)
        self.matrix_path = resolve_matrix_path(self._config["matrix"])
        self.specs: List[SignalSpec] = list(specs) if specs is not None else load_signal_specs(self.matrix_path)
        self._detector = self._compile(None)

    def _compile(self, nlp: Any) -> SignalDetector:
        try:
            return SignalDetector(self.specs, nlp)
        except SignalSpecError as error:
            raise InvalidConfigException(
                f"{self.__class__.__name__}: escalation matrix {self.matrix_path}: {error}"
            ) from None

    def detector_for(self, model: Optional[SpacyModel]) -> SignalDetector:
        """The detector compiled with the pipeline's own vocabulary and tokenizer."""
        nlp = model.model if model is not None else None
        if nlp is not None and self._detector.nlp is not nlp:
            self._detector = self._compile(nlp)
        return self._detector

    def process(self, messages: List[Message], model: SpacyModel) -> List[Message]:  # type: ignore[override]
        # Rasa's graph passes the spaCy model by name to the components that ask for it.
        """Sets `signals` on every message (an empty list when none fired), using `model`'s vocabulary."""
        self.detector_for(model)
        return super().process(messages)

    def annotate(self, message: Message) -> None:
        """Sets `signals` on the message."""
        text = message.get(TEXT)
        signals = self._detector.detect(spacy_doc(message), text) if text else []
        message.set(SIGNALS, [signal.as_dict() for signal in signals], add_to_output=True)
