"""The routing model in words, for the exports: what a row's confident message leads to, a token
pattern, a category's routes; rows, categories and teams in export order."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from backline.routing.directory import ExpertDirectory
from backline.routing.matrix import EscalationMatrix, ExceptionCategory, IntentRow
from backline.routing.signals import TokenPattern


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


def rows_in_order(matrix: EscalationMatrix) -> List[IntentRow]:
    return [matrix.rows[name] for name in sorted(matrix.rows)]


def categories_in_order(matrix: EscalationMatrix) -> List[ExceptionCategory]:
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


def teams(directory: Optional[ExpertDirectory]) -> List[Dict[str, Any]]:
    if directory is None:
        return []
    return [
        {"queue": q.name, "team": q.team, "sla_minutes": q.sla_minutes, "backup": q.backup}
        for q in directory.queues.values()
    ]
