"""A known history for the governance suites: five conversations written by Rasa's own SQLTrackerStore
(real events) and three cases in the consultation store with their replies, an override, verdicts and a
satisfaction answer (`seed`). What each metric must be over it is stated in the tests."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Tuple

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from backline.consult.replies import Reply, record_reply
from backline.consult.store import ConsultationStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # Tuesday, 10:00 in Berlin: business hours
NOW = T0 + dt.timedelta(days=10)


def ts(minutes: float) -> float:
    return (T0 + dt.timedelta(minutes=minutes)).timestamp()


def user(text: str, intent: str, minutes: float, channel: str) -> UserUttered:
    parse = {"intent": {"name": intent, "confidence": 0.93}, "entities": [], "text": text}
    return UserUttered(text, parse["intent"], [], parse, timestamp=ts(minutes), input_channel=channel)


def decision(action: str, intent: str, minutes: float, **extra: Any) -> SlotSet:
    record = {"action": action, "intent": intent, "confidence": 0.93, "tier": "high", "triggers": [], **extra}
    return SlotSet("routing_decision", record, timestamp=ts(minutes))


CONVERSATIONS: Dict[str, List[Event]] = {
    "t-web-1": [
        user("where is my order 4711", "order_status", 0, "socketio"),
        decision("answer", "order_status", 0.01),
        BotUttered("Your order 4711 left our warehouse yesterday.", timestamp=ts(0.02)),
    ],
    "t-tg-1": [
        user("I want my 900 EUR back", "refund_request", 5, "telegram"),
        decision("handoff", "refund_request", 5.01, reason="sensitive_topic", queue="billing"),
        ActionExecuted("action_handoff", timestamp=ts(5.02)),
    ],
    "t-rest-1": [
        user("my invoice is wrong", "invoice_wrong", 10, "rest"),
        decision("consult", "invoice_wrong", 10.01, reason="medium_confidence", queue="billing"),
        ActionExecuted("action_consult", timestamp=ts(10.02)),
    ],
    "t-web-2": [
        user("order status please", "order_status", 20, "socketio"),
        decision("answer", "order_status", 20.01),
        BotUttered("It is on its way.", timestamp=ts(20.02)),
        user("that does not help", "answer_rejected", 21, "socketio"),
        decision("handoff", "answer_rejected", 21.01, reason="no_convergence", queue="support"),
        ActionExecuted("action_handoff", timestamp=ts(21.02)),
    ],
    "t-slack-1": [
        user("what does the pro plan cost", "pricing", 8 * 24 * 60, "slack"),
        decision("answer", "pricing", 8 * 24 * 60 + 0.01),
        BotUttered("Pro is 49 EUR a month.", timestamp=ts(8 * 24 * 60 + 0.02)),
    ],
}


def write_trackers(url: str) -> None:
    domain = Domain.load(str(Path(__file__).resolve().parents[1] / "domain.yml"))
    store = SQLTrackerStore(domain, dialect="sqlite", db=url.removeprefix("sqlite:///"))

    async def save() -> None:
        for conversation_id, events in CONVERSATIONS.items():
            await store.save(DialogueStateTracker.from_events(conversation_id, events, domain.slots))

    asyncio.run(save())


def seed(store: ConsultationStore) -> Tuple[str, str, str]:
    """The three cases (k1 handed back, k2's draft denied for policy, k3 closed), as of T0."""
    minute = dt.timedelta(minutes=1)
    k1 = store.create(
        conversation_id="t-tg-1",
        mode="handoff",
        queue="billing",
        reasons=["sensitive_topic"],
        brief={"intent": "refund_request"},
        now=T0 + 5 * minute,
    ).id
    k2 = store.create(
        conversation_id="t-rest-1",
        mode="consult",
        queue="billing",
        reasons=["medium_confidence"],
        brief={"intent": "invoice_wrong"},
        ai_draft="Your invoice is correct.",
        now=T0 + 10 * minute,
    ).id
    k3 = store.create(
        conversation_id="t-web-2",
        mode="handoff",
        queue="support",
        reasons=["no_convergence"],
        brief={"intent": "order_status"},
        now=T0 + 21 * minute,
    ).id
    record_reply(store, k1, "mara", "slack", Reply("hand_back", "Refund sent."), now=T0 + 15 * minute)
    record_reply(
        store,
        k2,
        "jonas",
        "telegram",
        Reply("deny", "We cannot change invoices after 30 days.", override_reason="policy"),
        now=T0 + 40 * minute,
    )
    record_reply(store, k3, "felix", "dashboard", Reply("close", "Your parcel arrives tomorrow."), now=T0 + 31 * minute)
    return k1, k2, k3
