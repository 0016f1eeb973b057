"""The routing decision engine on the matrix's exception categories (legal, complaint, compromised
account, refunds over the limit), failing closed on an amount in a currency without a rate, and
no convergence. The builders: tests/routing_engine_kit.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Dict, Tuple

import pytest

from backline.nlp.money import find_money
from backline.routing.engine import (
    Turn,
    decide,
)
from tests.routing_engine_kit import (
    ANSWER_LICENSE,
    ANSWER_PW,
    MATRIX,
    NC,
    NEUTRAL,
    conv,
    money,
    msg,
    sig,
    turn,
    with_triggers,
)

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
