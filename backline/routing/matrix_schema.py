"""The escalation matrix's vocabulary and JSON schemas (escalation.yml, signals.yml).

What a matrix may say: the ``ai_may`` values, priorities, reasons, context fields, and the shape
of each section. `backline.routing.matrix` checks files against these schemas first (every
problem with its line), then the cross-references the schemas cannot express.
"""

from __future__ import annotations

from typing import Any, Dict

from backline.routing.collect import FIELDS as COLLECT_FIELDS

AI_MAY = ("answer", "collect_then_route", "draft", "never")
PRIORITIES = ("low", "normal", "high", "urgent")
"""Least to most urgent."""
DEFAULT_MIN_CONFIDENCE = 0.5
REASONS = (
    "explicit_request",
    "sensitive_topic",
    "no_convergence",
    "low_confidence",
    "medium_confidence",
    "negative_sentiment",
    "high_value",
    "policy_action",
)
UNRATED_CURRENCY = "unrated_currency"
"""Detail of an exception category with a money limit when the amount's currency has no rate in
``currency_rates``: the amount cannot be compared with the limit, so it escalates (fail closed).
A category may name another code with ``unrated_detail``."""
CONTEXT_FIELDS = (
    "brief",
    "sentiment",
    "account_snapshot",
    "ai_attempts",
    "documents_used",
    "confidence",
    "ai_draft",
    "reasons",
    "next_step",
    "transcript",
)

DERIVED_ROW_KEYS_NOTE = "no longer entered: derived from exception_categories.<name>.intents"
"""Rows may not list ``exceptions`` any more; the loader reports one that does with this note."""
_NAME = r"^[a-z][a-z0-9_]*$"
_CURRENCY = r"^[A-Z]{3}$"
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_INTENT_LIST = {"type": "array", "items": {"type": "string", "pattern": _NAME}, "uniqueItems": True}
_MONEY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["value", "currency"],
    "properties": {
        "value": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": _CURRENCY},
    },
}
_THRESHOLDS = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"high": _UNIT, "low": _UNIT, "basis": {"type": "string"}},
}
_PHRASES = {"type": "array", "items": {"type": "string", "pattern": r"\S"}, "uniqueItems": True}
_PATTERNS = {"type": "array"}  # each item is checked by signals.check_token_pattern, with its own messages
_SIGNAL = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"phrases": _PHRASES, "patterns": _PATTERNS, "not_phrases": _PHRASES},
}

SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "version",
        "defaults",
        "currency_rates",
        "triggers",
        "context_packages",
        "exception_categories",
        "intents",
    ],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "signals": {"type": "string", "pattern": r"\S"},
        "hand_back": {
            "type": "object",
            "additionalProperties": False,
            "required": ["expires_after_minutes", "always_allowed", "followups"],
            "properties": {
                "expires_after_minutes": {"type": "integer", "minimum": 1},
                "always_allowed": _INTENT_LIST,
                "followups": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": _NAME},
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["label", "intents"],
                        "properties": {
                            "label": {"type": "string", "minLength": 1, "pattern": r"\S"},
                            "intents": {**_INTENT_LIST, "minItems": 1},
                            "aliases": {
                                "type": "array",
                                "uniqueItems": True,
                                "items": {"type": "string", "pattern": r"^[a-z][a-z ]*[a-z]$"},
                            },
                        },
                    },
                },
            },
        },
        "while_waiting": {
            "type": "object",
            "additionalProperties": False,
            "required": ["answers"],
            "properties": {"answers": {"type": "string", "pattern": _NAME}},
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "required": ["thresholds", "ai_may", "queue", "sla_minutes", "priority", "context_package"],
            "properties": {
                "thresholds": {**_THRESHOLDS, "required": ["high", "low"]},
                "ai_may": {"enum": list(AI_MAY)},
                "queue": {"type": "string", "pattern": _NAME},
                "sla_minutes": {"type": "integer", "minimum": 1},
                "priority": {"enum": list(PRIORITIES)},
                "context_package": {"type": "string"},
            },
        },
        "currency_rates": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _CURRENCY},
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
        },
        "triggers": {
            "type": "object",
            "x-key-kind": "trigger",
            "additionalProperties": False,
            "required": ["explicit_request", "no_convergence", "sentiment", "high_value"],
            "properties": {
                "explicit_request": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["intents"],
                    "properties": {
                        "intents": {**_INTENT_LIST, "minItems": 1},
                        "min_confidence": _UNIT,
                    },
                },
                "no_convergence": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["same_intent_turns", "overlap", "rejection_intents"],
                    "properties": {
                        # The current message is not answered yet: with fewer than 3 turns the window
                        # holds no two answered turns to compare, and the trigger could never fire.
                        "same_intent_turns": {"type": "integer", "minimum": 3},
                        "overlap": _UNIT,
                        "rejection_intents": _INTENT_LIST,
                    },
                },
                "sentiment": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["negative_below", "frustration_intents", "frustration_repeats"],
                    "properties": {
                        "negative_below": {"type": "number", "minimum": -1, "maximum": 1},
                        "frustration_intents": _INTENT_LIST,
                        "frustration_repeats": {"type": "integer", "minimum": 1},
                    },
                },
                "high_value": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["tiers"],
                    "properties": {
                        "tiers": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
                        "amount_above": _MONEY,
                    },
                },
            },
        },
        "context_packages": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": list(CONTEXT_FIELDS)},
            },
        },
        "exception_categories": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["reason", "detail", "queue", "priority", "intents", "description"],
                "properties": {
                    "label": {"type": "string", "minLength": 1, "pattern": r"\S"},
                    "reason": {"enum": list(REASONS)},
                    "detail": {"type": "string", "pattern": _NAME},
                    "queue": {"type": "string", "pattern": _NAME},
                    "priority": {"enum": list(PRIORITIES)},
                    "intents": _INTENT_LIST,
                    "amount_above": _MONEY,
                    "unrated_detail": {"type": "string", "pattern": _NAME},
                    "description": {"type": "string", "minLength": 1},
                },
            },
        },
        "intents": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ai_may", "queue", "description"],
                "properties": {
                    "ai_may": {"enum": list(AI_MAY)},
                    "thresholds": _THRESHOLDS,
                    "queue": {"type": "string", "pattern": _NAME},
                    "context_package": {"type": "string"},
                    "sla_minutes": {"type": "integer", "minimum": 1},
                    "priority": {"enum": list(PRIORITIES)},
                    "exceptions": {"description": DERIVED_ROW_KEYS_NOTE},
                    "collect": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": list(COLLECT_FIELDS)},
                        "uniqueItems": True,
                    },
                    "reason": {"enum": list(REASONS)},
                    "detail": {"type": "string", "pattern": _NAME},
                    "description": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


SIGNALS_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "x-key-kind": "signal",
    "propertyNames": {"pattern": _NAME},
    "properties": {"version": {"type": "integer", "minimum": 1}},
    "additionalProperties": _SIGNAL,
}
"""signals.yml: ``version`` and one entry per signal (``explicit_request`` or an exception category)."""
