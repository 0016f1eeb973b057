"""Routing-quality metrics: accuracy, out-of-scope recall, risk–coverage, threshold choice.

A prediction answers alone at threshold t when its intent is not out-of-scope and its
confidence is >= t. In-scope accuracy counts a query right when the predicted intent is
its gold intent (and, with a threshold, the confidence reaches it); an out-of-scope query
is caught when the predicted intent is out-of-scope or (with a threshold) the confidence
is below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence

from backline.bench.datasets import OOS

GRID = [round(0.01 * step, 2) for step in range(1, 100)] + [0.995, 0.999]
TABLE_THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995]
MIN_ACCURACY = 0.99
MAX_OOS_ANSWERED = 0.03
MIN_DRAFT_ACCURACY = 0.5


class Prediction(NamedTuple):
    """Gold intent (OOS for out-of-scope), predicted intent and its confidence."""

    gold: str
    intent: str
    confidence: float


@dataclass(frozen=True)
class CoverageRow:
    """What the AI would answer alone at one high threshold."""

    threshold: float
    coverage: float
    accuracy: float
    oos_answered: float


def _share(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def answers_alone(prediction: Prediction, threshold: float) -> bool:
    """True when the AI would answer without a person at this threshold."""
    return prediction.intent != OOS and prediction.confidence >= threshold


def in_scope_accuracy(predictions: Sequence[Prediction], threshold: float = 0.0) -> float:
    """Share of in-scope queries whose predicted intent is right (and reaches `threshold`)."""
    in_scope = [p for p in predictions if p.gold != OOS]
    return _share(sum(p.intent == p.gold and p.confidence >= threshold for p in in_scope), len(in_scope))


def oos_recall(predictions: Sequence[Prediction], threshold: float = 0.0) -> float:
    """Share of out-of-scope queries caught: predicted out-of-scope, or confidence below `threshold`."""
    oos = [p for p in predictions if p.gold == OOS]
    return _share(sum(not answers_alone(p, threshold) for p in oos), len(oos))


def coverage_row(predictions: Sequence[Prediction], threshold: float) -> CoverageRow:
    """Coverage (in-scope answered alone), accuracy of those answers, and out-of-scope answered alone."""
    in_scope = [p for p in predictions if p.gold != OOS]
    answered = [p for p in in_scope if answers_alone(p, threshold)]
    oos = [p for p in predictions if p.gold == OOS]
    return CoverageRow(
        threshold=threshold,
        coverage=_share(len(answered), len(in_scope)),
        accuracy=_share(sum(p.intent == p.gold for p in answered), len(answered)),
        oos_answered=_share(sum(answers_alone(p, threshold) for p in oos), len(oos)),
    )


def risk_coverage(
    predictions: Sequence[Prediction], thresholds: Sequence[float] = TABLE_THRESHOLDS
) -> List[CoverageRow]:
    """One CoverageRow per threshold."""
    return [coverage_row(predictions, threshold) for threshold in thresholds]


def choose_high(
    predictions: Sequence[Prediction],
    min_accuracy: float = MIN_ACCURACY,
    max_oos_answered: float = MAX_OOS_ANSWERED,
    grid: Sequence[float] = GRID,
) -> Optional[CoverageRow]:
    """The lowest threshold whose lone answers are >= min_accuracy right and that answers
    <= max_oos_answered of the out-of-scope queries (an empty answer set does not qualify)."""
    for row in risk_coverage(predictions, sorted(grid)):
        if row.coverage > 0 and row.accuracy >= min_accuracy and row.oos_answered <= max_oos_answered:
            return row
    return None


def choose_low(
    predictions: Sequence[Prediction],
    high: float,
    min_accuracy: float = MIN_DRAFT_ACCURACY,
    grid: Sequence[float] = GRID,
) -> float:
    """The highest threshold below `high` under which the in-scope top intent is right less than
    `min_accuracy` of the time: below it a draft would mislead the reviewer more than help.
    With no such threshold, the lowest grid value."""
    in_scope = [p for p in predictions if p.gold != OOS]
    chosen = min(grid)
    for threshold in sorted(grid):
        if threshold >= high:
            break
        below = [p for p in in_scope if p.confidence < threshold]
        if below and _share(sum(p.intent == p.gold for p in below), len(below)) < min_accuracy:
            chosen = threshold
    return chosen


@dataclass(frozen=True)
class LatencySummary:
    """Per-message latency percentiles (seconds) and throughput of one load run."""

    messages: int
    p50: float
    p95: float
    per_second: float

    def __str__(self) -> str:
        return (
            f"{self.messages} messages: p50 {self.p50 * 1000:.0f} ms, p95 {self.p95 * 1000:.0f} ms, "
            f"{self.per_second:.1f} msg/s"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(latencies: Sequence[float], wall_seconds: float) -> LatencySummary:
    """p50 and p95 of `latencies` and messages per second over the run's wall time."""
    return LatencySummary(
        messages=len(latencies),
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        per_second=len(latencies) / wall_seconds,
    )
