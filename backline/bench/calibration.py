"""Per-intent high thresholds from a calibrated confidence, and their honest evaluation.

One global high threshold treats every intent alike, so the most confusable intent sets
the bar for all: "hello" waits for a review because "refund" and "return" get mixed up.
Here the chance that a lone answer is right is modelled from the classifier's confidence
and the predicted intent: a logistic regression of "the predicted intent is the gold one"
on logit(confidence) plus an offset per predicted intent, L2-shrunk toward zero so an
intent with few examples keeps roughly the shared curve (`SHRINK`). The AI answers alone
when that calibrated chance reaches one cut, the lowest on the grid at which >= 99 % of
the lone answers are right and <= 3 % of out-of-scope queries are answered alone (the
limits of backline/bench/metrics.py). For each intent the cut is a confidence: its high
threshold in escalation.yml. Out-of-scope queries count as wrong answers of the intent
they were mistaken for, so an intent that attracts them gets a stricter threshold.

Thresholds derived from the predictions they are scored on would flatter themselves:
`cross_fit` derives them on all folds but one and applies them to the one left out, so
every reported figure is on predictions the thresholds never saw. When they miss the limits
that way, escalation.yml gets the one high threshold with only the stricter per-intent highs
(`floored`); `cross_fit_floored` judges that scheme the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from backline.bench.datasets import OOS
from backline.bench.metrics import MAX_OOS_ANSWERED, MIN_ACCURACY, CoverageRow, Prediction, choose_high

SHRINK = 1.0  # inverse L2 strength of the per-intent offsets (sklearn's C)
FLOOR = 0.30  # no intent is answered alone below this confidence, whatever the data say
CEILING = 0.999
CUTS = [round(0.5 + 0.005 * step, 3) for step in range(100)]  # calibrated chance of a right answer
EPS = 1e-6


def row_of(intent: str) -> str:
    """The matrix row an intent is judged by: a retrieval intent's pick (product_question/warranty) by its base."""
    return intent.split("/", 1)[0]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """p(right | intent, confidence) = sigmoid(intercept + slope * logit(confidence) + offset[intent])."""

    intercept: float
    slope: float
    offsets: Dict[str, float]

    def chance(self, intent: str, confidence: float) -> float:
        offset = self.offsets.get(row_of(intent), 0.0)
        z = self.intercept + self.slope * float(_logit(np.array([confidence]))[0]) + offset
        return 1 / (1 + math.exp(-z))

    def threshold(self, intent: str, cut: float) -> float:
        """The confidence at which `intent`'s calibrated chance reaches `cut`, within [FLOOR, CEILING]."""
        if self.slope <= 0:
            return CEILING
        z = (math.log(cut / (1 - cut)) - self.intercept - self.offsets.get(row_of(intent), 0.0)) / self.slope
        return min(CEILING, max(FLOOR, 1 / (1 + math.exp(-z))))


def calibrate(predictions: Sequence[Prediction], shrink: float = SHRINK) -> Calibration:
    """Fits the calibration on predictions of in-scope intents (out-of-scope predictions never answer)."""
    from sklearn.linear_model import LogisticRegression

    rows = [p for p in predictions if p.intent != OOS]
    intents = sorted({row_of(p.intent) for p in rows})
    right = np.array([p.intent == p.gold for p in rows], dtype=int)
    if len(rows) == 0 or right.min() == right.max():
        raise ValueError("calibration needs both right and wrong predictions")
    index = {name: i for i, name in enumerate(intents)}
    features = np.zeros((len(rows), 1 + len(intents)))
    features[:, 0] = _logit(np.array([p.confidence for p in rows]))
    for row, p in enumerate(rows):
        features[row, 1 + index[row_of(p.intent)]] = 1.0
    model = LogisticRegression(C=shrink, max_iter=1000).fit(features, right)
    coef = model.coef_[0]
    return Calibration(
        intercept=float(model.intercept_[0]),
        slope=float(coef[0]),
        offsets={name: float(coef[1 + i]) for name, i in index.items()},
    )


def answers_alone(prediction: Prediction, thresholds: Dict[str, float], default: float) -> bool:
    return prediction.intent != OOS and prediction.confidence >= thresholds.get(row_of(prediction.intent), default)


def coverage(predictions: Sequence[Prediction], thresholds: Dict[str, float], default: float) -> CoverageRow:
    """Coverage, accuracy of lone answers and out-of-scope answered alone under per-intent thresholds
    (`threshold` of the row: the mean of the thresholds used, for display)."""
    in_scope = [p for p in predictions if p.gold != OOS]
    answered = [p for p in in_scope if answers_alone(p, thresholds, default)]
    oos = [p for p in predictions if p.gold == OOS]
    used = [thresholds.get(row_of(p.intent), default) for p in predictions if p.intent != OOS]
    return CoverageRow(
        threshold=float(np.mean(used)) if used else default,
        coverage=len(answered) / len(in_scope) if in_scope else 0.0,
        accuracy=sum(p.intent == p.gold for p in answered) / len(answered) if answered else 0.0,
        oos_answered=sum(answers_alone(p, thresholds, default) for p in oos) / len(oos) if oos else 0.0,
    )


@dataclass(frozen=True)
class IntentThresholds:
    """Per-intent high thresholds at one calibrated cut, and what they do on the predictions they came from."""

    cut: float
    thresholds: Dict[str, float]
    default: float
    fitted: CoverageRow
    floor: Optional[float] = None  # set when no threshold may go below the one global high


def floored(derived: IntentThresholds, high: float) -> IntentThresholds:
    """For when they miss the limits out of sample: only the thresholds stricter than `high`
    (the intents that need more than the one threshold); the other rows keep what they have."""
    return IntentThresholds(
        cut=derived.cut,
        thresholds={name: value for name, value in derived.thresholds.items() if value > high},
        default=max(derived.default, high),
        fitted=derived.fitted,
        floor=high,
    )


def derive(
    predictions: Sequence[Prediction],
    intents: Optional[Sequence[str]] = None,
    min_accuracy: float = MIN_ACCURACY,
    max_oos_answered: float = MAX_OOS_ANSWERED,
    shrink: float = SHRINK,
) -> Optional[IntentThresholds]:
    """The lowest calibrated cut meeting the limits on `predictions`, as a threshold per intent
    (every predicted intent and every name in `intents`; `default` for an intent never predicted).
    None when no cut qualifies or the predictions are all right or all wrong."""
    try:
        model = calibrate(predictions, shrink)
    except ValueError:  # all right or all wrong: nothing to calibrate on
        return None
    names = sorted({row_of(p.intent) for p in predictions if p.intent != OOS} | set(intents or ()))
    for cut in CUTS:
        thresholds = {name: round(model.threshold(name, cut), 3) for name in names}
        default = round(model.threshold("", cut), 3)
        row = coverage(predictions, thresholds, default)
        if row.coverage > 0 and row.accuracy >= min_accuracy and row.oos_answered <= max_oos_answered:
            return IntentThresholds(cut, thresholds, default, row)
    return None


def _judged(
    predictions: Sequence[Prediction],
    folds: Sequence[int],
    thresholds_from: Callable[[Sequence[Prediction]], Optional[Tuple[Dict[str, float], float]]],
) -> CoverageRow:
    """For each fold, `thresholds_from(the other folds)` (per-intent thresholds and a default, or None:
    nothing answered alone) decides its predictions; the decisions pooled."""
    decided: List[Prediction] = []
    answered_flags: List[bool] = []
    for fold in sorted(set(folds)):
        rest = [p for p, f in zip(predictions, folds) if f != fold]
        held = [p for p, f in zip(predictions, folds) if f == fold]
        derived = thresholds_from(rest)
        for p in held:
            decided.append(p)
            answered_flags.append(derived is not None and answers_alone(p, *derived))
    in_scope = [(p, a) for p, a in zip(decided, answered_flags) if p.gold != OOS]
    oos = [a for p, a in zip(decided, answered_flags) if p.gold == OOS]
    answered = [p for p, a in in_scope if a]
    return CoverageRow(
        threshold=float("nan"),
        coverage=len(answered) / len(in_scope) if in_scope else 0.0,
        accuracy=sum(p.intent == p.gold for p in answered) / len(answered) if answered else 0.0,
        oos_answered=sum(oos) / len(oos) if oos else 0.0,
    )


def cross_fit(predictions: Sequence[Prediction], folds: Sequence[int], shrink: float = SHRINK) -> CoverageRow:
    """For each fold, per-intent thresholds derived on the other folds decide its predictions; the
    decisions pooled: each prediction is judged by thresholds that never saw it."""

    def per_intent(rest: Sequence[Prediction]) -> Optional[Tuple[Dict[str, float], float]]:
        derived = derive(rest, shrink=shrink)
        return (derived.thresholds, derived.default) if derived is not None else None

    return _judged(predictions, folds, per_intent)


def cross_fit_floored(
    predictions: Sequence[Prediction], folds: Sequence[int], at_least: float = 0.0, shrink: float = SHRINK
) -> CoverageRow:
    """What escalation.yml carries when per-intent thresholds miss the limits, judged the same way:
    for each fold, the one high threshold of the other folds (metrics.choose_high, raised to
    `at_least`: the high another data set asks for) with the stricter per-intent highs of those
    folds (`floored`) decides its predictions."""

    def one_with_stricter_rows(rest: Sequence[Prediction]) -> Optional[Tuple[Dict[str, float], float]]:
        row = choose_high(rest)
        if row is None:
            return None
        high = max(row.threshold, at_least)
        derived = derive(rest, shrink=shrink)
        if derived is None:
            return {}, high
        kept = floored(derived, high)
        return kept.thresholds, kept.default

    return _judged(predictions, folds, one_with_stricter_rows)
