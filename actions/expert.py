"""The expert side reaching the customer's conversation, and the customer reaching the expert.

`action_expert_update` answers the intents the hub triggers (an expert's reply, a take-over, a
human's message, a hand-back, a delay notice), and after a final decision asks the satisfaction
question (`actions.csat.ask_csat`); `action_relay_to_expert` carries a customer message to the human
in human mode while the AI stays silent.

Exactly once: the hub's outbox sends each reply with a ``delivery_id`` and may send it again when it
did not hear back. The bot message carries the id in its metadata, and a delivery whose id is
already on a bot message of the tracker is answered with silence. Rasa runs trigger_intent under
the conversation's lock, so the second delivery always sees the first one's message.
"""

import asyncio
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.csat import ask_csat
from actions.routing import consultations
from backline.consult.replies import customer_update


def _entities(tracker: Tracker) -> Dict[str, Any]:
    return {e.get("entity"): e.get("value") for e in (tracker.latest_message or {}).get("entities") or []}


def already_delivered(events: List[Dict[str, Any]], delivery_id: Any) -> bool:
    """Whether a bot message of the tracker carries ``delivery_id`` (the hub's retry of a delivery
    whose answer it did not get)."""
    return bool(delivery_id) and any(
        e.get("event") == "bot" and (e.get("metadata") or {}).get("delivery_id") == delivery_id for e in events
    )


class ActionExpertUpdate(Action):
    """Say what the expert decided, in the assistant's voice (or as the named person in human mode)."""

    def name(self) -> Text:
        return "action_expert_update"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        entities = _entities(tracker)
        delivery_id = entities.get("delivery_id")
        if already_delivered(tracker.events, delivery_id):
            return []
        service = await asyncio.to_thread(consultations)  # the first call opens (and migrates) the store
        update = await asyncio.to_thread(
            customer_update,
            service.store,
            service.directory,
            entities.get("consultation_id") or tracker.get_slot("consultation_id"),
            (tracker.latest_message or {}).get("intent", {}).get("name"),
            entities.get("message_id"),
            delivery_id,
        )
        extra = {"delivery_id": delivery_id} if delivery_id else {}
        # The text as the person wrote it; who speaks is the message's metadata (`sender_name`), which
        # each customer channel shows its own way (backline.rasa.channels: metadata on the web chat, a
        # "Name: " prefix on text-only channels).
        dispatcher.utter_message(text=update.text, sender_name=update.sender_name, **extra)
        events: List[EventType] = [SlotSet(name, value) for name, value in update.slots.items()]
        resolution = update.slots.get("case_resolution")
        if isinstance(resolution, dict):  # a final decision (approve, deny, answer, close, hand-back)
            events += await ask_csat(dispatcher, tracker, resolution.get("consultation_id"))
        return events


class ActionRelayToExpert(Action):
    """Human mode: the message goes to the human's thread; the AI says nothing."""

    def name(self) -> Text:
        return "action_relay_to_expert"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        consultation_id = tracker.get_slot("consultation_id")
        text = (tracker.latest_message or {}).get("text")
        if consultation_id and text:
            service = await asyncio.to_thread(consultations)
            await asyncio.to_thread(
                service.relay_to_expert, consultation_id, text, tracker.get_latest_input_channel() or "unknown"
            )
        return []
