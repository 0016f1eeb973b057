"""The routing engine's conversation states (issue 14): collect-then-route, a handoff waiting for a
person, recorded resolutions, hand-back expiry, and messages without words."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from backline.routing import load_matrix
from backline.routing.engine import Conversation, Parse, Turn, decide, route_collected
from backline.routing.signals import Signal

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone.utc)


def msg(text: str, intent: str, confidence: float = 0.97, **extra) -> Parse:
    return Parse(text=text, intent=intent, confidence=confidence, ranking=((intent, confidence),), **extra)


def eur(value: float) -> tuple:
    return (
        {"entity": "amount", "value": value, "start": 0, "end": 3},
        {"entity": "currency", "value": "EUR", "start": 0, "end": 3},
    )


# --- collect then route -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intent,fields",
    [
        ("return_item", ["order_id", "issue_details"]),
        ("refund_request", ["order_id", "amount"]),
        ("damaged_item", ["order_id", "issue_details"]),
        ("invoice_wrong", ["invoice_id", "issue_details"]),
        ("billing_dispute", ["invoice_id", "amount"]),
        ("cancel_subscription", ["email", "issue_details"]),
        ("change_plan", ["email", "target_plan"]),
        ("upgrade_interest", ["product", "email"]),
    ],
)
def test_a_collect_row_starts_its_form(intent: str, fields: list) -> None:
    d = decide(msg("i need help with this", intent), Conversation(), MATRIX)
    assert (d.action, d.mode, d.form) == ("collect", "ai", f"collect_{intent}")
    assert d.evidence["collect"]["fields"] == fields


def test_the_form_keeps_its_replies_and_its_own_topic() -> None:
    loop = Conversation(active_loop="collect_return_item")
    assert decide(msg("10023", "inform"), loop, MATRIX).action == "answer"
    assert decide(msg("i want to return it", "return_item"), loop, MATRIX).action == "answer"
    assert decide(msg("too small", "pricing", 0.3), loop, MATRIX).action == "answer"  # unsure: left to the form
    switched = decide(msg("actually cancel my plan", "cancel_subscription"), loop, MATRIX)
    assert (switched.action, switched.form) == ("collect", "collect_cancel_subscription")
    person = decide(msg("get me a human", "request_human"), loop, MATRIX)
    assert (person.action, person.reason) == ("handoff", "explicit_request")


def test_a_confident_no_stops_a_collect_form_and_routes_nothing() -> None:
    loop = Conversation(active_loop="collect_change_plan")
    stop = decide(msg("no, forget it", "deny"), loop, MATRIX)
    assert (stop.action, stop.mode, stop.detail, stop.slot_updates()) == ("stop_collect", "ai", "customer_stopped", {})
    unsure = decide(msg("nah", "deny", 0.4), loop, MATRIX)
    assert unsure.action == "answer"  # left to the form, which asks again
    other_form = decide(msg("no", "deny"), Conversation(active_loop="order_form"), MATRIX)
    assert other_form.action == "answer"


def test_an_amount_over_the_limit_inside_the_refund_form_hands_off() -> None:
    loop = Conversation(active_loop="collect_refund_request", history=(Turn("order 10023", "inform", "How much?"),))
    d = decide(msg("780 euros", "inform", entities=eur(780)), loop, MATRIX)
    assert (d.action, d.reason, d.detail, d.queue) == ("handoff", "sensitive_topic", "refund_over_limit", "billing")
    assert d.evidence["sensitive_topic"]["topic_intent"] == "refund_request"
    small = decide(msg("49 euros", "inform", entities=eur(49)), loop, MATRIX)
    assert small.action == "answer"


def test_route_collected_consults_the_rows_queue_with_the_facts() -> None:
    slots = {"order_id": "10023", "amount": 49.0, "currency": "EUR"}
    d = route_collected("refund_request", Conversation(amount=49.0, currency="EUR", slots=slots), MATRIX)
    assert (d.action, d.mode, d.reason, d.detail, d.queue, d.priority) == (
        "consult",
        "consulting",
        "policy_action",
        "collected",
        "billing",
        "normal",
    )
    assert d.evidence["collected"] == {
        "form": "collect_refund_request",
        "fields": {"order_id": "10023", "amount": {"value": 49.0, "currency": "EUR"}},
    }
    assert d.slot_updates() == {
        "handoff_mode": "consulting",
        "escalation_reason": "policy_action",
        "escalation_detail": "collected",
    }


def test_route_collected_hands_off_an_amount_over_the_limit_and_raises_high_value() -> None:
    over = route_collected(
        "refund_request", Conversation(amount=780.0, currency="EUR", slots={"order_id": "10023"}), MATRIX
    )
    assert (over.action, over.reason, over.detail) == ("handoff", "sensitive_topic", "refund_over_limit")
    unrated = route_collected("billing_dispute", Conversation(amount=80.0, currency="JPY"), MATRIX)
    assert (unrated.action, unrated.detail) == ("handoff", "unrated_currency")
    big = route_collected("return_item", Conversation(customer_tier="enterprise", slots={"order_id": "10023"}), MATRIX)
    assert (big.action, big.priority, big.modifiers) == ("consult", "high", ("high_value",))
    assert (big.reason, big.detail) == ("high_value", "high_value_customer")
    sales = route_collected("upgrade_interest", Conversation(slots={"product": "Hub X1"}), MATRIX)
    assert (sales.reason, sales.detail, sales.queue, sales.priority) == ("high_value", "collected", "sales", "high")


# --- a handoff waiting for a person --------------------------------------------------------------


def waiting(**extra) -> Conversation:
    return Conversation(handoff_mode="human", human_joined=False, **extra)


@pytest.mark.parametrize(
    "intent",
    ["opening_hours", "pricing", "product_question/warranty", "order_status", "track_shipment", "invoice_copy"],
)
def test_while_waiting_the_ai_answers_information_questions(intent: str) -> None:
    d = decide(msg("a question", intent), waiting(), MATRIX)
    assert (d.action, d.mode, d.detail, d.tier) == ("answer_waiting", "human", "while_waiting", "high")
    assert d.slot_updates() == {}


@pytest.mark.parametrize(
    "parse",
    [
        msg("i want my money back", "refund_request"),  # not informational
        msg("i'd like to upgrade", "upgrade_interest"),  # informational, but a collect row
        msg("when are you open", "opening_hours", 0.6),  # not sure enough
        msg("when are you open? my lawyer asks", "opening_hours", signals=(Signal("legal", "lawyer", 23, 29),)),
        msg("hello?", "greet"),
    ],
)
def test_while_waiting_anything_else_goes_to_the_case(parse: Parse) -> None:
    d = decide(parse, waiting(), MATRIX)
    assert (d.action, d.mode, d.detail) == ("silent", "human", "human_mode")


def test_once_a_person_has_joined_the_ai_is_silent() -> None:
    for joined in (True, None):
        d = decide(
            msg("when are you open", "opening_hours"), Conversation(handoff_mode="human", human_joined=joined), MATRIX
        )
        assert d.action == "silent"


# --- resolutions and hand-back expiry -------------------------------------------------------------


def resolved(minutes_ago: float, **extra) -> Conversation:
    at = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat()
    resolution = {
        "consultation_id": "c1",
        "intent": "billing_dispute",
        "outcome": "approved",
        "text": "Credited.",
        "by": "Dana",
        "team": "billing",
        "at": at,
        **extra.pop("resolution", {}),
    }
    return Conversation(resolution=resolution, now=NOW, amount=900.0, currency="EUR", **extra)


def test_the_topic_of_a_fresh_resolution_is_told_once() -> None:
    d = decide(msg("what happened with my dispute", "billing_dispute"), resolved(30), MATRIX)
    assert (d.action, d.detail) == ("tell_resolution", "resolution")
    assert d.evidence["resolution"]["outcome"] == "approved"
    told = decide(
        msg("what happened with my dispute", "billing_dispute"), resolved(30, resolution={"told": True}), MATRIX
    )
    assert (told.action, told.detail) == ("handoff", "refund_over_limit")  # the case's own amount, again
    stale = decide(
        msg("what happened with my dispute", "billing_dispute"), resolved(MATRIX.hand_back_minutes + 1), MATRIX
    )
    assert stale.action == "handoff"
    other = decide(msg("where is my order", "order_status"), resolved(30), MATRIX)
    assert other.action == "answer"


def test_new_business_on_the_same_topic_is_not_a_resolution() -> None:
    new_amount = decide(msg("another 600 euros charge", "billing_dispute", entities=eur(600)), resolved(30), MATRIX)
    assert (new_amount.action, new_amount.detail) == ("handoff", "refund_over_limit")
    lawyer = decide(
        msg("my lawyer", "billing_dispute", signals=(Signal("legal", "lawyer", 3, 9),)), resolved(30), MATRIX
    )
    assert (lawyer.action, lawyer.reason) == ("handoff", "sensitive_topic")
    assert {"legal", "refund_over_limit"} <= {f["category"] for f in lawyer.evidence["sensitive_topic"]["fired"]}


def handed_back(minutes_ago: float, this_session: bool = True) -> Conversation:
    at = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat()
    return Conversation(
        handoff_mode="handed_back",
        allowed_intents=frozenset({"opening_hours"}),
        now=NOW,
        resolution={"intent": "request_human", "outcome": "handed_back", "at": at},
        handback_this_session=this_session,
    )


def test_hand_back_limits_apply_until_they_expire() -> None:
    cancel = msg("cancel my subscription", "cancel_subscription")
    assert decide(cancel, handed_back(10), MATRIX).detail == "outside_handback"
    late = decide(cancel, handed_back(MATRIX.hand_back_minutes + 5), MATRIX)
    assert (late.action, late.evidence["handback_lapsed"]) == ("collect", {"expires_after_minutes": 240})
    next_session = decide(cancel, handed_back(10, this_session=False), MATRIX)
    assert next_session.action == "collect"


# --- messages without words -----------------------------------------------------------------------


MASH = (Signal("no_known_words", "asdfgh jkl", 0, 10),)


def test_a_first_message_without_known_words_asks_to_rephrase_a_second_escalates() -> None:
    first = decide(msg("asdfgh jkl", "out_of_scope", 0.2, signals=MASH), Conversation(), MATRIX)
    assert (first.action, first.detail) == ("clarify", "no_known_words")
    history = (Turn("asdfgh jkl", "out_of_scope", "Sorry, I didn't catch that.", signals=MASH),)
    second = decide(
        msg("qwxz vbnm", "out_of_scope", 0.2, signals=(Signal("no_known_words", "qwxz vbnm", 0, 9),)),
        Conversation(history=history),
        MATRIX,
    )
    assert (second.action, second.mode, second.reason, second.detail) == (
        "handoff",
        "human",
        "low_confidence",
        "not_understood",
    )
    emoji_twice = decide(
        msg("🙄", "frustration", 0.3), Conversation(history=(Turn("???", "out_of_scope", "Sorry"),)), MATRIX
    )
    assert (emoji_twice.action, emoji_twice.detail) == ("handoff", "not_understood")
    understood = decide(msg("where is my order", "order_status"), Conversation(history=history), MATRIX)
    assert understood.action == "answer"
