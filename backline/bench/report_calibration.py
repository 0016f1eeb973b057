"""docs/benchmarks.md's per-intent threshold section and the goal check: plain data in, Markdown out."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from backline.bench import calibration, metrics
from backline.bench.metrics import CoverageRow, Prediction

if TYPE_CHECKING:
    from backline.bench.report import QualityRun, Report, Thresholds

GOAL_COVERAGE_DEMO = 0.75
GOAL_CLINC_ACCURACY = 0.94
GOAL_CLINC_OOS_RECALL = 0.70
GOAL_CLINC_COVERAGE = 0.85
GOAL_TRAIN_MINUTES = 15
GOAL_PARSE_MS = 15
GOAL_OVERHEAD_RATIO = 1.05


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def figures(row: Optional[CoverageRow]) -> str:
    return f"{pct(row.coverage)} / {pct(row.accuracy)} / {pct(row.oos_answered)}" if row else "none meets the limits"


def meets(row: Optional[CoverageRow]) -> bool:
    return bool(row) and row.accuracy >= metrics.MIN_ACCURACY and row.oos_answered <= metrics.MAX_OOS_ANSWERED  # type: ignore[union-attr]


def to_expert_per_thousand(row: Optional[CoverageRow]) -> str:
    """In-scope questions of every 1,000 that an expert sees (a draft to review, or a handoff);
    marked where the row misses the limits (more answered alone, but not safely)."""
    if row is None:
        return "1000"
    return f"{round(1000 * (1 - row.coverage))}" + ("" if meets(row) else " (misses the limits)")


def basis(derived: calibration.IntentThresholds, chosen: "Thresholds", config: str, when: datetime) -> str:
    """The one-line `defaults.thresholds.basis` written into escalation.yml with the thresholds."""
    sources = "; ".join(
        f"{name}: high {row.threshold:.2f} ({pct(row.coverage)}% answered alone, {pct(row.accuracy)}% right, "
        f"{pct(row.oos_answered)}% of out-of-scope answered), low {low:.2f}"
        for name, (row, low) in chosen.sources.items()
    )
    rows = (
        "only the rows whose intent needs a stricter high (per-intent thresholds miss the limits cross-fitted)"
        if derived.floor is not None
        else "per-intent highs"
    )
    return (
        f"make bench {when:%Y-%m-%d} for {config} (docs/benchmarks.md). Defaults: {sources}. Rows: {rows} "
        f"from the demo's cross-validation, calibrated chance of a right answer >= {derived.cut:.3f}"
    )


def best_accuracy_at_recall(predictions: Sequence[Prediction], recall: float) -> Tuple[float, Optional[float]]:
    """The best in-scope accuracy at one confidence threshold that catches >= `recall` of out-of-scope
    queries, and that threshold (None when no grid threshold catches enough)."""
    best: Tuple[float, Optional[float]] = (0.0, None)
    for threshold in [0.0, *metrics.GRID]:
        if metrics.oos_recall(predictions, threshold) >= recall:
            accuracy = metrics.in_scope_accuracy(predictions, threshold)
            if accuracy > best[0]:
                best = (accuracy, threshold)
    return best


def cross_fitted(run: "QualityRun") -> Optional[CoverageRow]:
    return calibration.cross_fit(run.predictions, run.folds) if run.folds else None


def deployed_cross_fitted(report: "Report", run: "QualityRun") -> Tuple[Optional[CoverageRow], str]:
    """The demo judged by the scheme of thresholds the bench writes into escalation.yml, each fold by
    thresholds derived without it: per-intent highs where those meet the limits cross-fitted;
    otherwise the one high (never below the other data sets' highs, as report.derive takes the
    stricter) with the stricter per-intent highs. Returns the figures and how they were decided."""
    per_intent = cross_fitted(run)
    if meets(per_intent) or not run.folds:
        return per_intent, "per-intent thresholds"
    chosen = report.thresholds.get(run.config)
    others = [row.threshold for name, (row, _) in chosen.sources.items() if name != run.dataset] if chosen else []
    floored = calibration.cross_fit_floored(run.predictions, run.folds, at_least=max(others, default=0.0))
    return floored, "one threshold with the stricter per-intent highs, as escalation.yml carries them"


def section(report: "Report", heldout_name: str) -> List[str]:
    """Per-intent thresholds: how much more the AI answers alone at the same limits."""
    lines = [
        "## Per-intent thresholds",
        "",
        "One threshold for every intent lets the most confusable intent set the bar for all. "
        "`backline/bench/calibration.py` models the chance that a lone answer is right from the confidence and "
        "the predicted intent (a logistic regression on logit(confidence) with one L2-shrunk offset per intent) "
        "and answers alone where that chance reaches one cut, the lowest meeting the same limits "
        f"(≥ {metrics.MIN_ACCURACY:.0%} right, ≤ {metrics.MAX_OOS_ANSWERED:.0%} of out-of-scope answered); per "
        "intent the cut is a confidence, the row's `high`. *Cross-fitted*: the thresholds that judge a query were "
        "derived without it (demo: on the other folds of the cross-validation; CLINC150 and BANKING77: the "
        "validation split dealt into two halves, each judged by thresholds from the other). The held-out row is "
        "judged by the thresholds written into escalation.yml (derived from the whole cross-validation).",
        "",
        "| data set | one threshold: high, coverage / accuracy / OOS answered | per-intent, cross-fitted: "
        "coverage / accuracy / OOS answered | in-scope questions of 1,000 that go to an expert: one threshold → "
        "per-intent |",
        "|---|---|---|---|",
    ]
    chosen = next(iter(report.thresholds.values()), None)
    for run in report.runs:
        if run.config != next(iter(report.thresholds), run.config):
            continue
        if run.dataset == heldout_name:
            one = metrics.coverage_row(run.predictions, chosen.high) if chosen else None
            per = (
                calibration.coverage(run.predictions, report.per_intent.thresholds, report.per_intent.default)
                if report.per_intent
                else None
            )
            label = f"high {chosen.high:.2f} (escalation.yml)" if chosen else "none"
        else:
            one = metrics.choose_high(run.predictions)
            per = cross_fitted(run)
            label = f"high {one.threshold:.2f}" if one else "none"
        lines.append(
            f"| {run.dataset} | {label}, {figures(one) if one else 'none'} | {figures(per)} "
            f"| {to_expert_per_thousand(one)} → {to_expert_per_thousand(per)} |"
        )
    if report.per_intent:
        derived = report.per_intent
        rows = ", ".join(f"{name} {value:.2f}" for name, value in sorted(derived.thresholds.items()))
        floor = (
            f" Cross-fitted on the demo domain they miss the limits, so only the rows whose intent needs more "
            f"than the one threshold ({derived.floor:.2f}) get theirs; rows an earlier bench wrote take the "
            "defaults again, rows set by hand keep theirs."
            if derived.floor is not None
            else ""
        )
        lines += [
            "",
            f"Per-intent highs for escalation.yml (calibrated cut {derived.cut:.3f}; only rows with `ai_may: answer` "
            f"take them): {rows}.{floor}",
        ]
    return lines + [""]


def goals(report: "Report", clinc: str, demo: str) -> List[str]:
    """Issue 18's goal figures, each measured in this run and marked met or not."""
    runs = {run.dataset: run for run in report.runs if run.config == next(iter(report.thresholds), run.config)}
    lines = ["## Goals", "", "| goal | measured | met |", "|---|---|---|"]

    def add(goal: str, measured: str, met: bool) -> None:
        lines.append(f"| {goal} | {measured} | {'yes' if met else '**no**'} |")

    if demo in runs:
        row, how = deployed_cross_fitted(report, runs[demo])
        add(
            f"{demo} (cross-validated): ≥ {GOAL_COVERAGE_DEMO:.0%} of in-scope answered alone, ≥ 99 % of them right, "
            "≤ 3 % of out-of-scope answered",
            f"{figures(row)} ({how}, cross-fitted)",
            meets(row) and row is not None and row.coverage >= GOAL_COVERAGE_DEMO,
        )
    if clinc in runs:
        run = runs[clinc]
        accuracy, threshold = best_accuracy_at_recall(run.predictions, GOAL_CLINC_OOS_RECALL)
        add(
            f"{clinc}: in-scope accuracy ≥ {GOAL_CLINC_ACCURACY:.0%} with out-of-scope recall ≥ "
            f"{GOAL_CLINC_OOS_RECALL:.0%} at one threshold",
            f"{pct(accuracy)} at {threshold}" if threshold is not None else "no threshold reaches the recall",
            accuracy >= GOAL_CLINC_ACCURACY,
        )
        one, per = metrics.choose_high(run.predictions), cross_fitted(run)
        best = max([r for r in (one, per) if meets(r)], key=lambda r: r.coverage, default=None)  # type: ignore[union-attr]
        add(
            f"{clinc}: ≥ {GOAL_CLINC_COVERAGE:.0%} answered alone at the 99 % / 3 % limits",
            f"one threshold {pct(one.coverage) if one else 'none'}, per-intent {pct(per.coverage) if per else 'none'}",
            best is not None and best.coverage >= GOAL_CLINC_COVERAGE,
        )
        add(
            f"{clinc}: training ≤ {GOAL_TRAIN_MINUTES} minutes on this machine",
            f"{run.train_seconds / 60:.1f} min",
            run.train_seconds <= GOAL_TRAIN_MINUTES * 60,
        )
        if run.single_latencies:
            p50 = metrics.percentile(run.single_latencies, 50) * 1000
            p95 = metrics.percentile(run.single_latencies, 95) * 1000
            add(
                f"parsing ≤ {GOAL_PARSE_MS} ms per message (one message per graph run, {len(run.single_latencies)} "
                f"{clinc} queries)",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                p50 <= GOAL_PARSE_MS,
            )
    if report.overhead:
        add(
            f"routing layer overhead ≤ ×{GOAL_OVERHEAD_RATIO:.2f} per message (p50, same model with and without it)",
            f"×{report.overhead.p50_ratio:.3f} (p95 ×{report.overhead.p95_ratio:.3f})",
            report.overhead.p50_ratio <= GOAL_OVERHEAD_RATIO,
        )
    return lines + [""]
