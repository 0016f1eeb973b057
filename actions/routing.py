"""Escalation actions: open the consultation the routing policy decided on, and tell the customer.

The routing policy has already set `handoff_mode`, `escalation_reason`, `escalation_detail`
and `routing_decision` when these run. Each action says why (the most specific domain
response), opens the consultation (context package, expert choice, notification) and says
how long it usually takes; the consultation's id goes to the `consultation_id` slot.
"""

import asyncio
import functools
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from backline import configuration
from backline.consult.quotas import CLIENT_KEY, EscalationLimited
from backline.consult.service import ConsultationService, transcript_from_events
from backline.routing.announce import draft_answer, response_for

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def consultations() -> ConsultationService:
    """The action server's consultation service, configured from the environment."""
    return ConsultationService.from_env()


def _client(tracker: Tracker) -> Optional[str]:
    """The hashed client address the customer channel stamped on the latest user message, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            value = (event.get("metadata") or {}).get(CLIENT_KEY)
            return value if isinstance(value, str) and value else None
    return None


async def escalate(
    kind: Text,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    domain: DomainDict,
    draft: Optional[str] = None,
    announce: bool = True,
) -> List[EventType]:
    """Announce (unless the caller did), open the consultation, tell the wait; a store failure never
    leaves the customer unanswered."""
    record: Dict[str, Any] = tracker.get_slot("routing_decision") or {}
    team = configuration.team_name(record.get("queue"))
    if announce:
        dispatcher.utter_message(response=response_for(kind, record, domain.get("responses", {})), team=team)
    parse = tracker.latest_message or {}
    try:
        service = await asyncio.to_thread(consultations)  # the first call opens (and migrates) the store
        opened = await asyncio.to_thread(
            service.open,
            tracker.sender_id,
            {**record, "action": kind},
            transcript=transcript_from_events(tracker.events),
            slots=tracker.current_slot_values(),
            ai_draft=draft,
            sentiment=(parse.get("sentiment") or {}).get("compound"),
            ranking=parse.get("intent_ranking") or (),
            client=_client(tracker),
        )
    except EscalationLimited as limited:
        logger.warning("conversation %s: escalation limited (%s)", tracker.sender_id, limited.limit)
        dispatcher.utter_message(text=limited.text)
        return [SlotSet("consultation_id", limited.consultation.id)] if limited.consultation else []
    except Exception:
        logger.exception("conversation %s: the consultation could not be opened", tracker.sender_id)
        dispatcher.utter_message(response="utter_escalation_pending", team=team)
        return []
    dispatcher.utter_message(text=opened.customer_text)
    return [SlotSet("consultation_id", opened.consultation.id)]


class ActionHandoff(Action):
    """Hand the conversation to a person: why, whom it went to, how long it usually takes."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events = await escalate("handoff", dispatcher, tracker, domain)
        return [SlotSet("human_joined", False), *events]


class ActionConsult(Action):
    """Keep the AI in front while an expert reviews its draft: tell the customer, keep the draft."""

    def name(self) -> Text:
        return "action_consult"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        record = tracker.get_slot("routing_decision") or {}
        draft = draft_answer(record.get("intent") or "", domain.get("responses", {}), tracker.latest_message or {})
        events = await escalate("consult", dispatcher, tracker, domain, draft)
        return [SlotSet("ai_draft", draft), *events]
