"""Escalation actions: tell the customer what happens next after the routing policy decided.

The routing policy has already set `handoff_mode`, `escalation_reason`,
`escalation_detail` and `routing_decision` when these run. Until experts are
reached (consultations), they only announce the handover honestly.
"""
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from backline.routing.announce import draft_answer, response_for, team_name


def _announce(kind: Text, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[str, Any]:
    """Send the most specific `kind` response (handoff or consult), naming the team; return the decision record."""
    record = tracker.get_slot("routing_decision") or {}
    response = response_for(kind, record, domain.get("responses", {}))
    dispatcher.utter_message(response=response, team=team_name(record.get("queue")))
    return record


class ActionHandoff(Action):
    """Hand the conversation to a person: say so, and why, in one message."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        _announce("handoff", dispatcher, tracker, domain)
        return []


class ActionConsult(Action):
    """Keep the AI in front while an expert reviews its draft: tell the customer, keep the draft."""

    def name(self) -> Text:
        return "action_consult"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        record = _announce("consult", dispatcher, tracker, domain)
        draft = draft_answer(record.get("intent") or "", domain.get("responses", {}), tracker.latest_message or {})
        return [SlotSet("ai_draft", draft)]
