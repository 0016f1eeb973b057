"""docs/benchmarks.md from measured results: plain data in, Markdown out."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from backline.bench import calibration, metrics, overhead, report_calibration
from backline.bench.metrics import LatencySummary, Prediction
from backline.bench.overhead import OverheadResult

DEMO = "Kestrel demo"
HELDOUT = "Kestrel demo, held out"
CLINC = "CLINC150"
REFERENCES = [
    ("Rasa NLU 2019 (spacy-sklearn), out-of-scope intent", 91.5, 45.3),
    ("Rasa NLU 2019, confidence threshold", 90.9, 31.2),
    ("BERT fine-tuned, confidence threshold", 96.2, 52.3),
]


@dataclass
class QualityRun:
    """One pipeline trained and evaluated on one data set."""

    dataset: str
    description: str
    config: str
    train_examples: int
    train_seconds: float
    parse_seconds: float
    predictions: List[Prediction]
    folds: Optional[List[int]] = None  # per prediction, for cross-fitted per-intent thresholds
    single_latencies: List[float] = field(default_factory=list)  # one message per graph run, seconds


@dataclass
class Thresholds:
    """Recommended high / low: the stricter of those derived on each source."""

    high: float
    low: float
    sources: Dict[str, Tuple[metrics.CoverageRow, float]]
    per_dataset: Dict[str, Optional[metrics.CoverageRow]]


@dataclass
class Report:
    """Everything docs/benchmarks.md shows."""

    command: str
    date: str
    machine: str
    wall_seconds: float
    runs: List[QualityRun]
    thresholds: Dict[str, Optional[Thresholds]]
    serving: Dict[str, Dict[int, LatencySummary]] = field(default_factory=dict)
    serving_note: str = ""
    hub_reply: Dict[str, LatencySummary] = field(default_factory=dict)
    per_intent: Optional["calibration.IntentThresholds"] = None
    overhead: Optional["OverheadResult"] = None


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def fmt(threshold: float) -> str:
    """Two decimals, three where the threshold has them (0.70, 0.995)."""
    return f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:.3f}"


def derive(runs: Sequence[QualityRun]) -> Optional[Thresholds]:
    """High and low for escalation.yml from two sources: the first run's data set (CLINC150, the
    standard benchmark with out-of-domain out-of-scope queries) and, when present, the demo
    domain's cross-validation (DEMO). On each, high = metrics.choose_high and low =
    metrics.choose_low under it; the recommendation takes the stricter (higher) of each.
    None when the first data set has no qualifying high."""
    per_dataset = {run.dataset: metrics.choose_high(run.predictions) for run in runs}
    sources = {}
    for run in [*runs[:1], *(run for run in runs[1:] if run.dataset == DEMO)]:
        row = per_dataset[run.dataset]
        if row is not None:
            sources[run.dataset] = (row, metrics.choose_low(run.predictions, row.threshold))
    if not runs or runs[0].dataset not in sources:
        return None
    return Thresholds(
        high=max(row.threshold for row, _ in sources.values()),
        low=max(low for _, low in sources.values()),
        sources=sources,
        per_dataset=per_dataset,
    )


def _quality_summary(runs: Sequence[QualityRun], thresholds: Dict[str, Optional[Thresholds]]) -> List[str]:
    lines = [
        "| data set | config | in-scope acc. | OOS recall (intent) | at low: in-scope acc. / OOS recall "
        "| at high: coverage / accuracy / OOS answered alone | train time |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        chosen = thresholds.get(run.config)
        p = run.predictions
        if chosen:
            row = metrics.coverage_row(p, chosen.high)
            at_low = f"{pct(metrics.in_scope_accuracy(p, chosen.low))} / {pct(metrics.oos_recall(p, chosen.low))} (low {fmt(chosen.low)})"
            at_high = f"{pct(row.coverage)} / {pct(row.accuracy)} / {pct(row.oos_answered)} (high {fmt(chosen.high)})"
        else:
            at_low = at_high = "no threshold meets the limits"
        lines.append(
            f"| {run.dataset} | `{run.config}` | {pct(metrics.in_scope_accuracy(p))} | {pct(metrics.oos_recall(p))} "
            f"| {at_low} | {at_high} | {run.train_seconds / 60:.1f} min |"
        )
    return lines


def coverage_table(run: QualityRun) -> List[str]:
    """The run's risk–coverage table in Markdown, the lowest high meeting the limits marked."""
    lines = [
        f"**{run.dataset}, `{run.config}`** ({run.train_examples} training examples; "
        f"{sum(p.gold != metrics.OOS for p in run.predictions)} in-scope and "
        f"{sum(p.gold == metrics.OOS for p in run.predictions)} out-of-scope validation queries, "
        f"parsed in {run.parse_seconds:.0f} s)",
        "",
        "| high | in-scope answered alone | accuracy of those answers | OOS answered alone "
        "| as the only threshold: in-scope acc. / OOS recall |",
        "|---|---|---|---|---|",
    ]
    chosen = metrics.choose_high(run.predictions)
    thresholds = sorted(set(metrics.TABLE_THRESHOLDS) | ({chosen.threshold} if chosen else set()))
    for row in metrics.risk_coverage(run.predictions, thresholds):
        mark = " ← lowest meeting the limits" if chosen and row.threshold == chosen.threshold else ""
        lines.append(
            f"| {fmt(row.threshold)}{mark} | {pct(row.coverage)} | {pct(row.accuracy)} | {pct(row.oos_answered)} "
            f"| {pct(metrics.in_scope_accuracy(run.predictions, row.threshold))} / "
            f"{pct(metrics.oos_recall(run.predictions, row.threshold))} |"
        )
    return lines


def _serving(report: Report) -> List[str]:
    if not report.serving:
        return [report.serving_note or "Not measured in this run."]
    names = list(report.serving)
    lines = [
        "| stack | concurrent conversations | messages | p50 latency | p95 latency | messages/s |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        for concurrency, summary in report.serving[name].items():
            lines.append(
                f"| {name} | {concurrency} | {summary.messages} | {summary.p50 * 1000:.0f} ms "
                f"| {summary.p95 * 1000:.0f} ms | {summary.per_second:.1f} |"
            )
    if len(names) == 2:
        first, second = (report.serving[name] for name in names)
        lines += ["", f"Ratio {names[0]} / {names[1]}:", ""]
        for concurrency in first:
            a, b = first[concurrency], second[concurrency]
            lines.append(
                f"- {concurrency} concurrent: p50 ×{a.p50 / b.p50:.2f}, p95 ×{a.p95 / b.p95:.2f}, "
                f"throughput ×{a.per_second / b.per_second:.2f}"
            )
    if report.serving_note:
        lines += ["", report.serving_note]
    return lines


def _hub_reply(report: Report) -> List[str]:
    if not report.hub_reply:
        return [report.serving_note or "Not measured in this run."]
    count = next(iter(report.hub_reply.values())).messages
    return [
        "`python -m backline run` (Rasa server, action server, hub) on free loopback ports with scratch stores and "
        f"no expert channel configured. {count} consultations, one after the other: a customer on the outbox "
        "channel (REST, with pushed messages kept for the client) asks for a refund over the limit, an immediate "
        "handoff to billing; the operator answers through the hub's `POST /api/consultations/{id}/reply` while "
        "the customer polls `GET /webhooks/outbox/messages` every 10 ms. Timed from sending the reply until the "
        "answer is in the customer's outbox (*visible*) and until the hub's response (which must carry it too). "
        "In between, the hub records the reply and resumes the conversation with Rasa's "
        "`trigger_intent?output_channel=latest`, which runs `action_expert_update` on the action server.",
        "",
        "| until | consultations | p50 | p95 |",
        "|---|---|---|---|",
        *(
            f"| {name} | {summary.messages} | {summary.p50 * 1000:.0f} ms | {summary.p95 * 1000:.0f} ms |"
            for name, summary in report.hub_reply.items()
        ),
    ]


def _evidence(row: metrics.CoverageRow, low: float) -> str:
    return (
        f"high {fmt(row.threshold)} ({pct(row.coverage)}% of in-scope answered alone, {pct(row.accuracy)}% of them "
        f"right, {pct(row.oos_answered)}% of out-of-scope answered), low {low:.2f}"
    )


def escalation_comment(thresholds: Thresholds, config: str, date: str) -> str:
    """The `defaults.thresholds` block for escalation.yml, with how it was chosen."""
    evidence = "; ".join(f"{name}: {_evidence(row, low)}" for name, (row, low) in thresholds.sources.items())
    method = (
        f"Derived by `make bench` ({date[:10]}, docs/benchmarks.md) for the NLU pipeline of {config}, on "
        f"{' and '.join(thresholds.sources)}. high: the lowest confidence at which >= {metrics.MIN_ACCURACY:.0%} of the "
        f"AI's lone answers are right and <= {metrics.MAX_OOS_ANSWERED:.0%} of out-of-scope queries are answered alone; "
        f"low: below it the top intent is right less than {metrics.MIN_DRAFT_ACCURACY:.0%} of the time (a draft would "
        "mislead the reviewer). The stricter of the sources; re-derive after a pipeline change."
    )
    return "\n".join(
        [
            "  thresholds:",
            *textwrap.wrap(method, width=88, initial_indent="    # ", subsequent_indent="    # "),
            f"    high: {thresholds.high:.2f}",
            f"    low: {thresholds.low:.2f}",
            f'    basis: "{evidence}"',
        ]
    )


def render(report: Report) -> str:
    """The whole Markdown page."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{report.command}` on {report.date}, on {report.machine}; the whole run took "
        f"{report.wall_seconds / 60:.1f} minutes (`make bench` runs this command after `make setup train`). Every "
        "figure below comes from that run; nothing is edited by hand.",
        "",
        *report_calibration.goals(report, CLINC, DEMO),
        "## Routing quality",
        "",
        "Each config's NLU pipeline (custom components included) is trained with Rasa's own training API on the "
        "data set's training split and parses its validation split. Out-of-scope is decided two ways, both "
        "reported: by the predicted intent (`out_of_scope` is a trained intent where the data has out-of-scope "
        "training queries: CLINC150's oos_train; BANKING77 has none) and by a confidence threshold. A query is "
        "*answered alone* at threshold *high* when its predicted intent is not `out_of_scope` and its confidence "
        "is ≥ high; *coverage* is the share of in-scope queries answered alone, *accuracy* the share of those "
        "answers with the right intent. With a threshold, in-scope accuracy counts a right intent below it as "
        "wrong and OOS recall counts a query below it as caught (the protocol of Larson et al. 2019). How the "
        "pipeline was chosen: docs/routing-experiments.md.",
        "",
    ]
    for dataset, description in {run.dataset: run.description for run in report.runs}.items():
        lines.append(f"- {dataset}: {description}.")
    lines += [
        "",
        *_quality_summary(report.runs, report.thresholds),
        "",
        "Reference points (CLINC150 full, test split, Larson et al. 2019; in-scope accuracy / OOS recall): "
        + "; ".join(f"{name} {acc} / {rec}" for name, acc, rec in REFERENCES)
        + ".",
        "",
        "### Risk–coverage",
        "",
        "The last column takes the row's threshold as the only one, as Larson et al. do: a query below it "
        "counts as out-of-scope.",
        "",
    ]
    for run in report.runs:
        lines += [*coverage_table(run), ""]
    lines += [
        "## Thresholds",
        "",
        f"High and low are derived on CLINC150, whose out-of-scope queries are out-of-domain requests (the "
        f"standard benchmark), and on the demo domain ({DEMO}: k-fold cross-validation on data/nlu, "
        f"`python -m backline.bench thresholds`), taking the stricter of the two. BANKING77's held-out categories are in-domain requests the model was never "
        "taught: its rows above show how many of them a threshold lets through, a stress case that no single "
        "confidence threshold fixes (teach `out_of_scope` such requests, and keep the matrix's per-intent rules).",
        "",
    ]
    for config, chosen in report.thresholds.items():
        if chosen is None:
            lines += [
                f"`{config}`: no threshold meets {metrics.MIN_ACCURACY:.0%} accuracy with ≤ "
                f"{metrics.MAX_OOS_ANSWERED:.0%} of OOS answered alone on {report.runs[0].dataset}.",
                "",
            ]
            continue
        own = ", ".join(
            f"{name} {fmt(row.threshold)}" if row else f"{name} none" for name, row in chosen.per_dataset.items()
        )
        lines += [
            f"`{config}`: high **{chosen.high:.2f}**, low **{chosen.low:.2f}** (each data set's own lowest "
            f"qualifying high: {own}). For escalation.yml:",
            "",
            "```yaml",
            escalation_comment(chosen, config, report.date),
            "```",
            "",
        ]
    lines += report_calibration.section(report, HELDOUT)
    lines += [
        "## Serving speed",
        "",
        "Over REST on loopback: the action server and each Rasa server on free ports, fresh SQLite tracker "
        "stores, a scripted six-message conversation repeated, each message timed until its answer arrives. "
        "*vanilla* is the project's config with only stock Rasa parts (WhitespaceTokenizer instead of spaCy, "
        "no custom NLU components, MemoizationPolicy + RulePolicy + TEDPolicy instead of the routing "
        "policy), trained on the same NLU data and domain. The two do not take the same dialogue paths: "
        "without the project's entity extraction the vanilla order form never gets the order number from "
        '"where is my order 10023?" and stays open for the rest of the conversation.',
        "",
        *_serving(report),
        "",
        "## Expert reply → customer channel",
        "",
        *_hub_reply(report),
        "",
        *(overhead.render(report.overhead) + [""] if report.overhead else []),
    ]
    return "\n".join(lines)
