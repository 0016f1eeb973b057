"""General information from the business DB: support opening hours and catalogue prices."""

from datetime import datetime
from typing import Callable, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import first, lookup_async, slot_or_entity
from backline.business import replies


class ActionOpeningHours(Action):
    """Support hours and whether support is open right now."""

    clock: Callable[[], datetime] = staticmethod(replies.utc_now)

    def name(self) -> Text:
        return "action_opening_hours"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        now = self.clock()
        reply = await lookup_async(dispatcher, "opening hours", lambda: replies.opening_hours_reply(now=now))
        if reply is not None:
            dispatcher.utter_message(text=reply.text)
        return []


class ActionPricing(Action):
    """Catalogue prices; the product slot (or entity) narrows the answer to one product."""

    def name(self) -> Text:
        return "action_pricing"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        product = first(slot_or_entity(tracker, "product"))
        reply = await lookup_async(dispatcher, "pricing", lambda: replies.pricing_reply(product))
        if reply is not None:
            dispatcher.utter_message(text=reply.text)
        return []
