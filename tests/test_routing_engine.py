"""The routing decision engine, table-driven from the real escalation.yml (loaded once).

Signals are built by hand here: detecting them in text is the NLU side's job (see
tests/test_matrix.py for the matrix's phrasings against a reference detector).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import pytest

from backline.nlp.money import find_money
from backline.routing import load_matrix
from backline.routing.engine import (
    ACTIONS,
    Conversation,
    Decision,
    Parse,
    Turn,
    decide,
    jaccard,
    tokens,
    usable,
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


# --- every row at every tier ------------------------------------------------------------------

NEUTRAL = "could you help me with this please"


def expected_for(intent: str, tier: str, confidence: float) -> Tuple[str, Optional[str]]:
    """(action, reason) that the row's ai_may and the intent's triggers imply, without signals or history."""
    row = MATRIX.rows[intent]
    if intent in EXPLICIT.intents and confidence >= EXPLICIT.min_confidence:
        return "handoff", "explicit_request"
    if any(intent in c.intents and c.amount_above is None for c in MATRIX.categories.values()):
        return "handoff", "sensitive_topic"
    if tier == "low":
        return "handoff", "low_confidence"
    if tier == "medium":
        return "consult", "medium_confidence"
    return {
        "answer": ("answer", None),
        "collect_then_route": ("collect", None),
        "draft": ("consult", "policy_action"),
        "never": ("handoff", row.route_reason),
    }[row.ai_may]


@pytest.mark.parametrize("tier", ["high", "medium", "low"])
@pytest.mark.parametrize("intent", MATRIX.intents)
def test_every_row_at_every_tier(intent: str, tier: str) -> None:
    confidence = confidence_for(intent, tier)
    d = decide(msg(NEUTRAL, intent, confidence), conv(), MATRIX)
    action, reason = expected_for(intent, tier, confidence)
    assert (d.action, d.reason) == (action, reason), d.as_record()
    assert d.tier == tier
    assert d.row == intent and d.intent == intent
    assert d.confidence == pytest.approx(confidence)
    row = MATRIX.rows[intent]
    assert d.thresholds == (row.thresholds.high, row.thresholds.low)
    assert d.mode == {"handoff": "human", "consult": "consulting", "answer": "ai", "collect": "ai"}[action]
    assert d.context_fields == MATRIX.context_packages[d.context_package]
    if reason not in ("explicit_request", "sensitive_topic"):
        assert (d.queue, d.sla_minutes) == (row.queue, row.sla_minutes)
    if reason == "low_confidence":
        assert d.context_package == "full"
    if action in ("answer", "collect"):
        assert d.slot_updates() == {}
        assert d.form == (f"collect_{intent}" if action == "collect" else None)
    else:
        assert d.slot_updates() == {"handoff_mode": d.mode, "escalation_reason": reason, "escalation_detail": d.detail}


@pytest.mark.parametrize("intent", [i for i, r in MATRIX.rows.items() if r.ai_may == "never"])
def test_never_rows_hand_off_at_high_confidence_with_their_reason(intent: str) -> None:
    d = decide(msg(NEUTRAL, intent, confidence_for(intent, "high")), conv(), MATRIX)
    assert d.action == "handoff"
    assert d.reason in (MATRIX.rows[intent].route_reason, "explicit_request", "sensitive_topic")


def test_draft_row_is_reviewed_in_the_background() -> None:
    # No row of the real matrix drafts at the moment; the defaults do (ai_may: draft).
    assert MATRIX.defaults.ai_may == "draft"
    d = decide(msg(NEUTRAL, "weather_smalltalk", 0.99), conv(), MATRIX)
    assert (d.action, d.mode, d.reason, d.detail) == ("consult", "consulting", "policy_action", "draft_review")
    assert d.row is None and d.queue == MATRIX.defaults.queue


def test_retrieval_intents_use_their_base_row() -> None:
    d = decide(msg("what's the warranty on the dock", "product_question/warranty", 0.97), conv(), MATRIX)
    assert (d.action, d.row, d.intent) == ("answer", "product_question", "product_question/warranty")
    assert d.thresholds == (
        MATRIX.rows["product_question"].thresholds.high,
        MATRIX.rows["product_question"].thresholds.low,
    )
    medium = decide(msg("warranty?", "product_question/warranty", 0.6), conv(), MATRIX)
    assert (medium.action, medium.reason, medium.queue) == ("consult", "medium_confidence", "support")


# --- clarify, human mode ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "🙂🙂", "?!", "...", "🙂" * 10_000, None])
def test_messages_without_words_ask_to_rephrase(text: Optional[str]) -> None:
    d = decide(msg(text, "request_human", 0.95), conv(), MATRIX)
    assert (d.action, d.mode, d.reason, d.detail) == ("clarify", "ai", None, "no_usable_text")
    assert not d.escalates and d.slot_updates() == {}
    json.dumps(d.as_record())


def test_clarify_keeps_the_mode() -> None:
    assert decide(msg("🙂", "greet", 0.3), conv(handoff_mode="consulting"), MATRIX).mode == "consulting"


def test_ten_thousand_characters_are_decided_quickly() -> None:
    text = ("my order from last week still has not arrived and nobody answers " * 160)[:10_000]
    assert len(text) == 10_000
    long_answer = ANSWER_ORDER * 100
    history = tuple(turn(text, "order_status", long_answer) for _ in range(2))
    started = time.thread_time()
    d = decide(msg(text, "order_status", 0.95, entities=money(780)), conv(*history), MATRIX)
    plain = decide(msg(text, "order_status", 0.95), conv(), MATRIX)
    assert time.thread_time() - started < 0.5
    assert (d.action, d.reason, d.detail) == ("handoff", "no_convergence", "repeated_answer")
    assert plain.action == "answer"
    json.dumps(d.as_record())


@pytest.mark.parametrize(
    "parse",
    [
        msg("i want to talk to a human", "request_human", 0.99, signals=[sig("explicit_request", "talk to a human")]),
        msg("my lawyer will call", "legal_threat", 0.99, signals=[sig("legal", "lawyer")]),
        msg("refund 900 eur", "refund_request", 0.99, entities=money(900)),
        msg("that didn't help", "answer_rejected", 0.99),
        msg("", None, None),
        msg("hello?", "greet", 0.2),
    ],
)
def test_human_mode_is_silent_whatever_the_message(parse: Parse) -> None:
    d = decide(parse, conv(turn("help", "order_status", ANSWER_ORDER), handoff_mode="human"), MATRIX)
    assert (d.action, d.mode, d.reason) == ("silent", "human", None)
    assert not d.escalates and d.triggers == ()


@pytest.mark.parametrize("mode", ["ai", "handed_back", None])
def test_other_modes_route_normally(mode: Optional[str]) -> None:
    d = decide(msg("where is my order", "order_status", 0.95), conv(handoff_mode=mode), MATRIX)
    assert d.action == "answer"
    assert d.mode == (mode or "ai")


# --- explicit request -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("where is my order? actually let me talk to a human", "talk to a human"),
        ("can i speak with a real person please", "speak with a real person"),
        ("live agent", "live agent"),
        ("get me a manager", "get me a manager"),
        ("operator please", "operator please"),
    ],
)
def test_explicit_request_signal_hands_off_whatever_the_intent(text: str, phrase: str) -> None:
    d = decide(msg(text, "order_status", 0.97, signals=[sig("explicit_request", phrase, text)]), conv(), MATRIX)
    row = MATRIX.rows["request_human"]
    assert (d.action, d.mode, d.reason, d.detail) == ("handoff", "human", "explicit_request", None)
    assert (d.queue, d.priority, d.sla_minutes) == (row.queue, row.priority, row.sla_minutes)
    assert d.evidence["explicit_request"]["phrase"] == phrase
    assert d.evidence["explicit_request"]["route"] == "rule"
    assert d.row == "order_status"


def test_explicit_request_by_the_classifier() -> None:
    at = EXPLICIT.min_confidence
    d = decide(msg("human", "request_human", at), conv(), MATRIX)
    assert (d.action, d.reason) == ("handoff", "explicit_request")
    assert d.evidence["explicit_request"] == {
        "route": "classifier",
        "intent": "request_human",
        "confidence": at,
        "min_confidence": at,
    }
    below = decide(msg("human", "request_human", at - 0.01), conv(), MATRIX)
    assert "explicit_request" not in below.evidence
    assert below.action in ("consult", "handoff") and below.reason != "explicit_request"


def test_explicit_request_has_no_i_can_help_too_even_inside_a_form() -> None:
    d = decide(msg("just get me an agent", "request_human", 0.95), conv(active_loop="order_form"), MATRIX)
    assert (d.action, d.reason) == ("handoff", "explicit_request")


@pytest.mark.parametrize(
    "text, not_phrase",
    [
        ("do you have a human resources department i could apply to", "human resources"),
        ("is this export in a human-readable format", "human-readable"),
        ("is the log human readable", "human readable"),
        ("was it a human error", "human error"),
    ],
)
def test_not_phrases_veto_the_classifier(text: str, not_phrase: str) -> None:
    ranking = [("request_human", 0.7), ("out_of_scope", 0.29), ("product_question", 0.01)]
    parse = msg(text, "request_human", 0.7, signals=[sig("not_explicit_request", not_phrase, text)], ranking=ranking)
    d = decide(parse, conv(), MATRIX)
    assert d.action == "answer" and d.reason is None
    assert d.intent == "out_of_scope" and d.row == "out_of_scope"
    assert d.confidence == pytest.approx(0.29 / 0.3)  # the next intent's share once request_human is ruled out
    assert d.evidence["explicit_suppressed"]["not_phrase"] == not_phrase
    assert d.evidence["explicit_suppressed"]["fallback_intent"] == "out_of_scope"
    assert "explicit_request" not in d.evidence


def test_a_veto_without_a_ranking_leaves_the_request_to_expert_review() -> None:
    text = "human resources"
    d = decide(msg(text, "request_human", 0.95, signals=[sig("not_explicit_request", text)]), conv(), MATRIX)
    assert (d.action, d.reason, d.tier) == ("consult", "medium_confidence", "medium")


def test_a_request_next_to_a_not_phrase_still_counts() -> None:
    text = "not about human resources: i want to talk to a human"
    signals = [sig("not_explicit_request", "human resources", text), sig("explicit_request", "talk to a human", text)]
    d = decide(msg(text, "request_human", 0.95, signals=signals), conv(), MATRIX)
    assert (d.action, d.reason) == ("handoff", "explicit_request")


def test_no_signal_and_another_intent_is_no_request() -> None:
    d = decide(msg("do you have a human resources department", "out_of_scope", 0.95), conv(), MATRIX)
    assert d.action == "answer" and "explicit_request" not in d.evidence


# --- exception categories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entities, fires, amount_eur",
    [
        (money(50), False, 50.0),
        (money(780), True, 780.0),
        (money(500), False, 500.0),  # not above the limit
        (money(500.01), True, 500.01),
        (money(900, "USD"), True, 900 * MATRIX.currency_rates["USD"]),
        (money(550, "USD"), False, 550 * MATRIX.currency_rates["USD"]),
        (money(450, "GBP"), True, 450 * MATRIX.currency_rates["GBP"]),
        (money(480, "CHF"), True, 513.6),  # 480 x 1.07
        (money(460, "CHF"), False, 492.2),  # 460 x 1.07
        (money(580, "usd"), False, 498.8),  # 580 x 0.86: a rated code in lower case converts
        (money("1,200.50"), True, 1200.5),
    ],
)
def test_refund_over_limit(entities, fires: bool, amount_eur: float) -> None:
    d = decide(msg("i want a refund", "refund_request", 0.95, entities=entities), conv(), MATRIX)
    assert d.evidence["amount"]["amount_eur"] == pytest.approx(amount_eur, abs=0.01)
    if fires:
        assert (d.action, d.reason, d.detail, d.queue, d.priority) == (
            "handoff", "sensitive_topic", "refund_over_limit", "billing", "high",
        )  # fmt: skip
        evidence = d.evidence["sensitive_topic"]
        assert evidence["category"] == "refund_over_limit" and evidence["route"] == "classifier"
        assert evidence["amount_eur"] == pytest.approx(amount_eur, abs=0.01)
        assert evidence["limit_eur"] == pytest.approx(500)
        assert evidence["currency"] == entities[1]["value"]
    else:
        assert d.action == "collect" and "sensitive_topic" not in d.evidence
        assert d.form == "collect_refund_request"


def test_a_fifty_euro_refund_is_collected_then_routed() -> None:
    d = decide(
        msg("i want a refund of 50 euros for my last order", "refund_request", 0.97, entities=money(50)), conv(), MATRIX
    )
    assert (d.action, d.mode, d.reason, d.form) == ("collect", "ai", None, "collect_refund_request")
    assert d.evidence["collect"] == {"form": "collect_refund_request", "fields": ["order_id", "amount"]}
    assert d.slot_updates() == {}


def test_billing_dispute_over_the_limit() -> None:
    d = decide(msg("you charged me 600 euros twice", "billing_dispute", 0.95, entities=money(600)), conv(), MATRIX)
    assert (d.action, d.detail) == ("handoff", "refund_over_limit")


def test_amount_from_the_slots_when_the_message_has_none() -> None:
    d = decide(msg("please refund it", "refund_request", 0.95), conv(amount=780.0, currency="EUR"), MATRIX)
    assert (d.action, d.detail) == ("handoff", "refund_over_limit")
    assert d.evidence["sensitive_topic"]["source"] == "slots"
    usd = decide(msg("please refund it", "refund_request", 0.95), conv(amount="900", currency="USD"), MATRIX)
    assert usd.detail == "refund_over_limit"


def test_the_message_amount_beats_the_slots() -> None:
    d = decide(
        msg("actually just 50 euros", "refund_request", 0.95, entities=money(50)),
        conv(amount=780.0, currency="EUR"),
        MATRIX,
    )
    assert d.action == "collect" and d.evidence["amount"]["source"] == "message"


def test_the_largest_amount_in_a_message_counts() -> None:
    entities = money(50, start=5, end=8) + money(700, start=20, end=24)
    d = decide(msg("paid 50, refund 700 eur", "refund_request", 0.95, entities=entities), conv(), MATRIX)
    assert d.detail == "refund_over_limit" and d.evidence["sensitive_topic"]["amount"] == 700


def test_an_amount_given_in_the_next_turn_of_a_refund() -> None:
    history = (turn("i want a refund", "refund_request", "Which order is it for, and how much?"),)
    d = decide(msg("it was 780 euros", "inform", 0.95, entities=money(780)), conv(*history), MATRIX)
    assert (d.action, d.detail) == ("handoff", "refund_over_limit")
    assert d.evidence["sensitive_topic"]["topic_intent"] == "refund_request"
    small = decide(msg("it was 80 euros", "inform", 0.95, entities=money(80)), conv(*history), MATRIX)
    assert small.action == "answer"


def test_amounts_outside_the_categories_do_not_fire() -> None:
    d = decide(msg("where is my 10000 eur order", "order_status", 0.95, entities=money(10_000)), conv(), MATRIX)
    assert "sensitive_topic" not in d.evidence


# --- fail closed: an amount in a currency without a rate ------------------------------------------


def parsed(text: str) -> Tuple[Dict[str, Any], ...]:
    """amount / currency entities over each money mention, as the NLU's money parser finds them."""
    entities: list = []
    for start, end, found in find_money(text):
        common = {"start": start, "end": end}
        entities += [{"entity": "amount", "value": float(found.amount), **common},
                     {"entity": "currency", "value": found.currency, **common}]  # fmt: skip
    return tuple(entities)


UNRATED = [
    # (text, intent, amount, currency): symbols, ISO codes before and after the number, a word
    ("i want a refund of ¥80000 for the hub", "refund_request", 80_000.0, "JPY"),
    ("refund 80000 yen please", "refund_request", 80_000.0, "JPY"),
    ("please refund JPY 80,000", "refund_request", 80_000.0, "JPY"),
    ("please refund ₹5000", "refund_request", 5_000.0, "INR"),
    ("refund A$ 50 for the cable", "refund_request", 50.0, "AUD"),
    ("i want my 120 cad back", "refund_request", 120.0, "CAD"),
    ("refund SEK 300", "refund_request", 300.0, "SEK"),
    ("you charged me 2000 pln twice", "billing_dispute", 2_000.0, "PLN"),
    ("i dispute the C$ 5 fee", "billing_dispute", 5.0, "CAD"),
]  # fmt: skip


@pytest.mark.parametrize("text, intent, amount, currency", UNRATED)
def test_an_amount_in_a_currency_without_a_rate_escalates(text: str, intent: str, amount: float, currency: str) -> None:
    entities = parsed(text)
    assert [e["value"] for e in entities] == [amount, currency]  # the money parser reads it
    d = decide(msg(text, intent, 0.97, entities=entities), conv(), MATRIX)
    assert (d.action, d.mode, d.reason, d.detail, d.queue, d.priority) == (
        "handoff", "human", "sensitive_topic", "unrated_currency", "billing", "high",
    )  # fmt: skip
    assert d.slot_updates() == {"handoff_mode": "human", "escalation_reason": "sensitive_topic",
                                "escalation_detail": "unrated_currency"}  # fmt: skip
    evidence = d.evidence["sensitive_topic"]
    assert (evidence["category"], evidence["detail"], evidence["route"], evidence["intent"]) == (
        "refund_over_limit", "unrated_currency", "classifier", intent,
    )  # fmt: skip
    assert (evidence["amount"], evidence["currency"], evidence["amount_eur"], evidence["no_rate"]) == (
        amount, currency, None, True,
    )  # fmt: skip
    assert evidence["why"] == (
        f"no rate configured for {currency} (currency_rates: CHF, EUR, GBP, USD), "
        "so it cannot be compared with the 500 EUR limit"
    )
    assert "limit_eur" not in evidence  # nothing was compared with the limit
    assert d.evidence["amount"] == {"amount": amount, "currency": currency, "amount_eur": None,
                                    "source": "message", "no_rate": True}  # fmt: skip
    assert d.triggers == ("sensitive_topic",)
    record = json.loads(json.dumps(d.as_record()))
    assert record["detail"] == "unrated_currency" and record["evidence"]["sensitive_topic"]["no_rate"] is True


@pytest.mark.parametrize("intent", ["refund_request", "billing_dispute"])
@pytest.mark.parametrize("confidence", [0.99, 0.7, 0.2])
def test_an_unrated_currency_escalates_at_every_confidence(intent: str, confidence: float) -> None:
    d = decide(msg("refund 100 yen", intent, confidence, entities=money(100, "JPY")), conv(), MATRIX)
    assert (d.action, d.reason, d.detail) == ("handoff", "sensitive_topic", "unrated_currency")


@pytest.mark.parametrize("currency", ["JPY", "XYZ", "jpy", "Bitcoin"])
def test_any_currency_without_a_rate_fails_closed(currency: str) -> None:
    """Not only the ones the parser knows: whatever currency the entity carries, no rate means no comparison."""
    d = decide(msg("refund it", "refund_request", 0.95, entities=money(1, currency)), conv(), MATRIX)
    assert d.detail == "unrated_currency"
    assert d.evidence["sensitive_topic"]["currency"] == currency.upper()


@pytest.mark.parametrize(
    "intent",
    [
        "order_status",
        "invoice_copy",
        "pricing",
        "product_question/warranty",
        "inform",
        "upgrade_interest",
        "cancel_subscription",
    ],
)
def test_an_unrated_currency_outside_the_limit_intents_does_not_escalate(intent: str) -> None:
    d = decide(msg("it cost ¥90000", intent, 0.99, entities=money(90_000, "JPY")), conv(), MATRIX)
    assert "sensitive_topic" not in d.evidence and d.detail != "unrated_currency"
    assert d.evidence["amount"]["no_rate"] is True


def test_an_unrated_amount_from_the_slots_escalates() -> None:
    d = decide(msg("please refund it", "refund_request", 0.95), conv(amount=100.0, currency="JPY"), MATRIX)
    assert (d.action, d.detail) == ("handoff", "unrated_currency")
    evidence = d.evidence["sensitive_topic"]
    assert (evidence["amount"], evidence["currency"], evidence["source"]) == (100.0, "JPY", "slots")


def test_an_amount_without_currency_takes_an_unrated_currency_slot() -> None:
    d = decide(msg("refund 300", "refund_request", 0.95, entities=money(300, None)), conv(currency="SEK"), MATRIX)
    assert d.detail == "unrated_currency"
    assert (d.evidence["sensitive_topic"]["currency"], d.evidence["sensitive_topic"]["currency_assumed"]) == (
        "SEK",
        True,
    )


def test_a_blank_currency_counts_as_none() -> None:
    d = decide(msg("refund 80", "refund_request", 0.95, entities=money(80, " ")), conv(currency=" "), MATRIX)
    assert d.action == "collect"
    assert (d.evidence["amount"]["currency"], d.evidence["amount"]["currency_assumed"]) == ("EUR", True)


def test_an_unrated_amount_given_in_the_next_turn_of_a_refund() -> None:
    history = (turn("i want a refund", "refund_request", "Which order is it for, and how much?"),)
    d = decide(msg("it was 8000 yen", "inform", 0.95, entities=money(8_000, "JPY")), conv(*history), MATRIX)
    assert (d.action, d.detail) == ("handoff", "unrated_currency")
    assert d.evidence["sensitive_topic"]["topic_intent"] == "refund_request"
    unrelated = (turn("where is my order", "order_status", "It shipped on Monday."),)
    later = decide(msg("it was 8000 yen", "inform", 0.95, entities=money(8_000, "JPY")), conv(*unrelated), MATRIX)
    assert "sensitive_topic" not in later.evidence


def test_a_rated_amount_below_the_limit_does_not_clear_an_unrated_one() -> None:
    entities = money(50, "EUR", start=5, end=8) + money(90_000, "JPY", start=20, end=26)
    d = decide(msg("paid €50, refund ¥90000", "refund_request", 0.95, entities=entities), conv(), MATRIX)
    assert (d.action, d.detail) == ("handoff", "unrated_currency")
    evidence = d.evidence["sensitive_topic"]
    assert (evidence["amount"], evidence["currency"]) == (90_000.0, "JPY")
    assert d.evidence["amount"]["amount_eur"] == 50.0  # the amount that converts is still recorded


def test_a_rated_amount_over_the_limit_wins_and_the_unrated_one_is_recorded() -> None:
    entities = money(800, "EUR", start=5, end=9) + money(100, "JPY", start=20, end=24)
    d = decide(msg("paid €800, then ¥100", "refund_request", 0.95, entities=entities), conv(), MATRIX)
    assert (d.action, d.detail) == ("handoff", "refund_over_limit")
    evidence = d.evidence["sensitive_topic"]
    assert (evidence["amount"], evidence["amount_eur"], evidence["limit_eur"]) == (800.0, 800.0, 500.0)
    assert [(u["amount"], u["currency"], u["no_rate"]) for u in evidence["unrated"]] == [(100.0, "JPY", True)]


def test_several_unrated_amounts_are_all_recorded() -> None:
    entities = money(100, "JPY", start=0, end=4) + money(300, "SEK", start=10, end=17)
    d = decide(msg("¥100 and SEK 300", "refund_request", 0.95, entities=entities), conv(), MATRIX)
    assert d.detail == "unrated_currency"
    assert [(u["currency"], u["amount_eur"]) for u in d.evidence["sensitive_topic"]["unrated"]] == [
        ("JPY", None),
        ("SEK", None),
    ]


def test_a_more_urgent_category_outranks_an_unrated_refund() -> None:
    text = "my account was hacked, refund the ¥9000"
    signals = [sig("account_security", "hacked", text)]
    d = decide(msg(text, "refund_request", 0.95, signals=signals, entities=money(9_000, "JPY")), conv(), MATRIX)
    assert (d.detail, d.queue, d.priority) == ("account_security", "security", "urgent")
    fired = {f["category"]: f["detail"] for f in d.evidence["sensitive_topic"]["fired"]}
    assert fired == {"refund_over_limit": "unrated_currency", "account_security": "account_security"}


def test_an_explicit_request_outranks_an_unrated_refund_and_the_record_keeps_it() -> None:
    text = "refund ¥9000, let me talk to a human"
    signals = [sig("explicit_request", "talk to a human", text)]
    d = decide(msg(text, "refund_request", 0.95, signals=signals, entities=money(9_000, "JPY")), conv(), MATRIX)
    assert (d.reason, d.detail) == ("explicit_request", None)
    assert d.evidence["sensitive_topic"]["detail"] == "unrated_currency"


def test_a_category_names_its_own_unrated_detail() -> None:
    over = replace(MATRIX.categories["refund_over_limit"], unrated_detail="refund_unconvertible")
    matrix = replace(MATRIX, categories={**MATRIX.categories, "refund_over_limit": over})
    d = decide(msg("refund ¥100", "refund_request", 0.95, entities=money(100, "JPY")), conv(), matrix)
    assert (d.reason, d.detail) == ("sensitive_topic", "refund_unconvertible")


def test_an_amount_without_currency_uses_the_slot_or_eur() -> None:
    d = decide(msg("refund 780", "refund_request", 0.95, entities=money(780, None)), conv(), MATRIX)
    assert d.detail == "refund_over_limit"
    assert d.evidence["amount"]["currency"] == "EUR" and d.evidence["amount"]["currency_assumed"] is True


@pytest.mark.parametrize("intent, detail, queue, priority", [
    ("legal_threat", "legal", "legal", "high"),
    ("gdpr_request", "legal", "legal", "high"),
    ("formal_complaint", "formal_complaint", "support", "high"),
    ("account_compromised", "account_security", "security", "urgent"),
])  # fmt: skip
def test_the_classifier_route_alone_fires_a_category(intent: str, detail: str, queue: str, priority: str) -> None:
    d = decide(msg(NEUTRAL, intent, 0.9), conv(), MATRIX)
    assert (d.action, d.reason, d.detail, d.queue, d.priority) == (
        "handoff",
        "sensitive_topic",
        detail,
        queue,
        priority,
    )
    assert d.evidence["sensitive_topic"]["route"] == "classifier"


def test_legal_phrase_inside_an_order_status_message() -> None:
    text = "where is my order? my lawyer is asking"
    d = decide(msg(text, "order_status", 0.97, signals=[sig("legal", "lawyer", text)]), conv(), MATRIX)
    assert (d.action, d.reason, d.detail, d.queue) == ("handoff", "sensitive_topic", "legal", "legal")
    evidence = d.evidence["sensitive_topic"]
    assert (evidence["category"], evidence["route"], evidence["phrase"]) == ("legal", "rule", "lawyer")
    assert (evidence["start"], evidence["end"]) == (text.find("lawyer"), text.find("lawyer") + len("lawyer"))
    assert d.row == "order_status"


def test_bot_or_human_question_is_a_formal_complaint() -> None:
    text = "are you a bot or a human?"
    signals = [sig("not_explicit_request", "bot or a human", text), sig("formal_complaint", "bot or a human", text)]
    for intent in ("bot_challenge", "request_human"):
        d = decide(msg(text, intent, 0.8, signals=signals, ranking=[(intent, 0.8), ("greet", 0.1)]), conv(), MATRIX)
        assert (d.action, d.reason, d.detail) == ("handoff", "sensitive_topic", "formal_complaint"), intent
        assert d.evidence["sensitive_topic"]["phrase"] == "bot or a human"
    plain = decide(msg("are you a bot?", "bot_challenge", 0.95), conv(), MATRIX)
    assert plain.action == "answer"


def test_the_most_urgent_category_wins() -> None:
    text = "my account was hacked and my lawyer says it is your fault"
    signals = [sig("legal", "lawyer", text), sig("account_security", "hacked", text)]
    d = decide(msg(text, "legal_threat", 0.95, signals=signals), conv(), MATRIX)
    assert (d.detail, d.queue, d.priority) == ("account_security", "security", "urgent")
    fired = {f["category"] for f in d.evidence["sensitive_topic"]["fired"]}
    assert fired == {"legal", "account_security"}


def test_a_category_escalation_borrows_its_intent_row_sla() -> None:
    text = "someone logged into my account"
    d = decide(msg(text, "password_reset", 0.95, signals=[sig("account_security", text)]), conv(), MATRIX)
    security = MATRIX.rows["account_compromised"]
    assert (d.sla_minutes, d.context_package) == (security.sla_minutes, security.context_package)
    assert d.queue == "security" and d.row == "password_reset"


def test_unknown_signal_names_are_ignored() -> None:
    d = decide(msg(NEUTRAL, "order_status", 0.95, signals=[sig("weather", "rain")]), conv(), MATRIX)
    assert d.action == "answer"


# --- no convergence ------------------------------------------------------------------------------


def test_same_question_same_answer_three_times() -> None:
    history = (
        turn("how do i reset my password", "password_reset", ANSWER_PW),
        turn("how do i reset my password?", "password_reset", ANSWER_PW),
    )
    d = decide(msg("how do i reset my password??", "password_reset", 0.95), conv(*history), MATRIX)
    assert (d.action, d.reason, d.detail) == ("handoff", "no_convergence", "repeated_answer")
    evidence = d.evidence["no_convergence"]
    assert evidence["overlap"] >= NC.overlap and evidence["overlaps"] == [evidence["overlap"]]
    assert evidence["turns"] == NC.same_intent_turns
    assert evidence["last_answer"] == ANSWER_PW
    assert d.context_package == "full" and d.queue == MATRIX.rows["password_reset"].queue


def test_same_intent_with_different_answers_converges() -> None:
    history = (
        turn("how do i reset my password", "password_reset", ANSWER_PW),
        turn(
            "the reset link expired",
            "password_reset",
            "Links last 30 minutes: request a new one and use it right away.",
        ),
    )
    d = decide(msg("still can't log in", "password_reset", 0.95), conv(*history), MATRIX)
    assert d.action == "answer" and "no_convergence" not in d.evidence


@pytest.mark.parametrize(
    "history",
    [
        (turn("how do i reset my password", "password_reset", ANSWER_PW),),  # only two turns so far
        (
            turn("how do i reset my password", "password_reset", ANSWER_PW),
            turn("and my licence?", "license_activation", ANSWER_PW),
        ),
        (
            turn("how do i reset my password", "password_reset", ANSWER_PW),
            turn("again", "password_reset", ""),
        ),  # unanswered
    ],
)
def test_no_convergence_needs_three_same_intent_answered_turns(history: Tuple[Turn, ...]) -> None:
    d = decide(msg("how do i reset my password", "password_reset", 0.95), conv(*history), MATRIX)
    assert "no_convergence" not in d.evidence


def test_no_convergence_thresholds_come_from_the_matrix() -> None:
    history = (
        turn("reset password", "password_reset", ANSWER_PW),
        turn("reset password pls", "password_reset", ANSWER_PW),
    )
    strict = with_triggers(no_convergence={"overlap": 0.99})
    assert decide(msg("reset password?", "password_reset", 0.95), conv(*history), strict).action == "answer"
    longer = with_triggers(no_convergence={"same_intent_turns": 4})
    assert (
        "no_convergence" not in decide(msg("reset password?", "password_reset", 0.95), conv(*history), longer).evidence
    )
    three = (turn("reset password", "password_reset", ANSWER_PW),) + history
    d = decide(msg("reset password?", "password_reset", 0.95), conv(*three), longer)
    assert d.detail == "repeated_answer" and len(d.evidence["no_convergence"]["overlaps"]) == 2


def test_a_rejected_answer_escalates_with_the_last_attempt() -> None:
    history = (turn("how do i activate my license", "license_activation", ANSWER_LICENSE),)
    d = decide(msg("that didn't help", "answer_rejected", 0.93), conv(*history), MATRIX)
    assert (d.action, d.reason, d.detail) == ("handoff", "no_convergence", "answer_rejected")
    evidence = d.evidence["no_convergence"]
    assert evidence["last_answer"] == ANSWER_LICENSE
    assert evidence["last_question"] == "how do i activate my license"
    row = MATRIX.rows["answer_rejected"]
    assert (d.queue, d.priority, d.sla_minutes, d.context_package) == (
        row.queue,
        row.priority,
        row.sla_minutes,
        row.context_package,
    )


def test_a_rejection_without_an_earlier_answer_is_no_convergence_trigger() -> None:
    for history in ((), (turn("hi", "greet", ""),)):
        d = decide(msg("that didn't help", "answer_rejected", 0.93), conv(*history), MATRIX)
        assert "no_convergence" not in d.evidence
        assert (d.action, d.detail) == ("handoff", "ai_never")  # the row itself: the AI never answers it


# --- precedence ---------------------------------------------------------------------------------


def test_explicit_request_beats_sensitive_topic() -> None:
    text = "my lawyer says i should talk to a human"
    signals = [sig("legal", "lawyer", text), sig("explicit_request", "talk to a human", text)]
    d = decide(msg(text, "legal_threat", 0.95, signals=signals), conv(), MATRIX)
    assert (d.reason, d.detail, d.queue) == ("explicit_request", None, "support")
    assert d.triggers == ("explicit_request", "sensitive_topic")  # the outranked one stays on record


def test_sensitive_topic_beats_no_convergence() -> None:
    history = (
        turn("refund 780 eur", "refund_request", "Which order?"),
        turn("refund 780 eur", "refund_request", "Which order?"),
    )
    d = decide(msg("refund 780 eur", "refund_request", 0.95, entities=money(780)), conv(*history), MATRIX)
    assert (d.reason, d.detail) == ("sensitive_topic", "refund_over_limit")
    assert d.triggers == ("sensitive_topic", "no_convergence")


def test_explicit_request_beats_no_convergence() -> None:
    history = (turn("reset", "password_reset", ANSWER_PW), turn("reset", "password_reset", ANSWER_PW))
    d = decide(
        msg("reset", "password_reset", 0.95, signals=[sig("explicit_request", "agent please")]), conv(*history), MATRIX
    )
    assert d.reason == "explicit_request"


def test_no_convergence_beats_the_confidence_tier_and_modifiers() -> None:
    history = (turn("a", "order_status", ANSWER_ORDER), turn("a", "order_status", ANSWER_ORDER))
    d = decide(msg("a", "order_status", 0.99, sentiment=-0.9), conv(*history, customer_tier="enterprise"), MATRIX)
    assert (d.reason, d.modifiers) == ("no_convergence", ())


def test_triggers_fire_whatever_the_confidence() -> None:
    text = "my lawyer"
    d = decide(msg(text, "greet", 0.05, signals=[sig("legal", "lawyer")]), conv(), MATRIX)
    assert d.reason == "sensitive_topic" and d.tier == "low"


# --- confidence tiers and modifiers ------------------------------------------------------------


def test_low_confidence_hands_off_with_the_full_context() -> None:
    d = decide(msg("blorp the thing", "order_status", 0.1), conv(), MATRIX)
    assert (d.action, d.reason, d.context_package) == ("handoff", "low_confidence", "full")
    assert d.context_fields == MATRIX.context_packages["full"]
    assert d.evidence["confidence"] == {
        "tier": "low", "confidence": 0.1, "high": ORDER_STATUS.high, "low": ORDER_STATUS.low, "ai_may": "answer",
    }  # fmt: skip


def test_thresholds_are_per_row() -> None:
    greet = MATRIX.thresholds("greet")
    assert greet.high < MATRIX.defaults.thresholds.high
    between = (greet.high + MATRIX.defaults.thresholds.high) / 2
    assert decide(msg("hi", "greet", between), conv(), MATRIX).action == "answer"
    assert decide(msg("where", "order_status", between), conv(), MATRIX).action == "consult"


def test_negative_sentiment_turns_an_answer_into_a_consultation() -> None:
    limit = MATRIX.triggers.sentiment.negative_below
    d = decide(msg("where is my stupid order", "order_status", 0.95, sentiment=limit), conv(), MATRIX)
    assert (d.action, d.mode, d.reason, d.detail) == (
        "consult",
        "consulting",
        "negative_sentiment",
        "negative_sentiment",
    )
    assert d.modifiers == ("negative_sentiment",)
    assert d.evidence["negative_sentiment"] == {"sentiment": limit, "negative_below": limit}
    mild = decide(msg("where is my order", "order_status", 0.95, sentiment=limit + 0.1), conv(), MATRIX)
    assert mild.action == "answer" and mild.modifiers == ()


def test_negative_sentiment_keeps_an_existing_consultation_reason() -> None:
    d = decide(msg("where is my order", "order_status", 0.6, sentiment=-0.9), conv(), MATRIX)
    assert (d.action, d.reason, d.modifiers) == ("consult", "medium_confidence", ("negative_sentiment",))


def test_one_frustrated_message_is_answered_the_second_is_handed_off() -> None:
    first = decide(msg("i have already tried that", "frustration", 0.95), conv(), MATRIX)
    assert first.action == "answer"
    history = (turn("i have already tried that", "frustration", "I'm sorry, that sounds really frustrating."),)
    second = decide(msg("i told you i already did all of that", "frustration", 0.95), conv(*history), MATRIX)
    assert (second.action, second.reason, second.detail) == ("handoff", "negative_sentiment", "repeated_frustration")
    assert second.modifiers == ("repeated_frustration",)
    assert second.evidence["repeated_frustration"] == {"count": 2, "repeats": 2}
    other = decide(msg("where is my order", "order_status", 0.95), conv(*history), MATRIX)
    assert other.action == "answer"


def test_enterprise_customers_get_priority_and_review_of_policy_actions() -> None:
    answer = decide(msg("where is my order", "order_status", 0.95), conv(customer_tier="enterprise"), MATRIX)
    assert (answer.action, answer.priority, answer.modifiers) == ("answer", "high", ("high_value",))
    assert answer.evidence["high_value"]["kind"] == "high_value_customer"
    collect = decide(msg("i want to return my laptop", "return_item", 0.95), conv(customer_tier="Enterprise"), MATRIX)
    assert (collect.action, collect.reason, collect.priority) == ("collect", None, "high")
    assert collect.modifiers == ("high_value",)
    standard = decide(msg("i want to return my laptop", "return_item", 0.95), conv(customer_tier="standard"), MATRIX)
    assert (standard.action, standard.priority, standard.modifiers) == ("collect", "normal", ())
    draft = decide(msg("hmm", "weather_smalltalk", 0.99), conv(customer_tier="enterprise"), MATRIX)
    assert (draft.action, draft.reason, draft.detail) == ("consult", "policy_action", "draft_review")


def test_high_value_amount() -> None:
    d = decide(msg("switch us to business, 2500 eur a year", "change_plan", 0.95, entities=money(2500)), conv(), MATRIX)
    assert (d.action, d.priority, d.modifiers) == ("collect", "high", ("high_value",))
    assert d.evidence["high_value"]["limit_eur"] == pytest.approx(2000)
    assert d.evidence["high_value"]["kind"] == "high_value_amount"


def test_high_value_does_not_touch_handoffs_and_priority_caps_at_urgent() -> None:
    d = decide(msg("human", "request_human", 0.95), conv(customer_tier="enterprise"), MATRIX)
    assert (d.priority, d.modifiers) == (MATRIX.rows["request_human"].priority, ())
    unknown = decide(msg("hmm", "weather_smalltalk", 0.99), conv(customer_tier="enterprise"), MATRIX)
    assert (unknown.action, unknown.reason, unknown.priority) == ("consult", "policy_action", "high")


def test_modifiers_combine() -> None:
    d = decide(
        msg("where is my damn order", "order_status", 0.95, sentiment=-0.8), conv(customer_tier="enterprise"), MATRIX
    )
    assert (d.action, d.reason, d.priority) == ("consult", "negative_sentiment", "high")
    assert d.modifiers == ("negative_sentiment", "high_value")


def test_inside_a_form_unsure_replies_are_left_to_the_form() -> None:
    d = decide(msg("it's 10023", "inform", 0.3), conv(active_loop="order_form"), MATRIX)
    assert (d.action, d.tier) == ("answer", "low")
    assert d.evidence["active_loop"] == {"name": "order_form", "tier": "low"}
    outside = decide(msg("it's 10023", "inform", 0.3), conv(), MATRIX)
    assert outside.reason == "low_confidence"


# --- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [None, float("nan"), float("inf"), "high", -1, [0.9]])
def test_unusable_confidences_count_as_zero(confidence: Any) -> None:
    d = decide(msg("where is my order", "order_status", confidence), conv(), MATRIX)
    assert d.confidence == 0.0 and (d.action, d.reason) == ("handoff", "low_confidence")
    json.dumps(d.as_record())


def test_confidence_above_one_is_clamped() -> None:
    assert decide(msg("where", "order_status", 7), conv(), MATRIX).confidence == 1.0


@pytest.mark.parametrize("intent", [None, "", "nlu_fallback", "teleport/now"])
def test_unknown_intents_use_the_defaults(intent: Optional[str]) -> None:
    d = decide(msg("blah blah", intent, 0.95), conv(), MATRIX)
    assert d.row is None
    assert d.thresholds == (MATRIX.defaults.thresholds.high, MATRIX.defaults.thresholds.low)
    assert d.queue == MATRIX.defaults.queue and d.action == "consult"


def test_junk_inputs_do_not_crash() -> None:
    parse = Parse(
        text="refund please",
        intent="refund_request",
        confidence=0.95,
        ranking=(("refund_request", 0.95),),
        entities=({"entity": "amount", "value": "lots"}, {"entity": "amount"}, {"value": 3}, {"entity": "currency"}),
        sentiment=float("nan"),
        signals=(),
    )
    history = (Turn(text=None, intent=None, confidence=None, answer=None), Turn())
    d = decide(parse, Conversation(handoff_mode=None, amount="n/a", currency=None, history=history), MATRIX)
    assert d.action == "collect"
    assert decide(parse, None, MATRIX).action == "collect"
    json.dumps(d.as_record())


def test_from_parse_data() -> None:
    data = {
        "text": "What's the warranty? my lawyer asks",
        "intent": {"name": "product_question", "confidence": 0.91},
        "intent_ranking": [{"name": "product_question", "confidence": 0.91}, {"name": "pricing", "confidence": 0.05}],
        "entities": [{"entity": "amount", "value": 5.0, "start": 0, "end": 1}],
        "response_selector": {"product_question": {"response": {"intent_response_key": "product_question/warranty"}}},
        "sentiment": {"compound": -0.2, "label": "negative"},
        "signals": [{"name": "legal", "phrase": "lawyer", "start": 24, "end": 30}],
    }
    parse = Parse.from_parse_data(data)
    assert parse.intent == "product_question/warranty" and parse.confidence == 0.91
    assert parse.ranking == (("product_question", 0.91), ("pricing", 0.05))
    assert parse.sentiment == -0.2 and parse.signals == (Signal("legal", "lawyer", 24, 30),)
    assert decide(parse, conv(), MATRIX).detail == "legal"
    assert Parse.from_parse_data({}).intent is None


def test_the_record_is_complete_and_json() -> None:
    text = "where is my order? my lawyer is asking"
    d = decide(
        msg(text, "order_status", 0.97, signals=[sig("legal", "lawyer", text)]),
        conv(customer_tier="enterprise"),
        MATRIX,
    )
    record = d.as_record()
    assert json.loads(json.dumps(record)) == record
    assert set(record) == {
        "action", "mode", "reason", "detail", "tier", "intent", "confidence", "thresholds", "queue", "priority",
        "sla_minutes", "context_package", "context_fields", "row", "triggers", "modifiers", "evidence",
    }  # fmt: skip
    assert record["thresholds"] == {"high": ORDER_STATUS.high, "low": ORDER_STATUS.low}
    assert record["triggers"] == ["sensitive_topic"]
    assert set(ACTIONS) == {
        "silent",
        "handoff",
        "consult",
        "clarify",
        "answer",
        "collect",
        "answer_waiting",
        "tell_resolution",
        "stop_collect",
    }
    assert isinstance(d, Decision) and d.escalates


def test_helpers() -> None:
    assert usable("a") and usable("10023") and usable("ça") and not usable("🙂 ?!") and not usable(None)
    assert tokens("Reset, reset my PASSWORD!") == {"reset", "my", "password"}
    assert jaccard(tokens("a b c"), tokens("a b d")) == pytest.approx(0.5)
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert not math.isnan(jaccard(tokens(""), tokens("x")))
