"""Order status and shipment tracking from the business DB, and the order form's validation.

Slot policy (the same for invoices): after a successful answer `order_id` keeps the verified
number, so follow-ups ("and the tracking number?", a return, a complaint) and the escalation
context package refer to the same order without asking again; a new number from the customer
overwrites it through the slot mapping. An unknown or malformed number is cleared to None, so
the order form asks again.
"""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import accept_or_reject, lookup_async, slot_or_entity, topic_intent
from backline.business import replies


class ActionOrderStatus(Action):
    """Answers order_status and track_shipment; track_shipment leads with the tracking details."""

    def name(self) -> Text:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        value = slot_or_entity(tracker, "order_id")
        focus = "tracking" if topic_intent(tracker, "order_status") == "track_shipment" else "status"
        reply = await lookup_async(dispatcher, "order status", lambda: replies.order_status_reply(value, focus=focus))
        if reply is None:
            return []
        dispatcher.utter_message(text=reply.text)
        if not reply.found:
            return [SlotSet("order_id", None)]
        return [SlotSet("order_id", reply.record_id), SlotSet("customer_tier", reply.customer_tier)]


class ValidateOrderForm(FormValidationAction):
    """Normalises the order number ('#10023' → '10023') and rejects numbers that don't exist."""

    def name(self) -> Text:
        return "validate_order_form"

    async def validate_order_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        unverified = replies.check_order_id(slot_value, verify=False)  # no database: the format only
        reply = await lookup_async(
            dispatcher, "order id", lambda: replies.check_order_id(slot_value), fallback=unverified
        )
        return accept_or_reject(dispatcher, "order_id", reply)
