"""A known history for the governance suites: five conversations written by Rasa's own SQLTrackerStore
(real events) and three cases in the consultation store with their replies, an override, verdicts and a
satisfaction answer (`seed`). What each metric must be over it is stated in the tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from backline.consult.replies import Reply, record_reply
from backline.consult.store import ConsultationStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # Tuesday, 10:00 in Berlin: business hours
NOW = T0 + dt.timedelta(days=10)


def turn(
    text: str,
    intent: str,
    when: dt.datetime,
    action: str,
    *,
    channel: str = "socketio",
    reply: Optional[str] = None,
    said: Optional[str] = None,
    **record: Any,
) -> List[Event]:
    """One customer turn as Rasa records it: the user message (parse data, input channel), the routing
    policy's ``routing_decision`` record (none when ``action`` is empty) and what followed: for ``answer``
    the AI's reply (``reply``, default "About <intent>."), else the escalating action (and ``said``)."""
    stamp = when.timestamp()
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.93}, "entities": [], "intent_ranking": []}
    events: List[Event] = [UserUttered(text, parse["intent"], [], parse, timestamp=stamp, input_channel=channel)]
    if not action:
        return events
    decision = {"action": action, "intent": intent, "confidence": 0.93, "tier": "high", "triggers": [], **record}
    events.append(SlotSet("routing_decision", decision, timestamp=stamp + 0.1))
    if action == "answer":
        events.append(BotUttered(reply or f"About {intent}.", timestamp=stamp + 0.2))
    else:
        events.append(ActionExecuted(f"action_{action}", timestamp=stamp + 0.2))
        if said:
            events.append(BotUttered(said, timestamp=stamp + 0.3))
    return events


def save_conversations(url: str, conversations: Dict[str, List[Event]]) -> str:
    """Write ``conversations`` (id: events) with Rasa's own SQLTrackerStore into the SQLite ``url``."""
    domain = Domain.load(str(Path(__file__).resolve().parents[1] / "domain.yml"))
    store = SQLTrackerStore(domain, dialect="sqlite", db=url.removeprefix("sqlite:///"))

    async def save() -> None:
        for conversation_id, events in conversations.items():
            await store.save(DialogueStateTracker.from_events(conversation_id, events, domain.slots))

    worker = threading.Thread(target=asyncio.run, args=(save(),))  # its own loop: callers may be inside one
    worker.start()
    worker.join()
    store.engine.dispose()
    return url


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


DAY = 24 * 60
CONVERSATIONS: Dict[str, List[Event]] = {
    "t-web-1": turn(
        "where is my order 4711", "order_status", minutes(0), "answer",
        reply="Your order 4711 left our warehouse yesterday.",
    ),
    "t-tg-1": turn(
        "I want my 900 EUR back", "refund_request", minutes(5), "handoff", channel="telegram",
        reason="sensitive_topic", queue="billing",
    ),
    "t-rest-1": turn(
        "my invoice is wrong", "invoice_wrong", minutes(10), "consult", channel="rest",
        reason="medium_confidence", queue="billing",
    ),
    "t-web-2": [
        *turn("order status please", "order_status", minutes(20), "answer", reply="It is on its way."),
        *turn(
            "that does not help", "answer_rejected", minutes(21), "handoff", reason="no_convergence", queue="support"
        ),
    ],
    "t-slack-1": turn(
        "what does the pro plan cost", "pricing", minutes(8 * DAY), "answer", channel="slack",
        reply="Pro is 49 EUR a month.",
    ),
}  # fmt: skip


def write_trackers(url: str) -> str:
    """The five conversations of this history, in Rasa's tracker store at ``url``."""
    return save_conversations(url, CONVERSATIONS)


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
