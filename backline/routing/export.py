"""Export the routing model for governance review: Markdown, CSV and JSON, deterministically ordered."""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from backline.routing.directory import ExpertDirectory, load_experts
from backline.routing.matrix import EscalationMatrix, ExceptionCategory, IntentRow, load_matrix
from backline.routing.signals import TokenPattern
from backline.routing.source import ConfigError, PathLike

STEM = "routing-model"
CSV_COLUMNS = (
    "intent",
    "ai_may",
    "high",
    "low",
    "queue",
    "priority",
    "sla_minutes",
    "context_package",
    "exceptions",
    "reason",
    "detail",
    "collect",
    "route",
    "description",
)
MD_COLUMNS = (
    "intent",
    "AI may",
    "high",
    "low",
    "queue",
    "priority",
    "SLA (min)",
    "context package",
    "exceptions",
    "route reason",
    "collect",
    "route",
    "description",
)
CATEGORY_COLUMNS = (
    "category",
    "label",
    "reason",
    "detail",
    "queue",
    "priority",
    "classifier route",
    "rule route",
    "description",
)
FOLLOWUP_COLUMNS = ("follow-up type", "label", "intents")
TEAM_COLUMNS = ("queue", "team (what customers hear)", "SLA (min)", "backup")
SIGNAL_COLUMNS = ("signal", "phrases", "patterns", "not phrases")


def describe_route(row: IntentRow) -> str:
    """What the assistant does with a confident message of the row (the high tier), in words."""
    if row.ai_may == "answer":
        return "the AI answers alone"
    if row.ai_may == "collect_then_route":
        return (
            f"form {row.form} collects {', '.join(row.collect)}, then a consultation to {row.queue} "
            f"({row.route_reason} / {row.detail or 'collected'})"
        )
    if row.ai_may == "draft":
        return f"the AI drafts, {row.queue} reviews (consult, {row.route_reason} / draft_review)"
    return f"handoff to {row.queue} ({row.route_reason} / {row.detail or 'ai_never'})"


def _rows(matrix: EscalationMatrix) -> List[IntentRow]:
    return [matrix.rows[name] for name in sorted(matrix.rows)]


def _categories(matrix: EscalationMatrix) -> List[ExceptionCategory]:
    return [matrix.categories[name] for name in sorted(matrix.categories)]


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for predicate, operand in value.items():
            if predicate == "IN" and isinstance(operand, list):
                parts.append("(" + "|".join(str(v) for v in operand) + ")")
            elif predicate == "NOT_IN" and isinstance(operand, list):
                parts.append("not(" + "|".join(str(v) for v in operand) + ")")
            elif predicate == "REGEX":
                parts.append(f"/{operand}/")
            else:
                parts.append(f"{predicate} {operand}")
        return " ".join(parts)
    return str(value)


def describe_pattern(pattern: TokenPattern) -> str:
    """A spaCy token pattern in one readable line: ``(talk|speak) me? (to|with)+ (human|person)``."""
    words = []
    for token in pattern:
        op = token.get("OP", "")
        attrs = {k: v for k, v in token.items() if k != "OP"}
        if not attrs:
            text = "<any>"
        else:
            text = " ".join(
                _describe_value(v) if k in ("LOWER", "TEXT", "ORTH", "NORM") else f"<{k}={_describe_value(v)}>"
                for k, v in attrs.items()
            )
            if len(attrs) > 1:
                text = f"[{text}]"
        words.append(f"{text}{op}")
    return " ".join(words)


def describe_classifier_route(category: ExceptionCategory) -> str:
    if not category.intents:
        return "-"
    text = "intents: " + ", ".join(category.intents)
    if category.amount_above is not None:
        text += f"; amount > {category.amount_above.value:g} {category.amount_above.currency}"
        if category.unrated_detail:
            text += f", or in a currency without a rate ({category.unrated_detail})"
    return text


def describe_details(category: ExceptionCategory) -> str:
    """The ``escalation_detail`` codes the category sets: ``refund_over_limit; unrated_currency``."""
    return "; ".join(category.details)


def describe_rule_route(category: ExceptionCategory) -> str:
    parts = []
    if category.phrases:
        parts.append(f"{len(category.phrases)} phrases")
    if category.patterns:
        parts.append(f"{len(category.patterns)} patterns")
    return ", ".join(parts) + " (see Signals)" if parts else "-"


def _teams(directory: Optional[ExpertDirectory]) -> List[Dict[str, Any]]:
    if directory is None:
        return []
    return [
        {"queue": q.name, "team": q.team, "sla_minutes": q.sla_minutes, "backup": q.backup}
        for q in directory.queues.values()
    ]


def to_json(matrix: EscalationMatrix, directory: Optional[ExpertDirectory] = None) -> Dict[str, Any]:
    """The routing model as plain JSON data (with the queues' team names when ``directory`` is given)."""
    t = matrix.triggers
    d = matrix.defaults
    h = matrix.hand_back
    return {
        "source": Path(matrix.path).name,
        "signals_source": Path(matrix.signals_path).name if matrix.signals_path else None,
        "version": matrix.version,
        "defaults": {
            "ai_may": d.ai_may,
            "thresholds": {"high": d.thresholds.high, "low": d.thresholds.low, "basis": d.thresholds.basis},
            "queue": d.queue,
            "sla_minutes": d.sla_minutes,
            "priority": d.priority,
            "context_package": d.context_package,
        },
        "hand_back": {
            "expires_after_minutes": h.expires_after_minutes,
            "always_allowed": list(h.always_allowed),
            "followups": [{"name": f.name, "label": f.label, "intents": list(f.intents)} for f in h.followups.values()],
        },
        "while_waiting": {"answers": h.while_waiting, "intents": list(h.informational)},
        "teams": _teams(directory),
        "currency_rates": dict(sorted(matrix.currency_rates.items())),
        "triggers": {
            "explicit_request": {
                "intents": list(t.explicit_request.intents),
                "min_confidence": t.explicit_request.min_confidence,
                "phrases": list(t.explicit_request.phrases),
                "patterns": [list(p) for p in t.explicit_request.patterns],
                "not_phrases": list(t.explicit_request.not_phrases),
            },
            "no_convergence": {
                "same_intent_turns": t.no_convergence.same_intent_turns,
                "overlap": t.no_convergence.overlap,
                "rejection_intents": list(t.no_convergence.rejection_intents),
            },
            "sentiment": {
                "negative_below": t.sentiment.negative_below,
                "frustration_intents": list(t.sentiment.frustration_intents),
                "frustration_repeats": t.sentiment.frustration_repeats,
            },
            "high_value": {
                "tiers": list(t.high_value.tiers),
                "amount_above": asdict(t.high_value.amount_above) if t.high_value.amount_above else None,
                "limit_eur": t.high_value.limit_eur,
            },
        },
        "context_packages": {name: list(fields) for name, fields in sorted(matrix.context_packages.items())},
        "signals": [
            {
                "name": spec.name,
                "phrases": list(spec.phrases),
                "patterns": [list(p) for p in spec.patterns],
                "not_phrases": list(spec.not_phrases),
            }
            for spec in matrix.signal_specs()
        ],
        "categories": [
            {
                "name": c.name,
                "label": c.label,
                "reason": c.reason,
                "detail": c.detail,
                "queue": c.queue,
                "priority": c.priority,
                "intents": list(c.intents),
                "amount_above": asdict(c.amount_above) if c.amount_above else None,
                "limit_eur": c.limit_eur,
                "unrated_detail": c.unrated_detail,
                "phrases": list(c.phrases),
                "patterns": [list(p) for p in c.patterns],
                "description": c.description,
            }
            for c in _categories(matrix)
        ],
        "rows": [
            {
                "intent": r.intent,
                "ai_may": r.ai_may,
                "thresholds": {"high": r.thresholds.high, "low": r.thresholds.low},
                "queue": r.queue,
                "priority": r.priority,
                "sla_minutes": r.sla_minutes,
                "context_package": r.context_package,
                "context_fields": list(matrix.context_packages[r.context_package]),
                "exceptions": list(r.exceptions),
                "reason": r.route_reason,
                "detail": r.detail,
                "reason_from": r.derived_from,
                "collect": list(r.collect),
                "form": r.form,
                "route": describe_route(r),
                "description": r.description,
            }
            for r in _rows(matrix)
        ],
    }


def to_csv(matrix: EscalationMatrix) -> str:
    """One line per intent; exceptions are separated by ``;``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in _rows(matrix):
        writer.writerow(
            [
                r.intent,
                r.ai_may,
                f"{r.thresholds.high:.2f}",
                f"{r.thresholds.low:.2f}",
                r.queue,
                r.priority,
                r.sla_minutes,
                r.context_package,
                ";".join(r.exceptions),
                r.route_reason or "",
                r.detail or "",
                ";".join(r.collect),
                describe_route(r),
                r.description,
            ]
        )
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: List[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def to_markdown(matrix: EscalationMatrix, directory: Optional[ExpertDirectory] = None) -> str:
    d = matrix.defaults
    h = matrix.hand_back
    t = matrix.triggers
    rates = sorted(matrix.currency_rates.items())
    rejection = ", ".join(t.no_convergence.rejection_intents) or "none"
    big = t.high_value.amount_above
    lines = [
        "# Routing model",
        "",
        f"Generated from `{Path(matrix.path).name}` (version {matrix.version})"
        + (f" and `{Path(matrix.signals_path).name}`" if matrix.signals_path else "")
        + " by `backline export-matrix`; do not edit by hand. Row exceptions, and the route reason of rows"
        " marked *, are derived (see the row's `reason_from` in the JSON).",
        "",
        "## Defaults",
        "",
        f"- thresholds: high {d.thresholds.high:.2f}, low {d.thresholds.low:.2f}"
        + (f"; basis: {_cell(d.thresholds.basis)}" if d.thresholds.basis else ""),
        f"- AI may: {d.ai_may}; queue: {d.queue}; priority: {d.priority}; SLA: {d.sla_minutes} min;"
        f" context package: {d.context_package}",
        f"- hand-back: the follow-ups an expert allows (and the AI's leave to cite the recorded resolution) lapse"
        f" after {matrix.hand_back_minutes} min or with the session",
        "- currency rates to EUR: "
        + ", ".join(f"{code} {rate:g}" for code, rate in rates)
        + (
            "; an amount in any other currency is never compared with a limit: on the intents of a category"
            " with one it escalates (fail closed)"
            if any(c.amount_above is not None and c.unrated_detail for c in matrix.categories.values())
            else ""
        ),
        "",
        "## Triggers",
        "",
        f"- explicit request: intents {', '.join(t.explicit_request.intents)} at confidence >= "
        f"{t.explicit_request.min_confidence:.2f}, or the `explicit_request` signal (see Signals); "
        "a `not_explicit_request` phrase alone vetoes the intent",
        f"- no convergence: same intent for {t.no_convergence.same_intent_turns} turns with Q/A token overlap "
        f">= {t.no_convergence.overlap:.0%}, or a rejection ({rejection})",
        f"- negative sentiment: polarity at or below {t.sentiment.negative_below:g}, or {t.sentiment.frustration_repeats} x "
        f"{', '.join(t.sentiment.frustration_intents) or 'frustration'}",
        f"- high value: customer tiers {', '.join(t.high_value.tiers) or 'none'}"
        + (f"; amounts above {big.value:g} {big.currency}" if big else ""),
        "",
        "## Intents",
        "",
    ]
    lines += _table(
        MD_COLUMNS,
        [
            (
                r.intent,
                r.ai_may,
                f"{r.thresholds.high:.2f}",
                f"{r.thresholds.low:.2f}",
                r.queue,
                r.priority,
                r.sla_minutes,
                r.context_package,
                ", ".join(r.exceptions) or "-",
                (r.route_reason or "-") + (" *" if r.derived_from else ""),
                ", ".join(r.collect) or "-",
                describe_route(r),
                r.description,
            )
            for r in _rows(matrix)
        ],
    )
    lines += [
        "",
        "## Exception categories",
        "",
        "These always escalate, whatever the confidence: by the classifier route (the intent, and the amount"
        " when a limit is set; an amount in a currency without a rate escalates with the second detail) or by"
        " the rule route (the category's signal, in any message). The most urgent wins.",
        "",
    ]
    lines += _table(
        CATEGORY_COLUMNS,
        [
            (
                c.name,
                c.label,
                c.reason,
                describe_details(c),
                c.queue,
                c.priority,
                describe_classifier_route(c),
                describe_rule_route(c),
                c.description,
            )
            for c in _categories(matrix)
        ],
    )
    lines += [
        "",
        "## Signals",
        "",
        "Found by the NLU signal detector: phrases on whole tokens, case-insensitive; patterns are spaCy"
        " token patterns on the lower-cased message; a match overlapping a not-phrase does not count.",
        "",
    ]
    lines += _table(
        SIGNAL_COLUMNS,
        [
            (
                spec.name,
                "; ".join(spec.phrases) or "-",
                "<br>".join(describe_pattern(p) for p in spec.patterns) or "-",
                "; ".join(spec.not_phrases) or "-",
            )
            for spec in matrix.signal_specs()
        ],
    )
    lines += [
        "",
        "## Hand-back and waiting",
        "",
        f"An expert who hands a conversation back picks follow-up types; the AI then handles only their intents"
        f" and {', '.join(h.always_allowed) or 'nothing else'}, for {h.expires_after_minutes} min or until the"
        f" session ends. While a handoff waits for a person, the AI still answers"
        f" {h.while_waiting or 'nothing'} questions ({', '.join(h.informational) or '-'}) on `answer` rows.",
        "",
    ]
    lines += _table(FOLLOWUP_COLUMNS, [(f.name, f.label, ", ".join(f.intents)) for f in h.followups.values()])
    if directory is not None:
        lines += ["", "## Teams", ""]
        lines += _table(
            TEAM_COLUMNS, [(t["queue"], t["team"], t["sla_minutes"], t["backup"] or "-") for t in _teams(directory)]
        )
    lines += ["", "## Context packages", ""]
    packages = sorted(matrix.context_packages.items())
    lines += _table(("package", "fields"), [(name, ", ".join(fields)) for name, fields in packages])
    return "\n".join(lines) + "\n"


def export(matrix: EscalationMatrix, out_dir: PathLike, directory: Optional[ExpertDirectory] = None) -> List[Path]:
    """Write routing-model.md, .csv and .json into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contents = {
        out / f"{STEM}.md": to_markdown(matrix, directory),
        out / f"{STEM}.csv": to_csv(matrix),
        out / f"{STEM}.json": json.dumps(to_json(matrix, directory), indent=2, ensure_ascii=False) + "\n",
    }
    for path, text in contents.items():
        path.write_text(text, encoding="utf-8", newline="")
    return list(contents)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="backline export-matrix", description=__doc__)
    parser.add_argument("--matrix", default="escalation.yml", help="escalation matrix (default: %(default)s)")
    parser.add_argument(
        "--experts",
        default="experts.yml",
        help="expert directory, for the queues' team names (default: %(default)s; '' to leave out)",
    )
    parser.add_argument("--out", default="docs/routing", help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
        directory = load_experts(args.experts) if args.experts else None
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for path in export(matrix, args.out, directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
