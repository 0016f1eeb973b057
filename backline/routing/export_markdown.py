"""The routing model as Markdown (docs/routing/routing-model.md): defaults, triggers, intents,
exception categories, signals, hand-back rules, teams and context packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence

from backline.routing.directory import ExpertDirectory
from backline.routing.export_words import (
    categories_in_order,
    describe_classifier_route,
    describe_details,
    describe_pattern,
    describe_route,
    describe_rule_route,
    rows_in_order,
    teams,
)
from backline.routing.matrix import EscalationMatrix

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
            for r in rows_in_order(matrix)
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
            for c in categories_in_order(matrix)
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
            TEAM_COLUMNS, [(t["queue"], t["team"], t["sla_minutes"], t["backup"] or "-") for t in teams(directory)]
        )
    lines += ["", "## Context packages", ""]
    packages = sorted(matrix.context_packages.items())
    lines += _table(("package", "fields"), [(name, ", ".join(fields)) for name, fields in packages])
    return "\n".join(lines) + "\n"
