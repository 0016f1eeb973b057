"""The routing decision's inputs and output: `Parse` (the message as NLU understood it), `Turn` and
`Conversation` (what came before, the slots), `Decision` (what to do and why), and the small helpers
they share. Pure Python; the logic that turns inputs into a decision is `backline.routing.engine`."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from backline.routing.collect import form_name
from backline.routing.matrix import base_intent
from backline.routing.signals import EXPLICIT_REQUEST, Signal

SILENT = "silent"
HANDOFF = "handoff"
CONSULT = "consult"
CLARIFY = "clarify"
ANSWER = "answer"
COLLECT = "collect"
ANSWER_WAITING = "answer_waiting"
TELL_RESOLUTION = "tell_resolution"
STOP_COLLECT = "stop_collect"
MAPPINGS = (dict, Mapping)
"""What parse data's mappings are checked against: `dict` first, the common case, which `isinstance`
settles without the ABC machinery of `Mapping` (every user turn reads the parse of each earlier one)."""
ACTIONS = (SILENT, HANDOFF, CONSULT, CLARIFY, ANSWER, COLLECT, ANSWER_WAITING, TELL_RESOLUTION, STOP_COLLECT)

HUMAN = "human"
CONSULTING = "consulting"
AI = "ai"
HANDED_BACK = "handed_back"
MODES = (AI, CONSULTING, HUMAN, HANDED_BACK)
_MODE_FOR = {SILENT: HUMAN, HANDOFF: HUMAN, CONSULT: CONSULTING}

FULL_CONTEXT = "full"
"""Context package for low-confidence and no-convergence escalations (when the matrix defines it)."""

TRIGGER_KEYS = (
    EXPLICIT_REQUEST,
    "sensitive_topic",
    "no_convergence",
    "repeated_frustration",
    "negative_sentiment",
    "high_value",
    "outside_handback",
)
"""Evidence keys that are triggers or modifiers that fired (`Decision.triggers`)."""

_WORD = re.compile(r"\w+")


# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parse:
    """The latest user message as NLU understood it.

    ``ranking``: (intent, confidence) pairs, best first; ``entities``: Rasa-style dicts with
    ``entity`` and ``value`` (``amount`` / ``currency`` are read); ``sentiment``: compound
    polarity in [-1, 1] or None; ``signals``: what the rule-based signal detector found.
    """

    text: Optional[str] = ""
    intent: Optional[str] = None
    confidence: Optional[float] = 0.0
    ranking: Tuple[Tuple[str, float], ...] = ()
    entities: Tuple[Mapping[str, Any], ...] = ()
    sentiment: Optional[float] = None
    signals: Tuple[Signal, ...] = ()
    # A retrieval intent's confidence in its pick (`response_selector`'s); `confidence` is then the
    # intent's confidence times this one: the chance that both the intent and the answer are right.
    answer_confidence: Optional[float] = None
    intent_confidence: Optional[float] = None
    # The pick's lead over the runner-up answer (evidence; at the high tier it is at least
    # 2 x answer_confidence - 1, so the product above already demands a clear pick).
    answer_margin: Optional[float] = None

    @classmethod
    def from_parse_data(cls, data: Mapping[str, Any], text: Optional[str] = None) -> "Parse":
        """From Rasa-style parse data (``intent``, ``intent_ranking``, ``entities``, ``sentiment``
        as a number or ``{"compound": ...}``, ``signals`` as `Signal.as_dict()` dicts). A retrieval
        intent's sub-intent comes from ``response_selector`` (``product_question/warranty``), and its
        confidence is the intent's times the selector's (a confident intent with an unsure pick of
        the answer is not a confident answer)."""
        data = data or {}
        intent_data = data.get("intent") or {}
        name = intent_data.get("name") if isinstance(intent_data, MAPPINGS) else None
        base = name.split("/", 1)[0] if isinstance(name, str) else ""
        selector = (data.get("response_selector") or {}).get(base) or {}
        response = (selector.get("response") or {}) if isinstance(selector, MAPPINGS) else {}
        key = response.get("intent_response_key") if isinstance(response, MAPPINGS) else None
        if key and name and "/" not in name:
            name = key if key.startswith(f"{name}/") else f"{name}/{key}"
        intent_confidence = intent_data.get("confidence") if isinstance(intent_data, MAPPINGS) else None
        answer_confidence = response.get("confidence") if key and isinstance(response, MAPPINGS) else None
        confidence = intent_confidence
        margin: Optional[float] = None
        if _is_number(answer_confidence) and _is_number(intent_confidence):
            confidence = _unit(intent_confidence) * _unit(answer_confidence)
            margin = _margin(selector.get("ranking"), _unit(answer_confidence))
        else:
            answer_confidence = None
        ranking = tuple(
            (str(item.get("name")), _unit(item.get("confidence")))
            for item in data.get("intent_ranking") or ()
            if isinstance(item, MAPPINGS) and item.get("name")
        )
        sentiment = data.get("sentiment")
        if isinstance(sentiment, MAPPINGS):
            sentiment = sentiment.get("compound")
        signals = tuple(
            s if isinstance(s, Signal) else Signal.from_dict(dict(s))
            for s in data.get("signals") or ()
            if isinstance(s, (Signal, *MAPPINGS))
        )
        return cls(
            text=text if text is not None else data.get("text") or "",
            intent=name,
            confidence=confidence,
            answer_confidence=_unit(answer_confidence) if answer_confidence is not None else None,
            intent_confidence=intent_confidence if answer_confidence is not None else None,
            answer_margin=margin,
            ranking=ranking,
            entities=tuple(e for e in data.get("entities") or () if isinstance(e, MAPPINGS)),
            sentiment=sentiment,
            signals=signals,
        )


@dataclass(frozen=True)
class Turn:
    """An earlier user message and what the bot said after it (its texts joined; "" if nothing)."""

    text: Optional[str] = ""
    intent: Optional[str] = None
    confidence: Optional[float] = None
    answer: Optional[str] = ""
    sentiment: Optional[float] = None
    signals: Tuple[Signal, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """Slots and earlier turns (oldest first, NOT including the current message).

    ``active_loop``: the active form, if any; while a form collects details, a medium or
    low confidence reply is left to the form (it validates and re-asks) instead of escalating.
    ``allowed_intents``: after a hand-back, the intents the expert left to the AI (None: any).
    ``human_joined``: in human mode, whether a person has joined (None: unknown, treated as joined:
    the AI stays silent). ``resolution``: the last case's recorded outcome (the ``case_resolution``
    slot: intent, outcome, text, by, at ...). ``now``: the time of the message (for expiries).
    ``handback_this_session``: whether the hand-back happened in the current session (False: the
    limits lapsed with the session; None: unknown).
    """

    handoff_mode: Optional[str] = AI
    customer_tier: Optional[str] = None
    amount: Optional[Any] = None
    currency: Optional[str] = None
    history: Tuple[Turn, ...] = ()
    active_loop: Optional[str] = None
    allowed_intents: Optional[FrozenSet[str]] = None
    human_joined: Optional[bool] = None
    resolution: Optional[Mapping[str, Any]] = None
    now: Optional[dt.datetime] = None
    slots: Mapping[str, Any] = field(default_factory=dict)
    handback_this_session: Optional[bool] = None


# --- output -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What to do with the message, and why.

    ``action``: silent | handoff | consult | clarify | answer (``answer``: the ordinary
    policies decide). ``mode``: the ``handoff_mode`` after the decision (human for silent /
    handoff, consulting for consult, unchanged otherwise). ``reason`` / ``detail``: the
    contract's ``escalation_reason`` / ``escalation_detail`` codes (None when not escalating).
    ``row``: the matrix row of the intent (None when the matrix has none and defaults applied).
    """

    action: str
    mode: str
    reason: Optional[str]
    detail: Optional[str]
    tier: Optional[str]
    intent: Optional[str]
    confidence: float
    thresholds: Tuple[float, float]
    queue: str
    priority: str
    sla_minutes: int
    context_package: str
    context_fields: Tuple[str, ...]
    row: Optional[str]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    modifiers: Tuple[str, ...] = ()

    @property
    def escalates(self) -> bool:
        return self.action in (HANDOFF, CONSULT)

    @property
    def form(self) -> Optional[str]:
        """The form to run for a ``collect`` decision."""
        return form_name(self.row) if self.action == COLLECT and self.row else None

    @property
    def triggers(self) -> Tuple[str, ...]:
        """Triggers and modifiers that fired (the deciding one and any it outranked)."""
        return tuple(key for key in TRIGGER_KEYS if key in self.evidence)

    def slot_updates(self) -> Dict[str, Any]:
        """The contract slots to set: for handoff / consult only (empty otherwise)."""
        if not self.escalates:
            return {}
        return {"handoff_mode": self.mode, "escalation_reason": self.reason, "escalation_detail": self.detail}

    def as_record(self) -> Dict[str, Any]:
        """Everything, as JSON-serialisable data: the audit record of the decision."""
        return {
            "action": self.action,
            "mode": self.mode,
            "reason": self.reason,
            "detail": self.detail,
            "tier": self.tier,
            "intent": self.intent,
            "confidence": self.confidence,
            "thresholds": {"high": self.thresholds[0], "low": self.thresholds[1]},
            "queue": self.queue,
            "priority": self.priority,
            "sla_minutes": self.sla_minutes,
            "context_package": self.context_package,
            "context_fields": list(self.context_fields),
            "row": self.row,
            "triggers": list(self.triggers),
            "modifiers": list(self.modifiers),
            "evidence": _jsonable(self.evidence),
        }


# --- helpers ----------------------------------------------------------------------------


def _margin(ranking: Any, top: float) -> float:
    """The pick's confidence minus the runner-up's in the selector's ranking (the pick's own when alone)."""
    others = sorted(
        (_unit(item.get("confidence")) for item in ranking or () if isinstance(item, Mapping)), reverse=True
    )
    return round(top - (others[1] if len(others) > 1 else 0.0), 6)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _unit(value: Any) -> float:
    """A confidence in [0, 1]; None, NaN, infinities and junk count as 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(number) or math.isinf(number):
        return 0.0
    return min(max(number, 0.0), 1.0)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _polarity(value: Any) -> Optional[float]:
    number = _number(value)
    return None if number is None else min(max(number, -1.0), 1.0)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return value
    if isinstance(value, MAPPINGS):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def usable(text: Optional[str]) -> bool:
    """Whether a message has anything to understand: at least one letter or digit."""
    return isinstance(text, str) and any(char.isalnum() for char in text)


def tokens(text: Optional[str]) -> FrozenSet[str]:
    """Lower-cased word tokens, as a set."""
    return frozenset(_WORD.findall(text.lower())) if text else frozenset()


def jaccard(a: FrozenSet[str], b: FrozenSet[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _base(intent: Optional[str]) -> str:
    return base_intent(intent) if intent else ""


def _signals(parse: Parse, name: str) -> List[Signal]:
    return [s for s in parse.signals or () if isinstance(s, Signal) and s.name == name]


def _signal_evidence(signal: Signal) -> Dict[str, Any]:
    return {"route": "rule", "phrase": signal.phrase, "start": signal.start, "end": signal.end}
