"""The context package an expert reads: brief, fields per package, account snapshot, masking, renderings."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pytest
from sqlalchemy.orm import Session

from backline.consult.context import (
    FIELDS,
    account_snapshot,
    build_context,
    format_money,
    lookup_account,
    normalise_transcript,
    render_structured,
    render_text,
)
from backline.routing import load_matrix
from backline.routing.engine import Conversation, Parse, Turn, decide
from backline.routing.signals import Signal

ROOT = Path(__file__).resolve().parents[1]
MATRIX = load_matrix(ROOT / "escalation.yml")
META = {"package", "fields", "case"}

CARD = "4242 4242 4242 4242"
CARD_DIGITS = "4242424242424242"
IBAN = "DE89 3704 0044 0532 0130 00"
T = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc).timestamp()


def record_for(
    text: str,
    intent: str,
    confidence: float,
    *,
    entities: Sequence[Mapping[str, Any]] = (),
    signals: Sequence[Signal] = (),
    ranking: Sequence[tuple] = (),
    sentiment: Optional[float] = None,
    history: Sequence[Turn] = (),
) -> Dict[str, Any]:
    """The routing record the real engine and escalation.yml give for one message."""
    parse = Parse(
        text=text,
        intent=intent,
        confidence=confidence,
        entities=tuple(entities),
        signals=tuple(signals),
        ranking=tuple(ranking),
        sentiment=sentiment,
    )
    return decide(parse, Conversation(history=tuple(history)), MATRIX).as_record()


def signal(name: str, phrase: str, text: str) -> Signal:
    start = text.lower().index(phrase)
    return Signal(name, phrase, start, start + len(phrase))


def eur(value: float, start: int, end: int) -> List[Dict[str, Any]]:
    return [
        {"entity": "amount", "value": value, "start": start, "end": end},
        {"entity": "currency", "value": "EUR", "start": start, "end": end},
    ]


REFUND_TEXT = f"I want my 780 EUR back for order 10023 now, it was charged to my card {CARD}!"
REFUND_TRANSCRIPT = [
    {"role": "customer", "text": "Hi, my Kestrel Hub stopped working", "at": T},
    {
        "role": "assistant",
        "text": "Sorry to hear that! Which order is it about?",
        "at": T + 5,
        "response": "utter_ask_order_id",
    },
    {"role": "customer", "text": "  " + REFUND_TEXT.replace(" now,", "\n now,") + "  ", "at": T + 60},
]


@pytest.fixture(scope="module")
def refund_record() -> Dict[str, Any]:
    start = REFUND_TEXT.index("780")
    return record_for(
        REFUND_TEXT,
        "refund_request",
        0.96,
        entities=eur(780, start, start + 7),
        ranking=(("refund_request", 0.96), ("billing_dispute", 0.06)),
    )


@pytest.fixture
def refund_package(refund_record: Dict[str, Any], business_session: Session) -> Dict[str, Any]:
    slots = {"order_id": "10023", "amount": 780.0, "currency": "EUR", "email": "ann@example.com"}
    account = account_snapshot(business_session, slots)
    return build_context(
        refund_record,
        REFUND_TRANSCRIPT,
        slots,
        MATRIX.context_packages["billing"],
        account,
        ranking=[("refund_request", 0.96), ("billing_dispute", 0.06)],
    )


# --- briefs from realistic routing records ------------------------------------------------------


def test_refund_of_780_eur(refund_record: Dict[str, Any], refund_package: Dict[str, Any]) -> None:
    assert refund_record["detail"] == "refund_over_limit" and refund_record["context_package"] == "billing"
    package = refund_package
    brief = package["brief"]
    assert brief["intent"] == "refund_request"
    assert brief["amount"] == {"value": 780.0, "currency": "EUR", "amount_eur": 780.0, "display": "€780"}
    assert brief["product"] == "Kestrel Hub X1"  # from the order, when no product slot
    assert brief["user_claim"] == (
        "I want my 780 EUR back for order 10023 now, it was charged to my card **** **** **** 4242!"
    )
    assert brief["risk"]["level"] == "high"
    assert brief["risk"]["grounds"] == [
        "refund above the limit: €780 is above the €500 limit",
        "the amount (€780) is more than order 10023's total (€249)",
    ]
    assert package["next_step"] == "Approve or deny the refund of €780 on order 10023"
    assert package["case"] == {
        "mode": "handoff",
        "queue": "billing",
        "priority": "high",
        "reason": "sensitive_topic",
        "detail": "refund_over_limit",
        "sla_minutes": 240,
    }
    assert package["package"] == "billing"
    assert package["reasons"][0]["reason"] == "sensitive_topic"
    assert package["reasons"][0]["evidence"]["limit_eur"] == 500
    assert package["confidence"]["ranking"] == [
        {"intent": "refund_request", "confidence": 0.96},
        {"intent": "billing_dispute", "confidence": 0.06},
    ]
    limits = MATRIX.thresholds("refund_request")
    assert package["confidence"]["thresholds"] == {"high": limits.high, "low": limits.low}
    assert package["ai_attempts"] == [
        {"text": "Sorry to hear that! Which order is it about?", "at": "2026-11-23T09:00:05+00:00"}
    ]
    assert "ai_draft" not in package and "documents_used" not in package  # not in the billing package
    json.dumps(package)


def test_account_snapshot_from_the_demo_db(refund_package: Dict[str, Any]) -> None:
    account = refund_package["account_snapshot"]
    assert account["found"] is True
    assert account["looked_up_by"] == {"order_id": "10023", "email": "ann@example.com"}
    assert account["customer"] == {"name": "Ann Becker", "email": "ann@example.com", "tier": "plus", "country": "DE"}
    assert account["tier"] == "plus"
    assert account["order"]["id"] == "10023" and account["order"]["status"] == "shipped"
    assert account["order"]["total"] == {"value": "249.00", "currency": "EUR", "display": "€249"}
    assert account["order"]["invoices"] == [{"id": "INV-2026-0290", "status": "paid"}]
    assert [(o["id"], o["status"]) for o in account["orders"]] == [("10023", "shipped"), ("10007", "delivered")]
    assert [(i["id"], i["status"]) for i in account["invoices"]] == [
        ("INV-2026-0290", "paid"),
        ("INV-2026-0252", "paid"),
        ("INV-2025-0107", "paid"),
    ]
    assert account["invoices"][0]["total"]["display"] == "€296.31"  # 249 + 19% VAT
    assert account["unpaid_invoices"] == []
    assert account["subscriptions"] == [
        {
            "product": "Kestrel Cloud Pro",
            "plan": "monthly",
            "status": "active",
            "price": {"value": "29.00", "currency": "EUR", "display": "€29"},
            "renews_at": "2026-12-01",
        }
    ]
    assert account["warnings"] == []


def test_account_snapshot_by_invoice_by_email_and_misses(business_session: Session) -> None:
    grace = account_snapshot(business_session, {"invoice_id": "inv 2026 246"})
    assert grace["customer"]["name"] == "Grace Lee" and grace["invoice"]["status"] == "overdue"
    assert grace["unpaid_invoices"] == ["INV-2026-0246"]
    assert [s["status"] for s in grace["subscriptions"]] == ["past_due"]
    assert grace["order"] is None

    nordlicht = account_snapshot(business_session, {"email": " IT@Nordlicht-Logistik.example "})
    assert nordlicht["tier"] == "enterprise" and nordlicht["looked_up_by"] == {"email": "it@nordlicht-logistik.example"}
    assert [o["id"] for o in nordlicht["orders"]] == ["10048", "10097"]

    mixed = account_snapshot(
        business_session, {"order_id": "#10023", "invoice_id": "INV-2026-0246", "email": "grace.lee@example.org"}
    )
    assert mixed["customer"]["name"] == "Ann Becker"  # the order is the strongest key
    assert mixed["warnings"] == [
        "invoice INV-2026-0246 belongs to another customer",
        "the e-mail given (grace.lee@example.org) is not the account's (ann@example.com)",
    ]
    assert account_snapshot(business_session, {"order_id": "99999"}) == {
        "found": False,
        "looked_up_by": {"order_id": "99999"},
    }
    assert account_snapshot(business_session, {"email": "nobody@example.com"})["found"] is False
    assert account_snapshot(business_session, {}) is None
    assert account_snapshot(business_session, {"order_id": "yesterday", "email": "not an address"}) is None
    partly = account_snapshot(business_session, {"order_id": "99999", "email": "ann@example.com"})
    assert partly["customer"]["name"] == "Ann Becker" and partly["warnings"] == ["order 99999 was not found"]


def test_lookup_account_opens_the_business_db(business_url_fixed_day: str) -> None:
    found = lookup_account({"order_id": "10056"}, business_url_fixed_day)
    assert found["customer"]["name"] == "Elena Rossi" and found["order"]["status"] == "delayed"


def test_legal_threat() -> None:
    text = "Fix this today or my lawyer will be in touch, account IBAN " + IBAN
    record = record_for(text, "legal_threat", 0.88, signals=[signal("legal", "lawyer", text)], sentiment=-0.6)
    assert (record["reason"], record["detail"], record["queue"]) == ("sensitive_topic", "legal", "legal")
    transcript = [{"role": "customer", "text": text, "at": T}]
    package = build_context(record, transcript, {}, MATRIX.context_packages["sensitive"], None, sentiment=-0.6)
    assert set(package) - META == {"brief", "sentiment", "account_snapshot", "reasons", "next_step", "transcript"}
    brief = package["brief"]
    assert brief["intent"] == "legal_threat" and brief["amount"] is None and brief["product"] is None
    assert brief["risk"] == {"level": "high", "grounds": ['legal matter ("lawyer")']}
    assert (
        brief["user_claim"] == "Fix this today or my lawyer will be in touch, account IBAN DE** **** **** **** **30 00"
    )
    assert package["sentiment"] == {"score": -0.6, "label": "very negative", "frustrated": False, "trend": []}
    assert package["account_snapshot"] is None
    assert package["next_step"].startswith("Assess the legal matter")
    assert package["reasons"][0]["evidence"]["phrase"] == "lawyer"


def test_medium_confidence_draft_for_review() -> None:
    text = "does the hub x1 still have warranty if it fell off a shelf?"
    record = record_for(
        text, "product_question/warranty", 0.61, ranking=(("product_question/warranty", 0.61), ("damaged_item", 0.3))
    )
    assert (record["action"], record["reason"], record["context_package"]) == ("consult", "medium_confidence", "review")
    transcript = [
        {"role": "user", "text": "Hello", "at": "2026-11-23T09:00:00Z"},
        {"role": "bot", "text": "Hi! How can I help?", "at": "2026-11-23T09:00:01Z", "response": "utter_greet"},
        {"role": "customer", "text": text, "at": "2026-11-23T09:00:30Z"},
    ]
    draft = "The Hub X1 has a 2-year warranty; accidental damage is not covered."
    ranking = [
        {"name": "product_question/warranty", "confidence": 0.61},
        {"name": "damaged_item", "confidence": 0.3},
        {"name": None, "confidence": 0.1},
        "junk",
    ]  # Rasa's intent_ranking, with junk
    package = build_context(
        record,
        transcript,
        {"product": "Kestrel Hub X1", "ai_draft": draft},
        None,
        documents=["product_question/warranty"],
        ranking=ranking,
    )
    assert package["fields"] == list(MATRIX.context_packages["review"])  # default: the record's own fields
    assert package["case"]["mode"] == "consult"
    assert package["ai_draft"] == draft
    assert package["documents_used"] == ["product_question/warranty", "utter_greet"]
    assert package["confidence"]["tier"] == "medium"
    assert package["confidence"]["ranking"] == [
        {"intent": "product_question/warranty", "confidence": 0.61},
        {"intent": "damaged_item", "confidence": 0.3},
    ]
    assert package["brief"]["product"] == "Kestrel Hub X1"
    assert package["brief"]["risk"]["level"] == "medium"
    assert package["brief"]["risk"]["grounds"][0].startswith(
        "confidence 0.61 for product_question/warranty (medium tier"
    )
    assert package["next_step"] == "Approve the AI draft, correct it, or answer yourself"
    assert package["transcript"][0] == {"role": "customer", "text": "Hello", "at": "2026-11-23T09:00:00+00:00"}
    assert "sentiment" not in package and "account_snapshot" not in package


def test_rejected_answer_and_modifiers() -> None:
    answer = "You can reset your password at kestrel.example/reset."
    history = (Turn(text="I can't log in", intent="password_reset", confidence=0.9, answer=answer),)
    record = record_for("that didn't help at all", "answer_rejected", 0.9, history=history)
    package = build_context(record, [{"role": "customer", "text": "that didn't help at all"}], {}, None)
    assert package["ai_attempts"] == [{"text": answer, "at": None}]  # from the record when the transcript lacks it
    assert package["brief"]["risk"]["grounds"] == ["the customer rejected the AI's answer"]
    assert package["next_step"].startswith("The AI's answers did not help")

    record = record_for("this is ridiculous, where is my order??", "order_status", 0.95, sentiment=-0.8)
    assert record["reason"] == "negative_sentiment"
    package = build_context(record, [], {}, ["brief", "sentiment", "reasons"])
    assert package["sentiment"]["score"] == -0.8 and package["sentiment"]["label"] == "very negative"
    assert package["reasons"][0]["grounds"] == "negative sentiment (-0.80 ≤ -0.50)"

    text = "I need a refund of 2400 EUR for our laptops"
    record = record_for(text, "refund_request", 0.95, entities=eur(2400, 19, 27))
    package = build_context(record, [], {"invoice_id": "INV-2026-0257"}, ["brief", "reasons", "next_step"])
    assert [r["reason"] for r in package["reasons"]] == ["sensitive_topic"]
    assert package["next_step"] == "Approve or deny the refund of €2,400 on invoice INV-2026-0257"

    record = record_for("how much is the business plan", "pricing", 0.95)
    record = {
        **record,
        "action": "consult",
        "reason": "high_value",
        "detail": "high_value_customer",
        "triggers": ["high_value"],
        "priority": "urgent",
        "evidence": {
            **record["evidence"],
            "high_value": {"kind": "high_value_customer", "customer_tier": "enterprise"},
        },
    }
    package = build_context(record, [], {}, ["brief"])
    assert package["brief"]["risk"] == {"level": "critical", "grounds": ["high-value customer (enterprise tier)"]}


def test_secondary_triggers_are_listed_after_the_deciding_one() -> None:
    text = "I want a human, and my account was hacked"
    record = record_for(
        text,
        "request_human",
        0.9,
        signals=[signal("explicit_request", "i want a human", text), signal("account_security", "hacked", text)],
    )
    assert record["reason"] == "explicit_request" and record["triggers"] == ["explicit_request", "sensitive_topic"]
    package = build_context(record, [{"role": "customer", "text": text}], {}, ["brief", "reasons", "next_step"])
    assert [(r["reason"], r["detail"]) for r in package["reasons"]] == [
        ("explicit_request", None),
        ("sensitive_topic", "account_security"),
    ]
    assert package["brief"]["risk"]["grounds"] == [
        'the customer asked for a person ("i want a human")',
        'possible account compromise ("hacked")',
    ]
    assert package["next_step"] == "Take over the conversation: the customer asked for a person"


# --- field selection ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MATRIX.context_packages))
def test_each_context_package_includes_exactly_its_fields(name: str, refund_record: Dict[str, Any]) -> None:
    fields = MATRIX.context_packages[name]
    package = build_context(
        refund_record, REFUND_TRANSCRIPT, {"order_id": "10023"}, fields, None, package=name, ai_draft="draft"
    )
    assert set(package) - META == set(fields) | {"brief"}
    assert package["fields"] == [f for f in FIELDS if f in set(fields) | {"brief"}]
    assert package["package"] == name


def test_brief_is_always_there_and_unknown_fields_are_refused(refund_record: Dict[str, Any]) -> None:
    package = build_context(refund_record, [], {}, ["transcript"])
    assert set(package) - META == {"brief", "transcript"}
    with pytest.raises(ValueError):
        build_context(refund_record, [], {}, ["brief", "password"])
    everything = build_context({}, [], None, None)  # nothing known: every field, nothing invented
    assert set(everything) - META == set(FIELDS)
    assert everything["brief"] == {
        "intent": None,
        "amount": None,
        "product": None,
        "user_claim": None,
        "risk": {"level": "medium", "grounds": []},
    }
    assert everything["next_step"] == "Read the conversation and reply to the customer"


# --- masking -------------------------------------------------------------------------------------


def card_forms() -> List[str]:
    return [CARD, CARD_DIGITS, "4242-4242-4242-4242", CARD.replace(" ", " - ").replace(" - ", "-")]


def test_a_card_number_never_leaves_in_the_package_or_its_renderings(
    refund_record: Dict[str, Any], business_session: Session
) -> None:
    transcript = REFUND_TRANSCRIPT + [
        {"role": "assistant", "text": f"Please never send card numbers like {CARD_DIGITS} here."},
        {"role": "customer", "text": f"card 4242-4242-4242-4242 cvv 123, IBAN {IBAN}, password: Hunter2!"},
    ]
    slots = {
        "order_id": "10023",
        "ai_draft": f"Refund to card {CARD}?",
        "product": f"card {CARD_DIGITS}",
        "email": "ann@example.com",
    }
    package = build_context(
        refund_record,
        transcript,
        slots,
        list(FIELDS),
        account_snapshot(business_session, slots),
        documents=[f"note {CARD}"],
    )
    outputs = [
        json.dumps(package, ensure_ascii=False),
        render_text(package),
        json.dumps(render_structured(package), ensure_ascii=False),
    ]
    for output in outputs:
        digits_only = re.sub(r"[\s-]", "", output)
        assert CARD_DIGITS not in digits_only
        assert "37040044053201" not in digits_only
        assert "Hunter2" not in output and "cvv 123" not in output
        assert "**** **** **** 4242" in output
        assert "DE** **** **** **** **30 00" in output
        assert "ann@example.com" in output  # e-mail kept
        assert "10023" in output  # order numbers kept
    assert (
        package["brief"]["user_claim"]
        == package["transcript"][-1]["text"]
        == ("card ****-****-****-4242 cvv ***, IBAN DE** **** **** **** **30 00, password: ********")
    )
    assert package["transcript"][2]["text"].endswith("my card **** **** **** 4242!")
    assert package["ai_draft"] == "Refund to card **** **** **** 4242?"


# --- transcript and renderings --------------------------------------------------------------------


def test_transcript_normalisation() -> None:
    moment = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    lines = normalise_transcript(
        [
            {"role": "user", "text": " hi ", "at": moment},
            {"role": "bot", "text": "hello", "at": moment.timestamp()},
            {"role": "expert", "text": "taking over", "at": "2026-11-23T11:00:00+01:00"},
            {"role": "customer", "text": "ok", "at": "yesterday"},
            {"role": "system", "text": "ignored"},
            {"role": "customer", "text": "   "},
            {"role": "customer", "text": None},
            "garbage",
            None,
        ]
    )
    assert lines == [
        {"role": "customer", "text": "hi", "at": "2026-11-23T10:00:00+00:00"},
        {"role": "assistant", "text": "hello", "at": "2026-11-23T10:00:00+00:00"},
        {"role": "expert", "text": "taking over", "at": "2026-11-23T10:00:00+00:00"},
        {"role": "customer", "text": "ok", "at": None},
    ]


def test_user_claim_is_the_last_customer_message_trimmed(refund_record: Dict[str, Any]) -> None:
    long = "word " * 200
    package = build_context(
        refund_record,
        [
            {"role": "customer", "text": "first"},
            {"role": "customer", "text": long},
            {"role": "assistant", "text": "an answer"},
        ],
        {},
        ["brief"],
    )
    claim = package["brief"]["user_claim"]
    assert len(claim) == 300 and claim.endswith("…") and claim.startswith("word word")


def test_render_text(refund_package: Dict[str, Any]) -> None:
    text = render_text(refund_package)
    lines = text.splitlines()
    assert lines[0] == "Handoff: refund request · billing · high priority"
    assert "Amount: €780" in lines and "Product: Kestrel Hub X1" in lines
    assert "Next step: Approve or deny the refund of €780 on order 10023" in lines
    assert "  Ann Becker <ann@example.com>, plus tier, DE" in lines
    assert "  Order 10023: shipped, 1× Kestrel Hub X1, €249" in lines
    assert "  Subscriptions: Kestrel Cloud Pro monthly active" in lines
    limits = MATRIX.thresholds("refund_request")
    assert f"  refund_request 0.96 (high tier; high ≥ {limits.high:.2f}, low < {limits.low:.2f})" in lines
    assert lines[-4:] == [
        "Transcript:",
        "  09:00 customer: Hi, my Kestrel Hub stopped working",
        "  09:00 assistant: Sorry to hear that! Which order is it about?",
        "  09:01 customer: " + REFUND_TEXT.replace(CARD, "**** **** **** 4242"),  # one line per message
    ]

    short = render_text(refund_package, max_chars=len(text) - 20)
    assert len(short) <= len(text) - 20
    assert "(1 earlier messages not shown)" in short and "Hi, my Kestrel Hub" not in short
    tiny = render_text(refund_package, max_chars=120)
    assert len(tiny) == 120 and tiny.endswith("…") and tiny.startswith("Handoff: refund request")


def test_render_structured(refund_package: Dict[str, Any]) -> None:
    view = render_structured(refund_package)
    assert view["title"] == "Handoff: refund request · billing · high priority"
    assert [item["field"] for item in view["brief"]] == ["intent", "amount", "product", "user_claim", "risk"]
    assert view["brief"][4]["value"].startswith("high — refund above the limit: €780 is above the €500 limit")
    assert [s["field"] for s in view["sections"]] == [
        "sentiment",
        "account_snapshot",
        "ai_attempts",
        "confidence",
        "reasons",
    ]
    assert view["next_step"] == refund_package["next_step"]
    assert view["transcript"] == refund_package["transcript"]
    json.dumps(view)


def test_format_money() -> None:
    assert format_money(780, "EUR") == "€780"
    assert format_money("780.5", "eur") == "€780.50"
    assert format_money(1234.567, "USD") == "$1,234.57"
    assert format_money(12, "GBP") == "£12"
    assert format_money(1200, "CHF") == "CHF 1,200"
    assert format_money(-5, None) == "-€5"
    assert format_money("abc", "EUR") is None and format_money(float("nan"), "EUR") is None


def test_an_amount_without_a_rate_is_explained_not_called_above_the_limit() -> None:
    record = {
        "action": "handoff",
        "reason": "sensitive_topic",
        "detail": "unrated_currency",
        "intent": "refund_request",
        "confidence": 0.99,
        "queue": "billing",
        "evidence": {
            "sensitive_topic": {
                "category": "refund_over_limit",
                "route": "classifier",
                "intent": "refund_request",
                "confidence": 0.99,
                "amount": 80000.0,
                "currency": "JPY",
                "amount_eur": None,
                "no_rate": True,
            }
        },
    }
    package = build_context(record, [{"role": "customer", "text": "i want a refund of 80000 yen"}], {})
    [reason] = package["reasons"]
    assert reason["grounds"] == "JPY 80,000: no rate is configured for JPY, so it was not compared with the limit"
    assert package["brief"]["risk"]["grounds"] == [reason["grounds"]]
    assert package["next_step"] == "Convert the amount of JPY 80,000 yourself, then approve or deny the refund"


def test_the_brief_names_a_category_by_its_label_in_escalation_yml(tmp_path, monkeypatch) -> None:
    """The category words of the expert's brief are escalation.yml's `label`, not Python's."""
    from backline import configuration
    from backline.consult.grounds import category_label

    assert category_label("account_security") == "possible account compromise"
    assert category_label("something_new") == "something new"  # a code the matrix does not know
    edited = (
        (ROOT / "escalation.yml")
        .read_text(encoding="utf-8")
        .replace("label: legal matter", "label: matter for our lawyers")
    )
    assert "matter for our lawyers" in edited
    (tmp_path / "escalation.yml").write_text(edited, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", tmp_path / "signals.yml")
    monkeypatch.setenv(configuration.ENV_MATRIX, str(tmp_path / "escalation.yml"))
    assert category_label("legal") == "matter for our lawyers"
