"""The checks of escalation.yml and its signals file that a JSON schema cannot express: cross-references
between sections (an intent a trigger, category or follow-up type names has a row), facts entered where
the matrix derives them, reserved names, thresholds in order. Each problem is added to its file's
`YamlSource` with its line; `backline.routing.matrix.load_matrix` raises them together.
"""

from __future__ import annotations

from typing import Dict, Optional

from backline.routing.collect import FIELDS as COLLECT_FIELDS
from backline.routing.matrix_model import EscalationMatrix, ExceptionCategory, IntentRow
from backline.routing.matrix_schema import DERIVED_ROW_KEYS_NOTE
from backline.routing.signals import EXPLICIT_REQUEST, NOT_EXPLICIT_REQUEST
from backline.routing.source import YamlSource


def check_matrix(m: EscalationMatrix, source: YamlSource, signals: Optional[YamlSource] = None) -> None:
    """Consistency checks inside escalation.yml and its signals file (checks against domain.yml and
    experts.yml live in `validate`)."""
    t = m.defaults.thresholds
    if t.low > t.high:
        message = f"defaults.thresholds: low {t.low:.2f} is above high {t.high:.2f}"
        source.add(("defaults", "thresholds", "low"), message)
    if m.currency_rates.get("EUR") != 1.0:
        source.add(("currency_rates",), "currency_rates: EUR must be present with rate 1.0", at_key=True)
    if m.defaults.context_package not in m.context_packages:
        message = f"defaults.context_package: unknown context package {m.defaults.context_package!r}"
        source.add(("defaults", "context_package"), message)
    trigger_intents = {
        ("triggers", "explicit_request", "intents"): m.triggers.explicit_request.intents,
        ("triggers", "no_convergence", "rejection_intents"): m.triggers.no_convergence.rejection_intents,
        ("triggers", "sentiment", "frustration_intents"): m.triggers.sentiment.frustration_intents,
    }
    for keys, intents in trigger_intents.items():
        for i, intent in enumerate(intents):
            if intent not in m.rows:
                source.add(keys + (i,), f"{'.'.join(keys)}: intent {intent!r} has no row in intents")
    _check_hand_back(m, source)
    if signals is not None:
        _check_signals(m, signals)
    for name, category in m.categories.items():
        _check_category(m, source, name, category)
    for intent, row in m.rows.items():
        _check_row(m, source, intent, row)


def _check_category(m: EscalationMatrix, source: YamlSource, name: str, category: ExceptionCategory) -> None:
    keys = ("exception_categories", name)
    if name == EXPLICIT_REQUEST or name.startswith("not_") or name == NOT_EXPLICIT_REQUEST:
        message = f"exception_categories.{name}: reserved name (signals are named explicit_request, not_<name>)"
        source.add(keys, message, at_key=True)
    if not category.intents and not category.has_rule_route:
        message = (
            f"exception_categories.{name}: no route: list intents (classifier route) or give it phrases / "
            f"patterns in the signals file (rule route)"
        )
        source.add(keys, message, at_key=True)
    if category.amount_above is not None and not category.intents:
        message = f"exception_categories.{name}.amount_above: applies to the classifier route, which needs intents"
        source.add(keys + ("amount_above",), message, at_key=True)
    if "unrated_detail" in source.get(keys):
        if category.amount_above is None:
            message = f"exception_categories.{name}.unrated_detail: applies only with amount_above"
            source.add(keys + ("unrated_detail",), message, at_key=True)
        elif category.unrated_detail == category.detail:
            message = (
                f"exception_categories.{name}.unrated_detail: must differ from detail "
                f"{category.detail!r} (the record must tell an unconvertible amount from one over the limit)"
            )
            source.add(keys + ("unrated_detail",), message)
    for i, intent in enumerate(category.intents):
        where = keys + ("intents", i)
        if intent not in m.rows:
            source.add(where, f"exception category {name!r}: intent {intent!r} has no row in intents")


def _check_row(m: EscalationMatrix, source: YamlSource, intent: str, row: IntentRow) -> None:
    keys = ("intents", intent)
    own = source.get(keys).get("thresholds")
    if own is not None and row.thresholds.low > row.thresholds.high:
        where = "low" if "low" in own else "high"
        source.add(
            keys + ("thresholds", where),
            f"intents.{intent}.thresholds: low {row.thresholds.low:.2f} is above high {row.thresholds.high:.2f}",
        )
    if row.context_package not in m.context_packages:
        source.add(keys + ("context_package",), f"intents.{intent}: unknown context package {row.context_package!r}")
    entered = source.get(keys)
    if "exceptions" in entered:
        named = ", ".join(row.exceptions) or "none"
        message = (
            f"intents.{intent}.exceptions: {DERIVED_ROW_KEYS_NOTE} (here: {named}); remove it, and "
            f"add the intent to a category's `intents` to make it escalate"
        )
        source.add(keys + ("exceptions",), message, at_key=True)
    if row.derived_from:
        for key in ("reason", "detail"):
            if key in entered:
                message = (
                    f"intents.{intent}.{key}: derived from {row.derived_from} ({row.reason}"
                    f"{' / ' + row.detail if row.detail else ''}); remove it (one fact, one place)"
                )
                source.add(keys + (key,), message, at_key=True)
    if row.ai_may == "collect_then_route" and not row.collect:
        message = f"intents.{intent}: ai_may collect_then_route needs `collect` (the fields to collect: {', '.join(COLLECT_FIELDS)})"
        source.add(keys + ("ai_may",), message)
    if row.collect and row.ai_may != "collect_then_route":
        message = f"intents.{intent}.collect: only applies to ai_may collect_then_route (this row is {row.ai_may!r})"
        source.add(keys + ("collect",), message, at_key=True)
    if row.ai_may == "answer" and (row.reason or row.detail):
        field_name = "reason" if row.reason else "detail"
        message = f"intents.{intent}: {field_name} only applies to rows that route (ai_may is 'answer')"
        source.add(keys + (field_name,), message)


def _check_hand_back(m: EscalationMatrix, source: YamlSource) -> None:
    """Every intent the hand-back rules name has a row; ``while_waiting.answers`` is a follow-up type."""
    h = m.hand_back
    for i, intent in enumerate(h.always_allowed):
        if intent not in m.rows:
            source.add(
                ("hand_back", "always_allowed", i), f"hand_back.always_allowed: intent {intent!r} has no row in intents"
            )
    for name, followup in h.followups.items():
        for i, intent in enumerate(followup.intents):
            if intent not in m.rows:
                where = ("hand_back", "followups", name, "intents", i)
                source.add(where, f"hand_back.followups.{name}: intent {intent!r} has no row in intents")
    owner: Dict[str, str] = {name.replace("_", " "): name for name in h.followups}
    for name, followup in h.followups.items():
        for i, alias in enumerate(followup.aliases):
            if owner.get(alias, name) != name:
                message = f"hand_back.followups.{name}.aliases: {alias!r} already means {owner[alias]!r}"
                source.add(("hand_back", "followups", name, "aliases", i), message)
            owner.setdefault(alias, name)
    if h.while_waiting is not None and h.while_waiting not in h.followups:
        known = ", ".join(h.followups) or "none"
        message = f"while_waiting.answers: unknown follow-up type {h.while_waiting!r} (hand_back.followups: {known})"
        source.add(("while_waiting", "answers"), message)


def _check_signals(m: EscalationMatrix, signals: YamlSource) -> None:
    """Each signal is the explicit-request trigger or an exception category; only the explicit request
    has not-phrases; a phrase is not also a not-phrase."""
    known = (EXPLICIT_REQUEST, *m.categories)
    for name, entry in (signals.data or {}).items():
        if name == "version":
            continue
        if name not in known:
            message = (
                f"{name}: unknown signal (signals are explicit_request and the exception categories of "
                f"{m.path}: {', '.join(m.categories)})"
            )
            signals.add((name,), message, at_key=True)
        elif name != EXPLICIT_REQUEST and "not_phrases" in (entry or {}):
            signals.add(
                (name, "not_phrases"), f"{name}.not_phrases: only explicit_request has not-phrases", at_key=True
            )
    explicit = m.triggers.explicit_request
    vetoed = {p.lower() for p in explicit.not_phrases}
    for i, phrase in enumerate(explicit.phrases):
        if phrase.lower() in vetoed:
            signals.add(
                (EXPLICIT_REQUEST, "phrases", i), f"explicit_request.phrases[{i}]: {phrase!r} is also in not_phrases"
            )
