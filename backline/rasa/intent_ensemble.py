"""An intent classifier that combines a logistic regression with the classifier before it.

On CLINC150 (docs/benchmarks.md, docs/routing-experiments.md) a logistic regression on
the sparse sentence features and DIET make different mistakes: the normalised geometric
mean of their probabilities is more accurate than either and ranks confidences better,
so more queries clear a high threshold at the same accuracy. Put it after DIETClassifier
with DIET's `ranking_length: 0` (its whole distribution; intents missing from the ranking
get a floor). It trains a logistic regression (Rasa's LogisticRegressionClassifier with
`max_iter` 300 by default: at Rasa's 100 it stops before converging on CLINC150) and, in
`process`, replaces `intent` and `intent_ranking` with the combination of its own
probabilities and the ranking the earlier classifier left on the message; without a
ranking it acts as the plain logistic regression. Finally the probability of
`out_of_scope_intent` is multiplied by `out_of_scope_prior` and the row renormalised (a
prior shift): out-of-scope training examples are few and varied, so both classifiers
under-predict the class.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.constants import RANKING_LENGTH

FLOOR = 1e-6


def geometric_mean(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise sqrt(first * second), renormalised to sum to 1 (first alone where the product vanishes)."""
    product = np.sqrt(first * second)
    totals = product.sum(axis=1, keepdims=True)
    return np.where(totals > 0, product / np.where(totals > 0, totals, 1.0), first)


def shift_prior(probabilities: np.ndarray, column: int, factor: float) -> np.ndarray:
    """Multiplies one column by `factor` and renormalises each row."""
    shifted = probabilities.copy()
    shifted[:, column] *= factor
    return shifted / shifted.sum(axis=1, keepdims=True)


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
        }

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and `intent_ranking` from the combined probabilities. Messages without
        sentence features (an empty text) keep what the earlier classifier set."""
        featurized = [message for message in messages if self._has_features(message)]
        if not featurized or not hasattr(self.clf, "classes_"):  # untrained: no intents in the data
            return messages
        intents = [str(name) for name in self.clf.classes_]
        own = self.clf.predict_proba(self._create_X(featurized))
        earlier = np.array(
            [
                self._earlier(message, intents) if message.get(INTENT_RANKING_KEY) else row
                for message, row in zip(featurized, own)
            ]
        )
        combined = geometric_mean(own, earlier)
        if self.config["out_of_scope_intent"] in intents:
            column = intents.index(self.config["out_of_scope_intent"])
            combined = shift_prior(combined, column, self.config["out_of_scope_prior"])
        for message, row in zip(featurized, combined):
            ranking = [
                {"name": intents[index], "confidence": float(row[index])} for index in np.argsort(-row, kind="stable")
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    @staticmethod
    def _has_features(message: Message) -> bool:
        """True when the message has the sentence features the logistic regression reads."""
        return message.get_sparse_features(TEXT)[1] is not None or message.get_dense_features(TEXT)[1] is not None

    @staticmethod
    def _earlier(message: Message, intents: List[str]) -> List[float]:
        """The earlier classifier's probability per intent (FLOOR for intents its ranking lacks)."""
        given = {entry["name"]: entry["confidence"] for entry in message.get(INTENT_RANKING_KEY)}
        return [max(float(given.get(name, 0.0)), FLOOR) for name in intents]
