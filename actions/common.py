"""Helpers shared by the actions: reading the tracker and reaching the business DB safely.

An action's ``run`` (and a form's ``validate_<slot>``) is a coroutine on the action server's event
loop: it reaches a database only through `lookup_async` (or ``asyncio.to_thread``, as the escalation
actions in `actions.routing` do), so a slow query never holds up the other conversations.
"""

import asyncio
import logging
from typing import Any, Callable, Dict, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from backline.business import answers
from backline.business.replies import Reply

logger = logging.getLogger(__name__)

FOLLOW_UP_INTENTS = frozenset({"inform", "affirm", "deny"})


def topic_intent(tracker: Tracker, default: str) -> str:
    """The intent of the customer's latest request, skipping answers to our questions ('it's 10023')."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        name = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if name and name not in FOLLOW_UP_INTENTS:
            return name
    latest = (tracker.latest_message or {}).get("intent") or {}
    name = latest.get("name")
    return name if name and name not in FOLLOW_UP_INTENTS else default


def slot_or_entity(tracker: Tracker, name: str) -> Any:
    """The slot's value, else the latest message's entity of the same name."""
    value = tracker.get_slot(name)
    if value is None or value == []:
        value = next(tracker.get_latest_entity_values(name), None)
    return value


def first(value: Any) -> Any:
    """The first item of a list slot value, or the value itself."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def lookup(
    dispatcher: CollectingDispatcher, what: str, call: Callable[[], Reply], fallback: Optional[Reply] = None
) -> Optional[Reply]:
    """Run a business-DB call; on a database error apologise (or return `fallback`) instead of crashing."""
    try:
        return call()
    except (SQLAlchemyError, LookupError):
        logger.exception("business DB lookup failed: %s (is it seeded? `python -m backline seed`)", what)
        if fallback is not None:
            return fallback
        dispatcher.utter_message(text=answers.BACKEND_UNAVAILABLE)
        return None


async def lookup_async(
    dispatcher: CollectingDispatcher, what: str, call: Callable[[], Reply], fallback: Optional[Reply] = None
) -> Optional[Reply]:
    """`lookup` off the event loop: the business-DB call runs in a worker thread."""
    return await asyncio.to_thread(lookup, dispatcher, what, call, fallback)


def accept_or_reject(dispatcher: CollectingDispatcher, slot: str, reply: Optional[Reply]) -> Dict[str, Any]:
    """Form validation result: the normalised id, or None (after telling the customer why) to ask again."""
    if reply is not None and reply.found:
        return {slot: reply.record_id}
    if reply is not None and reply.text:
        dispatcher.utter_message(text=reply.text)
    return {slot: None}
