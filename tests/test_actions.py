"""The rasa-sdk custom actions, run for real against a seeded business DB."""

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from actions.billing import ActionInvoiceCopy, ValidateInvoiceForm
from actions.info import ActionOpeningHours, ActionPricing
from actions.orders import ActionOrderStatus, ValidateOrderForm
from backline.business import answers, db, queries
from tests.conftest import sqlite_url

DOMAIN: Dict[str, Any] = {
    "slots": {
        name: {"type": "text", "mappings": [{"type": "from_entity", "entity": name}]}
        for name in ("order_id", "invoice_id", "product", "email")
    },
    "forms": {
        "order_form": {"required_slots": ["order_id"]},
        "invoice_form": {"required_slots": ["invoice_id"]},
    },
}


def user(intent: str, text: str = "", entities: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.95}, "entities": entities or [], "text": text},
    }


def bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text}


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def make_tracker(
    events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None, active_loop: Optional[str] = None
) -> Tracker:
    latest = next((event["parse_data"] for event in reversed(events) if event["event"] == "user"), {})
    values = {name: None for name in ("order_id", "invoice_id", "product", "email", "customer_tier")}
    values.update(slots or {})
    loop = {"name": active_loop} if active_loop else {}
    return Tracker("test-user", values, latest, events, False, None, loop, "action_listen")


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return [message["text"] for message in dispatcher.messages], events


@pytest.fixture
def order_10023(business_env: str) -> queries.OrderInfo:
    with db.session_scope(business_env) as session:
        return queries.get_order(session, "10023")


@pytest.fixture
def broken_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A reachable database without the business tables (never seeded)."""
    url = sqlite_url(tmp_path / "empty.db")
    monkeypatch.setenv(db.ENV_URL, url)
    return url


def test_action_server_registers_every_action() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert {
        "action_order_status",
        "action_invoice_copy",
        "action_opening_hours",
        "action_pricing",
        "validate_order_form",
        "validate_invoice_form",
    } <= set(executor.actions)


# --- action_order_status ----------------------------------------------------------------------


def test_order_status_answers_from_the_db(order_10023: queries.OrderInfo) -> None:
    tracker = make_tracker([user("order_status", "where is my order 10023?")], {"order_id": "10023"})
    [text], events = run(ActionOrderStatus(), tracker)
    assert text.startswith("Order 10023 (Kestrel Hub X1) has shipped")
    assert f"with {order_10023.carrier}" in text and order_10023.carrier == "DHL"
    assert f"Tracking number: {order_10023.tracking_number}" in text
    assert order_10023.tracking_url in text
    today = datetime.now(queries.ZoneInfo("Europe/Berlin")).date()
    assert f"it should arrive {answers.on_day(order_10023.estimated_delivery, today)}." in text
    assert events == [SlotSet("order_id", "10023"), SlotSet("customer_tier", "plus")]


def test_track_shipment_after_the_form_leads_with_tracking(order_10023: queries.OrderInfo) -> None:
    tracker = make_tracker(
        [
            user("track_shipment", "where is my parcel?"),
            bot("What's your order number?"),
            user("inform", "it's #10023", [{"entity": "order_id", "value": "10023"}]),
            slot("order_id", "10023"),
        ],
        {"order_id": "10023"},
    )
    [text], events = run(ActionOrderStatus(), tracker)
    assert text.startswith(f"Order 10023 (Kestrel Hub X1) is with DHL, tracking number {order_10023.tracking_number}")
    assert SlotSet("customer_tier", "plus") in events


def test_order_status_falls_back_to_the_entity(business_env: str) -> None:
    tracker = make_tracker([user("order_status", "status of #10042", [{"entity": "order_id", "value": "#10042"}])])
    [text], events = run(ActionOrderStatus(), tracker)
    assert text.startswith("Order 10042 (Kestrel Hub X2) is on its way")
    assert "1Z9A4F860312345678" in text
    assert events == [SlotSet("order_id", "10042"), SlotSet("customer_tier", "standard")]


def test_order_status_for_enterprise_customer_sets_tier(business_env: str) -> None:
    [text], events = run(ActionOrderStatus(), make_tracker([user("order_status")], {"order_id": "10034"}))
    assert "is being processed and hasn't shipped yet" in text
    assert SlotSet("customer_tier", "enterprise") in events


def test_unknown_order_is_cleared_without_crash(business_env: str) -> None:
    [text], events = run(ActionOrderStatus(), make_tracker([user("order_status")], {"order_id": "99999"}))
    assert text == "I couldn't find order 99999 — could you check the number?"
    assert events == [SlotSet("order_id", None)]


def test_missing_order_number_is_asked_for(business_env: str) -> None:
    [text], events = run(ActionOrderStatus(), make_tracker([user("order_status", "where is my order?")]))
    assert text == answers.ASK_ORDER_ID
    assert events == [SlotSet("order_id", None)]


def test_order_status_apologises_when_the_db_is_unusable(broken_db: str) -> None:
    [text], events = run(ActionOrderStatus(), make_tracker([user("order_status")], {"order_id": "10023"}))
    assert text == answers.BACKEND_UNAVAILABLE
    assert events == []


# --- action_invoice_copy ----------------------------------------------------------------------


def test_invoice_copy_answers_from_the_db(business_env: str) -> None:
    tracker = make_tracker([user("invoice_copy", "I need invoice INV-2025-0107")], {"invoice_id": "INV-2025-0107"})
    [text], events = run(ActionInvoiceCopy(), tracker)
    assert "Invoice INV-2025-0107 (Order 10007: 1 × Kestrel Dock) was issued on Tuesday 7 January 2025." in text
    assert "Total: €236.81 (€199.00 + €37.81 VAT at 19%). It's paid." in text
    assert "download a PDF copy any time in your Kestrel account at https://account.kestrel.example" in text
    assert not any(word in text.lower() for word in ("e-mail", "email", "sent you", "inbox"))
    assert events == [SlotSet("invoice_id", "INV-2025-0107"), SlotSet("customer_tier", "plus")]


def test_invoice_copy_normalises_the_entity(business_env: str) -> None:
    entity = {"entity": "invoice_id", "value": "inv 2026 0289"}
    tracker = make_tracker([user("invoice_copy", "inv 2026 0289", [entity])])
    [text], events = run(ActionInvoiceCopy(), tracker)
    assert text.startswith("Invoice INV-2026-0289 (Order 10048: 3 × Kestrel Hub X1)")
    assert "It's open and due" in text
    assert events == [SlotSet("invoice_id", "INV-2026-0289"), SlotSet("customer_tier", "enterprise")]


def test_unknown_invoice_is_cleared(business_env: str) -> None:
    [text], events = run(ActionInvoiceCopy(), make_tracker([user("invoice_copy")], {"invoice_id": "INV-2024-0001"}))
    assert text == "I couldn't find invoice INV-2024-0001 — could you check the number?"
    assert events == [SlotSet("invoice_id", None)]


# --- action_opening_hours and action_pricing ---------------------------------------------------


MONDAY_10_CET = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
SUNDAY_12_CET = datetime(2026, 11, 29, 11, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, status",
    [
        (MONDAY_10_CET, "We're open right now, until 18:00."),
        (SUNDAY_12_CET, "We're closed right now; we open again tomorrow at 08:00."),
    ],
)
def test_opening_hours(business_env: str, now: datetime, status: str) -> None:
    action = ActionOpeningHours()
    action.clock = lambda: now
    [text], events = run(action, make_tracker([user("opening_hours", "when are you open?")]))
    assert text.startswith("Our support team is available Monday to Friday 08:00–18:00 and Saturday 10:00–14:00")
    assert text.endswith(status)
    assert events == []


def test_opening_hours_uses_the_real_clock_by_default(business_env: str) -> None:
    [text], _ = run(ActionOpeningHours(), make_tracker([user("opening_hours")]))
    with db.session_scope(business_env) as session:
        is_open = queries.is_open_now(session, datetime.now(timezone.utc))
    assert ("We're open right now" in text) is is_open


def test_pricing_narrowed_by_product_slot(business_env: str) -> None:
    [text], events = run(ActionPricing(), make_tracker([user("pricing")], {"product": "Kestrel Cloud Pro"}))
    assert text.startswith("Kestrel Cloud Pro costs €29.00 per month (excl. VAT).")
    assert events == []


def test_pricing_from_entity_list_and_full_catalogue(business_env: str) -> None:
    [text], _ = run(ActionPricing(), make_tracker([user("pricing")], {"product": ["Kestrel Hub X2", "Kestrel Dock"]}))
    assert text == "Kestrel Hub X2 costs €389.00 (excl. VAT)."
    [catalogue], _ = run(ActionPricing(), make_tracker([user("pricing", "what do your products cost?")]))
    for name, price in (("Kestrel Cloud Starter", "€9.00/month"), ("Kestrel Book 14", "€1,290.00")):
        assert f"{name} {price}" in catalogue


# --- form validation ---------------------------------------------------------------------------


def _validate(action: Any, slot_name: str, value: Any) -> tuple:
    tracker = make_tracker(
        [user("inform", str(value)), slot(slot_name, value)], {slot_name: value}, active_loop=action.form_name()
    )
    return run(action, tracker)


@pytest.mark.parametrize("value", ["#10023", "10023", "order 10023", ["10023"]])
def test_order_form_normalises_known_ids(business_env: str, value: Any) -> None:
    messages, events = _validate(ValidateOrderForm(), "order_id", value)
    assert messages == []
    assert events == [SlotSet("order_id", "10023")]


def test_order_form_rejects_unknown_ids(business_env: str) -> None:
    messages, events = _validate(ValidateOrderForm(), "order_id", "#99999")
    assert messages == ["I couldn't find order 99999 — could you check the number?"]
    assert events == [SlotSet("order_id", None)]


def test_order_form_rejects_malformed_ids(business_env: str) -> None:
    messages, events = _validate(ValidateOrderForm(), "order_id", "123")
    assert messages == [answers.invalid_order_id("123")]
    assert events == [SlotSet("order_id", None)]


def test_order_form_accepts_well_formed_ids_when_the_db_is_unusable(broken_db: str) -> None:
    messages, events = _validate(ValidateOrderForm(), "order_id", "#10023")
    assert messages == []
    assert events == [SlotSet("order_id", "10023")]


@pytest.mark.parametrize("value", ["inv 2025 0107", "INV-2025-0107", "inv-2025-107"])
def test_invoice_form_normalises_known_ids(business_env: str, value: str) -> None:
    messages, events = _validate(ValidateInvoiceForm(), "invoice_id", value)
    assert messages == []
    assert events == [SlotSet("invoice_id", "INV-2025-0107")]


def test_invoice_form_rejects_unknown_and_malformed_ids(business_env: str) -> None:
    messages, events = _validate(ValidateInvoiceForm(), "invoice_id", "INV-2025-9999")
    assert messages == ["I couldn't find invoice INV-2025-9999 — could you check the number?"]
    assert events == [SlotSet("invoice_id", None)]
    messages, events = _validate(ValidateInvoiceForm(), "invoice_id", "my invoice")
    assert messages == [answers.invalid_invoice_id("my invoice")]
    assert events == [SlotSet("invoice_id", None)]


def test_an_expert_reply_is_said_once_per_delivery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actions.expert import ActionExpertUpdate
    from backline.consult.replies import Reply, record_reply
    from backline.consult.store import ConsultationStore

    url = sqlite_url(tmp_path / "consultations.db")
    monkeypatch.setenv("BACKLINE_CONSULT_DB_URL", url)
    with ConsultationStore(url) as store:
        case = store.create(conversation_id="test-user", mode="handoff", queue="billing")
        resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Refund approved."))
    entities = [{"entity": name, "value": value} for name, value in resume.entities.items()]
    trigger = user(resume.intent, entities=entities)
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionExpertUpdate().run(dispatcher, make_tracker([trigger]), DOMAIN))
    message, question = dispatcher.messages  # the answer, then the satisfaction question (governance.yml csat)
    assert message["text"] == "I checked with Mara from our billing team. Refund approved."
    assert question["text"] == "How would you rate the help you got today, from 1 (poor) to 5 (excellent)?"
    assert [b["payload"] for b in question["buttons"]] == [f'/csat_rating{{"csat_score": {n}}}' for n in range(1, 6)]
    assert SlotSet("csat_pending", case.id) in events
    assert message["delivery_id"] == resume.delivery_id  # Rasa keeps it in the bot event's metadata
    assert SlotSet("handoff_mode", "ai") in events

    said = {"event": "bot", "text": message["text"], "metadata": {"delivery_id": resume.delivery_id}}
    retry = make_tracker([trigger, said, user(resume.intent, entities=entities)])
    assert run(ActionExpertUpdate(), retry) == ([], [])  # the hub's retry: nothing said twice
