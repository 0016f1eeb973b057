"""The governance report: ``python -m backline report --since 30d [--until DATE] [--format md|html] [--out DIR]``.

Computes the outcome metrics over the window from the consultation store and Rasa's tracker store
(`backline.governance.service.GovernanceService.metrics`, every queue) and writes, into ``--out``
(default ``reports/governance-<today>/``):

- ``report.md`` (plots as PNG files beside it) or ``report.html`` (plots embedded: the file stands alone):
  the headline metrics with their definitions, a table per breakdown (queue, intent, reason, channel,
  week), where the matrix looks wrong (rows whose escalations were mostly not needed, intents with
  missed escalations, override reasons per intent), the plots, and a stamp (when, the command, the window);
- ``metrics.csv``: one row per dimension x value x metric, the overall ones first (dimension ``overall``);
- ``weekly.csv``: one row per ISO week with every measure.

A bad ``--since`` / ``--until`` exits 2; a store that cannot be read exits 1 with the reason (redacted).
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy.exc import SQLAlchemyError

from backline import configuration
from backline.governance import plots
from backline.governance.candidates import StoreUnavailable, command_line, open_stores, parse_window
from backline.governance.config import governance
from backline.governance.metrics import DIMENSIONS, VERDICT_KEYS
from backline.governance.service import GovernanceService
from backline.redact import redact
from backline.utc import iso, utcnow

FLAT = (
    "conversations", "consultations", "containment_rate", "escalation_rate", "escalation_accuracy",
    "missed_escalations", "first_reply_median", "first_reply_p90", "resolution_median", "resolution_p90",
    "handback_rate", "reopened_rate", "csat", "override_rate", "sla_breaches",
)  # fmt: skip
"""The measures of each breakdown value (metrics.py's flat keys), in the CSV's and the tables' order."""
Block = Tuple[Any, ...]


def pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def minutes(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def number(value: Any) -> str:
    return "n/a" if value is None else str(value)


def score(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _counts(counts: Mapping[str, int], labels: Mapping[str, str]) -> str:
    items = [
        f"{labels.get(k, k.replace('_', ' '))} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return ", ".join(items) or "none"


def overall(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """The window's measures under the breakdowns' flat keys, plus the overall-only ones."""
    first, resolved = metrics["first_reply_seconds"], metrics["resolution_seconds"]
    row = {key: metrics.get(key) for key in FLAT}
    row.update(
        first_reply_median=first["median"], first_reply_p90=first["p90"],
        resolution_median=resolved["median"], resolution_p90=resolved["p90"],
        contained=metrics["contained"], missed_escalation_rate=metrics["missed_escalation_rate"],
        sla_breach_rate=metrics["sla_breach_rate"], csat_answers=metrics["csat_responses"]["count"],
        reopened=metrics["reopened"]["count"], resolutions=metrics["reopened"]["of"],
    )  # fmt: skip
    for hours in ("business_hours", "off_hours"):
        for name, source in (("first_reply", first), ("resolution", resolved)):
            row[f"{name}_{hours}_median"] = source[hours]["median"]
            row[f"{name}_{hours}_p90"] = source[hours]["p90"]
    row.update({f"verdicts_{k}": v for k, v in metrics["verdicts"].items()})
    row.update({f"override_reason_{k}": v for k, v in sorted(metrics["override_reasons"].items())})
    row.update({f"ladder_{k}": v for k, v in sorted(metrics["ladder_steps"].items())})
    return row


def headlines(metrics: Mapping[str, Any]) -> List[Tuple[str, str, str]]:
    """(measure, value, definition), one line each."""
    rules = governance()
    conversations, contained = metrics["conversations"], metrics["contained"]
    verdicts = metrics["verdicts"]
    qa = metrics["qa"]
    rows = [
        ("Containment", f"{pct(metrics['containment_rate'])} ({contained} of {conversations} conversations)",
         "conversations that started in the window and never escalated, over all that started"),
        ("Escalation rate", f"{pct(metrics['escalation_rate'])} ({conversations - contained} of {conversations} conversations)",
         "conversations that escalated (a consultation or a handoff), over all that started"),
        ("Escalation accuracy",
         f"{pct(metrics['escalation_accuracy'])} ({_counts({k: verdicts[k] for k in VERDICT_KEYS}, rules.verdicts)})",
         "escalations an expert judged needed, over all judged (not needed and too late count against)"),
        ("Missed escalations", f"{metrics['missed_escalations']} ({pct(metrics['missed_escalation_rate'])} of reviewed AI-alone conversations)",
         "conversations the AI handled alone that a QA reviewer marked should have escalated"),
    ]  # fmt: skip
    for name, key, what in (
        ("First reply", "first_reply_seconds", "the first expert reply"),
        ("Resolution", "resolution_seconds", "the close"),
    ):
        for label, part, when in (
            ("", metrics[key], "every case"),
            (", business hours", metrics[key]["business_hours"], "cases opened within business hours (experts.yml)"),
            (", off hours", metrics[key]["off_hours"], "cases opened outside business hours"),
        ):
            value = f"median {minutes(part['median'])}, P90 {minutes(part['p90'])} ({part['count']} case{'' if part['count'] == 1 else 's'})"
            rows.append(
                (name + label, value, f"from a case's opening to {what}, median and P90 (nearest rank); {when}")
            )
    rows += [
        ("Hand-back rate", pct(metrics["handback_rate"]), "closed cases handed back to the AI, over closed cases"),
        ("Reopened", f"{pct(metrics['reopened_rate'])} ({metrics['reopened']['count']} of {metrics['reopened']['of']} resolutions)",
         f"AI answers, closes and hand-backs followed within {metrics.get('reopen_window_hours', rules.reopen_window_hours):g} h by a new escalation or a rejected answer"),
        ("CSAT", f"{score(metrics['csat'])} of 5 ({metrics['csat_responses']['count']} answers)",
         "mean 1-5 answer to the question asked after a close or a hand-back"),
        ("Override rate", pct(metrics["override_rate"]), "AI drafts an expert denied or edited, over drafts decided"),
        ("Override reasons", _counts(metrics["override_reasons"], rules.override_reasons), "why the experts overrode the drafts"),
        ("SLA breaches", f"{metrics['sla_breaches']} ({pct(metrics['sla_breach_rate'])} of cases)", "cases without an expert reply by their deadline"),
        ("SLA ladder steps", _counts(metrics["ladder_steps"], {}), "next person, backup queue, supervisor steps taken"),
        ("QA reviews", f"{qa['pending']} pending, {qa['reviewed']} reviewed ({_counts(qa['by_verdict'], {})})",
         "sampled AI work in the review queue and the reviewers' verdicts"),
    ]  # fmt: skip
    return rows


COLUMNS: Tuple[Tuple[str, str, Callable[[Any], str]], ...] = (
    ("conversations", "conversations", number), ("consultations", "cases", number),
    ("containment_rate", "containment", pct), ("escalation_rate", "escalation", pct),
    ("escalation_accuracy", "accuracy", pct), ("missed_escalations", "missed", number),
    ("first_reply_median", "first reply median", minutes), ("first_reply_p90", "first reply P90", minutes),
    ("resolution_median", "resolution median", minutes), ("handback_rate", "hand-back", pct),
    ("reopened_rate", "reopened", pct), ("csat", "CSAT", score), ("override_rate", "override", pct),
    ("sla_breaches", "SLA breaches", number),
)  # fmt: skip


def verdicts_by_intent(cases: Sequence[Any]) -> Dict[str, Counter]:
    found: Dict[str, Counter] = {}
    for case in cases:
        if case.verdict:
            found.setdefault(case.intent or "(none)", Counter())[case.verdict] += 1
    return found


def matrix_findings(metrics: Mapping[str, Any], cases: Sequence[Any]) -> List[Block]:
    """Where the matrix looks wrong: mostly-unneeded rows, missed escalations, override reasons per intent."""
    rules = governance()
    blocks: List[Block] = [("h2", "Where the matrix looks wrong")]
    by_intent = verdicts_by_intent(cases)
    mostly = [(i, c) for i, c in sorted(by_intent.items()) if c["not_needed"] * 2 > sum(c.values())]
    blocks.append(("h3", "Rows whose escalations were mostly not needed"))
    blocks.append(
        ("table", ["intent", *(rules.verdicts[k] for k in VERDICT_KEYS), "not needed share"],
         [[i, *(str(c[k]) for k in VERDICT_KEYS), pct(c["not_needed"] / sum(c.values()))] for i, c in mostly])
        if mostly else ("p", "None in this window: no row has more than half of its verdicts not needed.")
    )  # fmt: skip
    late = [f"{i} ({c['too_late']})" for i, c in sorted(by_intent.items()) if c["too_late"]]
    if late:
        blocks.append(("p", "Rows with escalations that should have come earlier: " + ", ".join(late) + "."))
    missed = [(i, row) for i, row in metrics["breakdowns"]["intent"].items() if row.get("missed_escalations")]
    blocks.append(("h3", "Intents with missed escalations (found by QA review)"))
    blocks.append(
        ("table", ["intent", "missed escalations", "conversations"], [[i, str(r["missed_escalations"]), number(r["conversations"])] for i, r in missed])
        if missed else ("p", "None in this window.")
    )  # fmt: skip
    reasons: Dict[str, Counter] = {}
    for case in cases:
        if case.override_kind:
            reasons.setdefault(case.intent or "(none)", Counter())[case.override_reason or "unspecified"] += 1
    keys = [k for k in [*rules.override_reasons, "unspecified"] if any(c[k] for c in reasons.values())]
    blocks.append(("h3", "Override reasons by intent"))
    blocks.append(
        ("table", ["intent", *(rules.override_reasons.get(k, k) for k in keys)], [[i, *(str(c[k]) for k in keys)] for i, c in sorted(reasons.items())])
        if reasons else ("p", "No overrides in this window.")
    )  # fmt: skip
    return blocks


def document(
    metrics: Mapping[str, Any], cases: Sequence[Any], images: Mapping[str, Mapping[str, Any]], command: str
) -> List[Block]:
    since, until = metrics["since"], metrics["until"]
    blocks: List[Block] = [
        ("h1", f"Governance report: {since[:10]} to {until[:10]}"),
        (
            "p",
            f"Generated {iso(utcnow().replace(microsecond=0))} by `{command}`. Window: {since} to {until} (until excluded), every queue.",
        ),
        ("h2", "Outcomes"),
        ("table", ["measure", "value", "definition"], [list(row) for row in headlines(metrics)]),
    ]
    blocks += matrix_findings(metrics, cases)
    blocks.append(("h2", "Plots"))
    blocks += [("img", name, image["title"], image["png"]) for name, image in images.items()] or [
        ("p", "Nothing to plot.")
    ]
    blocks.append(("h2", "Breakdowns"))
    for dimension in DIMENSIONS:
        values = metrics["breakdowns"].get(dimension, {})
        blocks.append(("h3", f"By {dimension}"))
        rows = [
            [value, *(show(row.get(key)) if row.get(key) is not None else "—" for key, _, show in COLUMNS)]
            for value, row in sorted(values.items())
        ]
        blocks.append(
            ("table", [dimension, *(label for _, label, _ in COLUMNS)], rows)
            if rows
            else ("p", "Nothing in this window.")
        )
    return blocks


def markdown(blocks: Sequence[Block]) -> str:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out: List[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "table":
            out.append("| " + " | ".join(cell(h) for h in block[1]) + " |")
            out.append("|" + "---|" * len(block[1]))
            out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in block[2]]
            out.append("")
        elif kind == "img":
            out += [f"![{block[2]}]({block[1]})", ""]
    return "\n".join(out)


def to_html(blocks: Sequence[Block]) -> str:
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>Backline governance report</title>',
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3}</style></head><body>",
    ]  # fmt: skip
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts = html.escape(block[1]).split("`")
            out.append("<p>" + "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)) + "</p>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2]]
            out.append("</table>")
        elif kind == "img":
            data = base64.b64encode(block[3]).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}"><figcaption>{html.escape(block[2])}</figcaption></figure>'
            )
    return "\n".join(out + ["</body></html>"]) + "\n"


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def write_csvs(metrics: Mapping[str, Any], out: Path) -> List[Path]:
    """metrics.csv (dimension, value, metric, metric_value) and weekly.csv (week, measures...)."""
    rows: List[List[Any]] = [["overall", "all", key, _csv_value(v)] for key, v in overall(metrics).items()]
    for dimension in DIMENSIONS:
        for value, measures in sorted(metrics["breakdowns"].get(dimension, {}).items()):
            rows += [[dimension, value, key, _csv_value(measures.get(key))] for key in FLAT]
    path, weekly = out / "metrics.csv", out / "weekly.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dimension", "value", "metric", "metric_value"])
        writer.writerows(rows)
    with weekly.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["week", *FLAT])
        for week, measures in sorted(metrics["breakdowns"].get("week", {}).items()):
            writer.writerow([week, *(_csv_value(measures.get(key)) for key in FLAT)])
    return [path, weekly]


def write_report(metrics: Mapping[str, Any], cases: Sequence[Any], out: Path, fmt: str, command: str) -> List[Path]:
    """Every file of the report into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    images = plots.all_plots(metrics, verdicts_by_intent(cases))
    blocks = document(metrics, cases, images, command)
    written: List[Path] = []
    if fmt == "md":
        for name, image in images.items():
            (out / name).write_bytes(image["png"])
            written.append(out / name)
        report = out / "report.md"
        report.write_text(markdown(blocks), encoding="utf-8")
    else:
        report = out / "report.html"
        report.write_text(to_html(blocks), encoding="utf-8")
    return [report, *written, *write_csvs(metrics, out)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backline report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", default="30d", help="30d, 12w, 24h or an ISO date (default: %(default)s)")
    parser.add_argument(
        "--until", default=None, help="an ISO date (its end) or datetime, or 24h / 7d ago (default: now)"
    )
    parser.add_argument(
        "--format", choices=("md", "html"), default="md", help="report.md with PNGs, or a standalone report.html"
    )
    parser.add_argument("--out", default=None, help="output folder (default: reports/governance-<today>/)")
    parser.add_argument(
        "--consult-url", default=None, help="consultation store URL (default: $BACKLINE_CONSULT_DB_URL)"
    )
    parser.add_argument(
        "--tracker-url", default=None, help="tracker store URL (default: $BACKLINE_TRACKER_DB_URL / _DB)"
    )
    args = parser.parse_args(argv)
    try:
        since, until = parse_window(args.since, args.until)
    except ValueError as error:
        print(f"backline report: {error}", file=sys.stderr)
        return 2
    out = Path(args.out or f"reports/governance-{utcnow().date().isoformat()}")
    try:
        store, tracker, notes = open_stores(args.consult_url, args.tracker_url)
        for note in notes:
            print(f"note: {note}")
        service = GovernanceService(store, configuration.experts(), tracker=tracker)
        print(f"computing the outcome metrics from {iso(since)} to {iso(until)}")
        metrics = service.metrics(None, since, until)
        cases = service.facts(None, since, until).cases
    except (StoreUnavailable, SQLAlchemyError) as error:
        print(f"backline report: {redact(str(error))[:500]}", file=sys.stderr)
        return 1
    print(f"{metrics['conversations']} conversations, {metrics['consultations']} consultations; writing the report")
    for path in write_report(metrics, cases, out, args.format, command_line("report", argv)):
        print(f"wrote {path}")
    return 0
