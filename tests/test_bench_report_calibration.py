"""The bench's per-intent section, goal check, folds and ablations (pure; no training)."""

from __future__ import annotations

from typing import List

import pytest

from backline.bench import configs, datasets, metrics, report, report_calibration
from backline.bench.calibration import derive
from tests.test_bench_calibration import history, split_history


def _run(name: str, folds: bool = True, latencies: List[float] = ()) -> report.QualityRun:  # type: ignore[assignment]
    predictions = history() * 2
    return report.QualityRun(
        name,
        "by construction",
        "config.yml",
        100,
        60.0,
        1.0,
        predictions,
        folds=[0] * len(history()) + [1] * len(history()) if folds else None,
        single_latencies=list(latencies),
    )


def _report(*runs: report.QualityRun) -> report.Report:
    return report.Report(
        command="python -m backline.bench run",
        date="2026-01-01 00:00 UTC",
        machine="m",
        wall_seconds=1.0,
        runs=list(runs),
        thresholds={"config.yml": report.derive(list(runs))},
        per_intent=derive(runs[-1].predictions),
    )


def test_best_accuracy_at_a_recall() -> None:
    """45 of the 50 out-of-scope queries are predicted out-of-scope: recall 0.9 with no threshold, so
    the best accuracy at >= 70 % is the plain one, 150 / 200. Catching all 50 takes a threshold above
    0.70 (5 are mistaken for `hard` at 0.70), which leaves only hard's 50 right answers."""
    accuracy, threshold = report_calibration.best_accuracy_at_recall(history(), 0.70)
    assert (accuracy, threshold) == (pytest.approx(0.75), 0.0)
    assert report_calibration.best_accuracy_at_recall(history(), 1.0) == (pytest.approx(0.25), 0.71)


def test_the_goals_are_measured_and_marked() -> None:
    page = report.render(_report(_run(report.CLINC, latencies=[0.010, 0.012, 0.014]), _run(report.DEMO)))
    goals = page.split("## Goals")[1].split("## Routing quality")[0]
    assert "| 75.0 / 100.0 / 0.0 (per-intent thresholds, cross-fitted) | yes |" in goals  # demo: 150 of 200
    assert "75.0 at 0.0 | **no** |" in goals  # CLINC in-scope accuracy at OOS recall >= 70 %
    assert "one threshold 25.0, per-intent 75.0 | **no** |" in goals
    assert "| 1.0 min | yes |" in goals
    assert "p50 12.0 ms, p95 13.8 ms | yes |" in goals


def test_the_demo_goal_is_judged_by_what_escalation_yml_carries() -> None:
    """Per-intent thresholds miss the limits cross-fitted on split_history (fold 1's wrong `easy`
    answers go out alone), so the goal row judges the one threshold with the stricter per-intent
    highs, cross-fitted: hard's 100 right answers of 320 in-scope queries alone."""
    predictions, folds = split_history()
    demo = report.QualityRun(report.DEMO, "by construction", "config.yml", 100, 60.0, 1.0, predictions, folds=folds)
    page = report.render(_report(_run(report.CLINC), demo))
    goals = page.split("## Goals")[1].split("## Routing quality")[0]
    assert (
        "| 31.2 / 100.0 / 0.0 (one threshold with the stricter per-intent highs, as escalation.yml carries them, "
        "cross-fitted) | **no** |" in goals
    )


def test_the_per_intent_section_compares_one_threshold_with_per_intent() -> None:
    page = report.render(_report(_run(report.CLINC), _run(report.DEMO)))
    section = page.split("## Per-intent thresholds")[1].split("## Serving speed")[0]
    assert "| CLINC150 | high 0.89, 25.0 / 100.0 / 0.0 | 75.0 / 100.0 / 0.0 | 750 → 250 |" in section
    assert "Per-intent highs for escalation.yml" in section and "easy 0." in section


def test_the_held_out_row_is_judged_by_the_written_thresholds() -> None:
    heldout = _run(report.HELDOUT, folds=False)
    page = report.render(_report(_run(report.DEMO), heldout))
    section = page.split("## Per-intent thresholds")[1]
    row = next(line for line in section.splitlines() if line.startswith(f"| {report.HELDOUT} |"))
    assert "(escalation.yml)" in row and "75.0 / 100.0 / 0.0" in row


def test_fold_ids_deal_every_intent_over_the_folds() -> None:
    examples = [(f"{intent} {n}", intent) for intent in "ab" for n in range(6)]
    folds = datasets.fold_ids(examples, 2, seed=3)
    for intent in "ab":
        assert sorted(f for (_, i), f in zip(examples, folds) if i == intent) == [0, 0, 0, 1, 1, 1]
    assert folds == datasets.fold_ids(examples, 2, seed=3)


def test_an_ablation_drops_one_component() -> None:
    project = {"assistant_id": "k", "pipeline": [{"name": "A"}, {"name": "x.B", "scale": 3}, {"name": "C"}]}
    ablated = configs.without(project, "x.B")
    assert ablated["pipeline"] == [{"name": "A"}, {"name": "C"}]
    assert ablated["assistant_id"] == "k-without-B"
    assert project["pipeline"][1] == {"name": "x.B", "scale": 3}
    with pytest.raises(ValueError, match="no component 'D'"):
        configs.without(project, "D")


def test_expert_share_per_thousand() -> None:
    row = metrics.CoverageRow(0.9, 0.752, 0.99, 0.01)
    assert report_calibration.to_expert_per_thousand(row) == "248"
    assert report_calibration.to_expert_per_thousand(None) == "1000"
