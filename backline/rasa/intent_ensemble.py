"""An intent classifier that combines a logistic regression with the classifier before it.

On CLINC150 (docs/benchmarks.md, docs/routing-experiments.md) a logistic regression on
the sparse sentence features and DIET make different mistakes: the normalised geometric
mean of their probabilities is more accurate than either and ranks confidences better,
so more queries clear a high threshold at the same accuracy. Put it after DIETClassifier
(if the pipeline has one) with DIET's `ranking_length: 0` (its whole distribution; intents missing from the ranking
get a floor). It trains a logistic regression (Rasa's LogisticRegressionClassifier with
`max_iter` 300 by default: at Rasa's 100 it stops before converging on CLINC150) and, in
`process`, replaces `intent` and `intent_ranking` with the combination of its own
probabilities and the ranking the earlier classifier left on the message; without a
ranking it acts as the plain logistic regression. Finally the probability of
`out_of_scope_intent` is multiplied by `out_of_scope_prior` and the row renormalised (a
prior shift): out-of-scope training examples are few and varied, so both classifiers
under-predict the class.

With `dense_model: true` the dense sentence features (pretrained embeddings,
backline.rasa.embeddings) get a logistic regression of their own, a third member of the
geometric mean, and the count model reads the sparse features only (a pipeline with no dense
featurizer trains the count model alone, with a warning): one model over counts
and a dense vector together converges slowly (several times the fit time on CLINC150)
for no better accuracy, while a 256-wide dense model fits in seconds
(docs/routing-experiments.md). It is persisted beside Rasa's (skops, like Rasa's). The
members' exponents in the mean are `weights` (counts, dense, earlier), equal by default.

With `retrieval_picks: true` a second pair of regressions (counts and dense, the same settings)
learns the retrieval intents' picks (`product_question/warranty`) as classes beside the other
intents, and writes `response_selector` as Rasa's ResponseSelector does, with the answers the
training data holds: no ResponseSelector is needed (backline/rasa/retrieval_picks.py says why). The
intent models above still decide `intent`.

Parsing one message: scikit-learn multiplies the sparse features by `coef_.T`; with the
C-ordered `coef_` that `fit` and skops give, that transpose is a strided view and scipy's
sparse-times-dense product takes ~13 ms on CLINC150's 151 x 20,000 coefficients. The
component keeps its models' coefficients Fortran-ordered (`fast_coefficients`, same values),
so the product reads a contiguous matrix (~0.03 ms), and it reads each message's features
once per parse.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Text, Tuple

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.constants import RESPONSE_SELECTOR_PROPERTY_NAME, RESPONSE_SELECTOR_RETRIEVAL_INTENTS
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH
from scipy.sparse import csr_matrix, hstack, vstack
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from backline.rasa import retrieval_picks

logger = logging.getLogger(__name__)
FLOOR = 1e-6
MEMBERS = ("counts", "dense", "earlier")
DENSE_SUFFIX = "-dense.skops"  # models persisted before the fixed names
COUNTS_FILE = "counts.skops"
DENSE_FILE = "dense" + DENSE_SUFFIX
RESPONSES_FILE = "responses.json"  # the retrieval picks' answers (with `retrieval_picks`)
PICKS_COUNTS_FILE = "picks-counts.skops"
PICKS_DENSE_FILE = "picks-dense.skops"


def weighted_geometric_mean(members: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Row-wise weighted geometric mean (prod member_i^w_i)^(1/sum w), renormalised to sum to 1
    (the first member alone where the product vanishes). A member of weight 0 is ignored."""
    total = float(sum(weights))
    product = np.ones_like(members[0], dtype=float)
    for member, weight in zip(members, weights):
        if weight:
            product = product * member ** (weight / total)
    totals = product.sum(axis=1, keepdims=True)
    return np.where(totals > 0, product / np.where(totals > 0, totals, 1.0), members[0])


def geometric_mean(first: np.ndarray, second: np.ndarray, weights: Tuple[int, int] = (1, 1)) -> np.ndarray:
    """Row-wise weighted geometric mean of two distributions (`weighted_geometric_mean`)."""
    return weighted_geometric_mean([first, second], weights)


def fast_coefficients(model: Optional[LogisticRegression]) -> None:
    """Stores a fitted linear model's coefficients Fortran-ordered (same values), so that the
    `X @ coef_.T` of its predictions multiplies by a contiguous matrix."""
    if model is not None and hasattr(model, "coef_"):
        model.coef_ = np.asfortranarray(model.coef_)


def shift_prior(probabilities: np.ndarray, column: int, factor: float) -> np.ndarray:
    """Multiplies one column by `factor` and renormalises each row."""
    shifted = probabilities.copy()
    shifted[:, column] *= factor
    return shifted / shifted.sum(axis=1, keepdims=True)


def _model_file(model_dir: Path, name: str, older: Callable[[Path], bool]) -> Optional[Path]:
    """`name` in the component's directory, else the one `.skops` file an older model (named after
    its resource) left there that `older` accepts."""
    if (model_dir / name).exists():
        return model_dir / name
    candidates = sorted(p for p in model_dir.glob("*.skops") if p.name not in (COUNTS_FILE, DENSE_FILE) and older(p))
    return candidates[0] if len(candidates) == 1 else None


def _load_trusted(path: Optional[Path]) -> Optional[LogisticRegression]:
    """A scikit-learn logistic regression from skops, refusing files with types skops does not trust
    by default (as Rasa loads its own)."""
    import skops.io as sio

    if path is None or sio.get_untrusted_types(file=path):
        return None
    loaded = sio.load(path, trusted=[])
    return loaded if isinstance(loaded, LogisticRegression) else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class IntentEnsembleClassifier(LogisticRegressionClassifier):
    """Logistic regression combined with the earlier classifier's ranking (geometric mean)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Rasa's logistic regression defaults, 300 iterations, and the out-of-scope prior shift."""
        return {
            **LogisticRegressionClassifier.get_default_config(),
            "max_iter": 300,
            "out_of_scope_intent": "out_of_scope",
            "out_of_scope_prior": 4.0,
            "dense_model": False,
            "dense_c": 10.0,  # inverse regularisation of the dense model (sklearn's C)
            # Exponents of the members in the geometric mean: the count model, the dense model
            # and the earlier classifier's ranking (DIET's, if any). config.yml sets its own
            # (docs/routing-experiments.md).
            "weights": {"counts": 1.0, "dense": 1.0, "earlier": 1.0},
            # Learn retrieval intents' picks as classes and write `response_selector` (module docstring).
            "retrieval_picks": False,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """`weights` names only the three members, each a number >= 0, the count model's > 0."""
        weights = config.get("weights")
        if not isinstance(weights, dict) or set(weights) - set(MEMBERS):
            raise InvalidConfigException(
                f"IntentEnsembleClassifier: `weights` maps {', '.join(MEMBERS)} to numbers, got {weights!r}"
            )
        for member in MEMBERS:
            value = weights.get(member)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidConfigException(
                    f"IntentEnsembleClassifier: weight of `{member}` must be a number >= 0, got {value!r}"
                )
        if not weights["counts"] > 0:
            raise InvalidConfigException("IntentEnsembleClassifier: the `counts` weight must be > 0")
        if not isinstance(config.get("retrieval_picks"), bool):
            raise InvalidConfigException(
                f"IntentEnsembleClassifier: `retrieval_picks` is true or false, got {config.get('retrieval_picks')!r}"
            )

    def __init__(self, config: Dict[Text, Any], name: Text, model_storage: ModelStorage, resource: Resource) -> None:
        self.validate_config(config)
        super().__init__(config, name, model_storage, resource)
        self.dense_clf: Optional[LogisticRegression] = None
        # utter_<retrieval intent>/<pick> -> its answers, from the training data (`retrieval_picks`).
        self.responses: Dict[str, List[Dict[str, Any]]] = {}
        # The pick models (`retrieval_picks`): counts and dense, over the picks and the other intents.
        self.picks_clf: Optional[LogisticRegression] = None
        self.picks_dense_clf: Optional[LogisticRegression] = None

    def _create_X(self, messages: List[Message]) -> csr_matrix:
        """Counts and dense features together, or (with a dense model) the counts alone."""
        return self._sparse_X(
            [message.get_sparse_features(TEXT)[1] for message in messages],
            [message.get_dense_features(TEXT)[1] for message in messages],
        )

    def _sparse_X(self, sparse: List[Optional[Features]], dense: List[Optional[Features]]) -> csr_matrix:
        """The count model's rows from each message's sentence features (read once by the caller)."""
        if self.config["dense_model"]:
            return vstack([csr_matrix(row.features if row is not None else []) for row in sparse])
        return vstack(
            [
                hstack(
                    [
                        csr_matrix(counts.features if counts is not None else []),
                        csr_matrix(vector.features if vector is not None else []),
                    ]
                )
                for counts, vector in zip(sparse, dense)
            ]
        )

    @staticmethod
    def _dense_X(messages: List[Message]) -> Optional[np.ndarray]:
        return IntentEnsembleClassifier._stack_dense([message.get_dense_features(TEXT)[1] for message in messages])

    @staticmethod
    def _stack_dense(rows: List[Optional[Features]]) -> Optional[np.ndarray]:
        if any(row is None for row in rows):
            return None
        return np.vstack([np.asarray(row.features).reshape(1, -1) for row in rows])  # type: ignore[union-attr]

    def _new_dense(self) -> LogisticRegression:
        return LogisticRegression(
            C=float(self.config["dense_c"]), max_iter=1000, class_weight="balanced", random_state=42
        )

    def train(self, training_data: TrainingData) -> Resource:
        """The count model (Rasa's training), then the dense model on the same examples; with
        `retrieval_picks` the pick models too."""
        resource = super().train(training_data)
        fast_coefficients(self.clf)
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        dense = None
        if self.config["dense_model"]:
            if not any(e.get_dense_features(TEXT)[1] is not None for e in examples):
                # A pipeline without a dense featurizer (the benchmark's ablation): the count model alone.
                logger.warning("IntentEnsembleClassifier: no dense sentence features; trained without the dense model")
            else:
                dense = self._dense_X(examples)
                if dense is None:
                    raise InvalidConfigException(
                        "IntentEnsembleClassifier: `dense_model` needs dense sentence features on every example "
                        "(put backline.rasa.embeddings.StaticEmbeddingFeaturizer before it)"
                    )
                self.dense_clf = self._new_dense().fit(dense, [e.get(INTENT) for e in examples])
                fast_coefficients(self.dense_clf)
        if self.config["retrieval_picks"] and any(e.get(INTENT_RESPONSE_KEY) for e in examples):
            picks = [str(e.get(INTENT_RESPONSE_KEY) or e.get(INTENT)) for e in examples]
            self.picks_clf = clone(self.clf).fit(self._create_X(examples), picks)
            self.picks_dense_clf = self._new_dense().fit(dense, picks) if dense is not None else None
            fast_coefficients(self.picks_clf)
            fast_coefficients(self.picks_dense_clf)
            self.responses = {
                name: list(variants)
                for name, variants in training_data.responses.items()
                if retrieval_picks.SEPARATOR in name
            }
        self.persist()
        return resource

    def persist(self) -> None:
        """Both models under fixed names in the component's own directory. Rasa's classifier names
        its file after the resource; when Rasa's training cache restores this component under another
        node name (a component added or removed before it), that name no longer matches and the
        model would not load."""
        import skops.io as sio

        with self._model_storage.write_to(self._resource) as model_dir:
            sio.dump(self.clf, model_dir / COUNTS_FILE)
            if self.dense_clf is not None:
                sio.dump(self.dense_clf, model_dir / DENSE_FILE)
            for model, name in ((self.picks_clf, PICKS_COUNTS_FILE), (self.picks_dense_clf, PICKS_DENSE_FILE)):
                if model is not None:
                    sio.dump(model, model_dir / name)
            if self.picks_clf is not None:
                (model_dir / RESPONSES_FILE).write_text(json.dumps(self.responses), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "IntentEnsembleClassifier":
        try:
            with model_storage.read_from(resource) as model_dir:
                counts = _model_file(model_dir, COUNTS_FILE, lambda p: not p.name.endswith(DENSE_SUFFIX))
                dense = _model_file(model_dir, DENSE_FILE, lambda p: p.name.endswith(DENSE_SUFFIX))
                clf = _load_trusted(counts)
                dense_clf = _load_trusted(dense) if {**cls.get_default_config(), **config}["dense_model"] else None
                picks = [
                    _load_trusted(p) if p.exists() else None
                    for p in (model_dir / PICKS_COUNTS_FILE, model_dir / PICKS_DENSE_FILE)
                ]
                answers = model_dir / RESPONSES_FILE
                responses = json.loads(answers.read_text(encoding="utf-8")) if answers.exists() else {}
        except ValueError:  # no resource: an untrained component, as Rasa's own load
            return cls.create(config, model_storage, resource, execution_context)
        if clf is None:
            raise InvalidConfigException(
                f"IntentEnsembleClassifier: no count model in the trained model ({resource.name})"
            )
        component = cls(config, execution_context.node_name, model_storage, resource)
        component.clf = clf
        component.dense_clf = dense_clf
        component.responses = responses
        component.picks_clf, component.picks_dense_clf = picks
        fast_coefficients(component.clf)
        fast_coefficients(component.dense_clf)
        return component

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and `intent_ranking` from the combined probabilities. Messages without
        sentence features (an empty text) keep what the earlier classifier set."""
        if not hasattr(self.clf, "classes_"):  # untrained: no intents in the data
            return messages
        # Each message's sentence features, read once (Rasa combines the featurizers' on every read).
        features = [
            (message, message.get_sparse_features(TEXT)[1], message.get_dense_features(TEXT)[1]) for message in messages
        ]
        features = [
            (message, counts, vector)
            for message, counts, vector in features
            if counts is not None or vector is not None
        ]
        if not features:
            return messages
        featurized = [message for message, _, _ in features]
        intents = [str(name) for name in self.clf.classes_]
        weights = self.config["weights"]
        sparse = self._sparse_X([counts for _, counts, _ in features], [vector for _, _, vector in features])
        dense = self._stack_dense([vector for _, _, vector in features]) if self.dense_clf is not None else None
        members, exponents = self._members(self.clf, self.dense_clf, sparse, dense)
        own = weighted_geometric_mean(members, exponents)
        # A message without the earlier classifier's ranking takes the regressions' combination
        # in its place, which leaves that combination unchanged.
        earlier = np.array(
            [
                self._earlier(message, intents) if message.get(INTENT_RANKING_KEY) else row
                for message, row in zip(featurized, own)
            ]
        )
        combined = weighted_geometric_mean([*members, earlier], [*exponents, float(weights["earlier"])])
        if self.config["out_of_scope_intent"] in intents:
            column = intents.index(self.config["out_of_scope_intent"])
            combined = shift_prior(combined, column, self.config["out_of_scope_prior"])
        if self.picks_clf is not None:
            self._set_picks(featurized, sparse, dense)
        for message, row in zip(featurized, combined):
            ranking = [
                {"name": intents[index], "confidence": float(row[index])} for index in np.argsort(-row, kind="stable")
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def _members(
        self, counts: LogisticRegression, dense_model: Optional[LogisticRegression], sparse: Any, dense: Any
    ) -> Tuple[List[np.ndarray], List[float]]:
        """The count model's probabilities and, where it has one with the same classes, the dense
        model's, with their exponents in the mean."""
        weights = self.config["weights"]
        members, exponents = [counts.predict_proba(sparse)], [float(weights["counts"])]
        if dense is not None and dense_model is not None and list(dense_model.classes_) == list(counts.classes_):
            members.append(dense_model.predict_proba(dense))
            exponents.append(float(weights["dense"]))
        return members, exponents

    def _set_picks(self, messages: List[Message], sparse: Any, dense: Any) -> None:
        """`response_selector` for each retrieval intent, as Rasa's ResponseSelector sets it, from
        the pick models: the pick's confidence is its probability given its intent."""
        labels = [str(name) for name in self.picks_clf.classes_]  # type: ignore[union-attr]
        probabilities = weighted_geometric_mean(*self._members(self.picks_clf, self.picks_dense_clf, sparse, dense))  # type: ignore[arg-type]
        if self.config["out_of_scope_intent"] in labels:
            column = labels.index(self.config["out_of_scope_intent"])
            probabilities = shift_prior(probabilities, column, self.config["out_of_scope_prior"])
        bases = retrieval_picks.retrieval_bases(labels)
        for message, row in zip(messages, probabilities):
            selectors = dict(message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {})
            selectors[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = bases
            for base in bases:
                selectors[base] = retrieval_picks.selector_output(labels, row, base, self.responses)
            message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selectors, add_to_output=True)

    @staticmethod
    def _earlier(message: Message, intents: List[str]) -> List[float]:
        """The earlier classifier's probability per intent (FLOOR for intents its ranking lacks)."""
        given = {entry["name"]: entry["confidence"] for entry in message.get(INTENT_RANKING_KEY)}
        return [max(float(given.get(name, 0.0)), FLOOR) for name in intents]
