"""While a handoff waits for a person, and after a case is resolved.

`action_answer_while_waiting`: human mode before anyone has joined (`human_joined` false); the routing
policy let an informational question through, so the AI answers it from the business data and says
a person is still on the way. `action_tell_resolution`: the customer comes back to the topic an expert
has just resolved; the AI tells them the recorded outcome (the `case_resolution` slot) once.
"""

import asyncio
import datetime as dt
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import first, lookup, slot_or_entity
from actions.routing import consultations
from backline import configuration
from backline.business import replies
from backline.routing.announce import draft_answer

OUTCOME_VERBS = {
    "approved": "approved",
    "denied": "declined",
    "answered": "answered",
    "closed": "resolved",
    "handed_back": "dealt with",
}
ASK_ORDER = 'I can look that up while you wait: send me the order number in the same message, for example "where is order 10023?"'
ASK_INVOICE = (
    "I can look that up while you wait: send me the invoice number in the same message, for example INV-2025-0107."
)


def _answer(intent: str, tracker: Tracker, domain: DomainDict, dispatcher: CollectingDispatcher) -> Optional[str]:
    """The answer the AI gives alone for an informational intent (None when the lookup failed)."""
    base = intent.split("/", 1)[0]
    if base in ("order_status", "track_shipment"):
        value = slot_or_entity(tracker, "order_id")
        if not value:
            return ASK_ORDER
        focus = "tracking" if base == "track_shipment" else "status"
        reply = lookup(dispatcher, "order status", lambda: replies.order_status_reply(value, focus=focus))
    elif base == "invoice_copy":
        value = slot_or_entity(tracker, "invoice_id")
        if not value:
            return ASK_INVOICE
        reply = lookup(dispatcher, "invoice", lambda: replies.invoice_reply(value))
    elif base == "opening_hours":
        reply = lookup(dispatcher, "opening hours", lambda: replies.opening_hours_reply())
    elif base == "pricing":
        product = first(slot_or_entity(tracker, "product"))
        reply = lookup(dispatcher, "pricing", lambda: replies.pricing_reply(product))
    else:
        return draft_answer(intent, domain.get("responses", {}), tracker.latest_message or {})
    return reply.text if reply is not None else None


async def _case_team(tracker: Tracker) -> str:
    consultation_id = tracker.get_slot("consultation_id")
    if not consultation_id:
        return configuration.team_name(None)
    service = await asyncio.to_thread(consultations)  # the first call opens (and migrates) the store
    case = await asyncio.to_thread(service.store.get, consultation_id)
    return service.directory.team_name(case.queue if case is not None else None)


class ActionAnswerWhileWaiting(Action):
    """An informational answer in human mode before a person has joined, saying so."""

    def name(self) -> Text:
        return "action_answer_while_waiting"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        record: Dict[str, Any] = tracker.get_slot("routing_decision") or {}
        team = await _case_team(tracker)
        text = await asyncio.to_thread(_answer, record.get("intent") or "", tracker, domain, dispatcher)
        if text is None:
            return []
        dispatcher.utter_message(response="utter_while_waiting", team=team)
        dispatcher.utter_message(text=text)
        dispatcher.utter_message(response="utter_still_waiting", team=team)
        return []


def resolution_text(resolution: Dict[str, Any]) -> str:
    """'About your earlier request: Dana from our billing team approved it on 3 December. <text>'."""
    verb = OUTCOME_VERBS.get(str(resolution.get("outcome")), "dealt with")
    who = resolution.get("by") or "a colleague"
    team = resolution.get("team") or "customer support"
    when = ""
    try:
        at = dt.datetime.fromisoformat(str(resolution.get("at")).replace("Z", "+00:00"))
        when = f" on {at.day} {at:%B} at {at:%H:%M} UTC"
    except ValueError:
        pass
    body = str(resolution.get("text") or "").strip()
    return (
        f"About your earlier request: {who} from our {team} team {verb} it{when}."
        + (f" {body}" if body else "")
        + " If this is about something new, tell me and I'll help."
    )


class ActionTellResolution(Action):
    """The recorded outcome of the customer's last case, once."""

    def name(self) -> Text:
        return "action_tell_resolution"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        resolution = tracker.get_slot("case_resolution")
        if not isinstance(resolution, dict):
            return []
        dispatcher.utter_message(text=resolution_text(resolution))
        return [SlotSet("case_resolution", {**resolution, "told": True})]
