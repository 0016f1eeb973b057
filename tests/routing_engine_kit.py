"""The shared builders of the routing engine tests (tests/test_routing_engine*.py): the real
escalation.yml loaded once, signals, money entities, messages, turns and conversations.

Signals are built by hand here: detecting them in text is the NLU side's job (see
tests/test_matrix.py for the matrix's phrasings against a reference detector).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from backline.routing import load_matrix
from backline.routing.engine import (
    Conversation,
    Parse,
    Turn,
)
from backline.routing.signals import Signal

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
ORDER_STATUS = MATRIX.thresholds("order_status")  # its row's own, else the defaults
EXPLICIT = MATRIX.triggers.explicit_request
NC = MATRIX.triggers.no_convergence

ANSWER_PW = (
    "Go to kestrel.example/reset, enter your account e-mail and follow the link we send you "
    "(it's valid for 30 minutes). Check your spam folder if it hasn't arrived within a few minutes."
)
ANSWER_LICENSE = (
    "To activate a license, open the app, go to Help › Activate license and paste the key from your "
    "purchase e-mail (it starts with KOS- or KSE-)."
)
ANSWER_ORDER = "Order 10023 shipped on Monday with DHL; tracking number 00340434161234567890."


# --- builders -------------------------------------------------------------------------------


def sig(name: str, phrase: str, text: Optional[str] = None) -> Signal:
    start = (text or phrase).lower().find(phrase.lower()) if text else 0
    return Signal(name, phrase, max(start, 0), max(start, 0) + len(phrase))


def money(value: Any, currency: Optional[str] = "EUR", start: int = 10, end: int = 16) -> Tuple[Dict[str, Any], ...]:
    entities = [{"entity": "amount", "value": value, "start": start, "end": end}]
    if currency:
        entities.append({"entity": "currency", "value": currency, "start": start, "end": end})
    return tuple(entities)


def msg(
    text: str = "can you help me with this",
    intent: Optional[str] = "order_status",
    confidence: Any = 0.95,
    *,
    signals: Sequence[Signal] = (),
    entities: Sequence[Dict[str, Any]] = (),
    sentiment: Optional[float] = None,
    ranking: Sequence[Tuple[str, float]] = (),
) -> Parse:
    return Parse(
        text=text,
        intent=intent,
        confidence=confidence,
        ranking=tuple(ranking),
        entities=tuple(entities),
        sentiment=sentiment,
        signals=tuple(signals),
    )


def turn(text: str, intent: str, answer: str = "", confidence: float = 0.95) -> Turn:
    return Turn(text=text, intent=intent, confidence=confidence, answer=answer)


def conv(*history: Turn, **slots: Any) -> Conversation:
    return Conversation(history=tuple(history), **slots)


def confidence_for(intent: str, tier: str) -> float:
    t = MATRIX.thresholds(intent)
    return {"high": (t.high + 1.0) / 2, "medium": (t.high + t.low) / 2, "low": t.low / 2}[tier]


def with_triggers(**changes: Any):
    """The real matrix with some trigger settings changed (frozen dataclasses, so a copy)."""
    t = MATRIX.triggers
    new = {name: replace(getattr(t, name), **values) for name, values in changes.items()}
    return replace(MATRIX, triggers=replace(t, **new))


NEUTRAL = "could you help me with this please"  # a message with no signal in it
