"""collect_then_route: validating what the `collect_<intent>` forms gather, and routing it.

One `FormValidationAction` per collect_then_route row of escalation.yml (``validate_collect_<intent>``),
each field checked by `backline.business.checks`; `action_route_collected` then opens the consultation
the routing policy decided (`backline.routing.engine.route_collected`, in the ``routing_decision`` slot)
with the collected facts in the brief, tells the customer what happens next and the wait, and keeps the
AI's draft outcome for the expert to approve.
"""

import asyncio
import logging
from typing import Any, Dict, List, Mapping, Text, Type

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.routing import escalate
from backline import configuration
from backline.business import answers
from backline.business.checks import CHECKS, Checked
from backline.money import format_money
from backline.routing.collect import LABELS, form_name

logger = logging.getLogger(__name__)
MATRIX = configuration.matrix()  # $BACKLINE_MATRIX, default the project's escalation.yml


def facts_line(facts: Mapping[str, Any]) -> str:
    """'order 10023, amount 49.90 EUR': the collected facts as the customer reads them back."""
    parts = []
    for name, value in facts.items():
        if name == "amount" and isinstance(value, Mapping):
            value = format_money(value.get("value"), value.get("currency")) or value.get("value")
        elif name == "issue_details":
            continue
        parts.append(f"{LABELS.get(name, name).lower()} {value}")
    return ", ".join(parts) or "your details"


def _draft(intent: str, slots: Mapping[str, Any], responses: Mapping[str, Any]) -> Any:
    variants = responses.get(f"utter_draft_{intent}") or []
    if not variants or not variants[0].get("text"):
        return None
    values = dict(slots)
    if slots.get("amount") is not None:
        values["amount"] = format_money(slots.get("amount"), slots.get("currency") or "EUR")
    try:
        return variants[0]["text"].format_map({k: ("" if v is None else v) for k, v in values.items()})
    except (KeyError, ValueError):
        return None


def _validator(intent: str) -> Type[FormValidationAction]:
    """The validation action of one collect form: each field through its business check."""

    def validate(field_name: str):
        async def method(
            self: Any, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
        ) -> Dict[Text, Any]:
            collected = tracker.current_slot_values()
            try:
                checked: Checked = await asyncio.to_thread(CHECKS[field_name], slot_value, collected)
            except (SQLAlchemyError, LookupError):
                logger.exception("business DB check failed for %s", field_name)
                dispatcher.utter_message(text=answers.BACKEND_UNAVAILABLE)
                return {field_name: None}
            if checked.value is None and checked.text:
                dispatcher.utter_message(text=checked.text)
            return {field_name: checked.value, **(checked.extra if checked.value is not None else {})}

        method.__name__ = f"validate_{field_name}"
        return method

    name = f"validate_{form_name(intent)}"
    body: Dict[str, Any] = {"name": lambda self: name}
    for field_name in MATRIX.rows[intent].collect:
        body[f"validate_{field_name}"] = validate(field_name)
    return type(f"ValidateCollect_{intent}", (FormValidationAction,), body)


VALIDATORS = [_validator(row.intent) for row in MATRIX.collect_rows()]


class ActionRouteCollected(Action):
    """The form has the details: open the consultation, say what happens next and the wait."""

    def name(self) -> Text:
        return "action_route_collected"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        record: Dict[str, Any] = tracker.get_slot("routing_decision") or {}
        intent = record.get("row") or record.get("intent") or ""
        facts = ((record.get("evidence") or {}).get("collected") or {}).get("fields") or {}
        responses = domain.get("responses", {})
        specific = f"utter_routed_{intent}"
        dispatcher.utter_message(
            response=specific if specific in responses else "utter_routed",
            team=configuration.team_name(record.get("queue")),
            facts=facts_line(facts),
        )
        draft = _draft(intent, tracker.current_slot_values(), responses)
        events = await escalate("consult", dispatcher, tracker, domain, draft, announce=False)
        return [SlotSet("ai_draft", draft), *events]
