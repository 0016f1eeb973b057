"""Invoice details from the business DB, and the invoice form's validation.

Same slot policy as orders: a verified `invoice_id` is kept for follow-ups and escalation
context; an unknown or malformed one is cleared so the invoice form asks again. The answer
points to the customer account for the PDF and never claims that anything was e-mailed.
"""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import accept_or_reject, lookup_async, slot_or_entity
from backline.business import replies


class ActionInvoiceCopy(Action):
    """Invoice amounts, status and where to download a copy."""

    def name(self) -> Text:
        return "action_invoice_copy"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        value = slot_or_entity(tracker, "invoice_id")
        reply = await lookup_async(dispatcher, "invoice", lambda: replies.invoice_reply(value))
        if reply is None:
            return []
        dispatcher.utter_message(text=reply.text)
        if not reply.found:
            return [SlotSet("invoice_id", None)]
        return [SlotSet("invoice_id", reply.record_id), SlotSet("customer_tier", reply.customer_tier)]


class ValidateInvoiceForm(FormValidationAction):
    """Normalises the invoice number ('inv 2025 0107' → 'INV-2025-0107') and rejects unknown ones."""

    def name(self) -> Text:
        return "validate_invoice_form"

    async def validate_invoice_id(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        unverified = replies.check_invoice_id(slot_value, verify=False)  # no database: the format only
        reply = await lookup_async(
            dispatcher, "invoice id", lambda: replies.check_invoice_id(slot_value), fallback=unverified
        )
        return accept_or_reject(dispatcher, "invoice_id", reply)
