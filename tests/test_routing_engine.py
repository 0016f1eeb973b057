"""The routing decision engine, table-driven from the real escalation.yml (loaded once): every row at
every tier, clarify and human mode, the explicit request, precedence, confidence tiers and
modifiers, robustness. Exception categories and no convergence: tests/test_routing_engine_exceptions.py;
the builders: tests/routing_engine_kit.py.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Optional, Tuple

import pytest

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
from tests.routing_engine_kit import (
    ANSWER_ORDER,
    ANSWER_PW,
    EXPLICIT,
    MATRIX,
    NEUTRAL,
    ORDER_STATUS,
    confidence_for,
    conv,
    money,
    msg,
    sig,
    turn,
)

# --- every row at every tier ------------------------------------------------------------------


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
    medium = decide(
        msg("warranty?", "product_question/warranty", confidence_for("product_question", "medium")), conv(), MATRIX
    )
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
    d = decide(
        msg("where is my order", "order_status", confidence_for("order_status", "medium"), sentiment=-0.9),
        conv(),
        MATRIX,
    )
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
