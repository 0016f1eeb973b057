"""The escalation actions and what they tell the customer, from the policy's decision record."""
import asyncio
from typing import Any, Dict, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.routing import ActionConsult, ActionHandoff
from backline.routing.announce import draft_answer, response_for, team_name
from tests.servers import PROJECT_ROOT

DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


def tracker_with(record: Dict[str, Any], parse_data: Optional[Dict[str, Any]] = None) -> Tracker:
    slots = {"routing_decision": record, "handoff_mode": "human"}
    return Tracker("customer", slots, parse_data or {}, [], False, None, {}, "action_listen")


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return dispatcher.messages, events


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"reason": "sensitive_topic", "detail": "legal"}, "utter_handoff_legal"),
        ({"reason": "sensitive_topic", "detail": "refund_over_limit"}, "utter_handoff_refund_over_limit"),
        ({"reason": "explicit_request", "detail": None}, "utter_handoff_explicit_request"),
        ({"reason": "no_convergence", "detail": "repeated_answer"}, "utter_handoff_no_convergence"),
        ({"reason": "policy_action", "detail": "ai_never"}, "utter_handoff"),
        ({}, "utter_handoff"),
    ],
)
def test_the_most_specific_handoff_response_is_chosen(record: Dict[str, Any], expected: str) -> None:
    assert response_for("handoff", record, DOMAIN["responses"]) == expected


def test_every_response_the_actions_can_choose_exists() -> None:
    for kind in ("handoff", "consult"):
        assert f"utter_{kind}" in DOMAIN["responses"]


def test_handoff_announces_the_team_and_never_claims_an_expert_replied() -> None:
    messages, events = run(ActionHandoff(), tracker_with({"reason": "sensitive_topic", "detail": "refund_over_limit", "queue": "billing"}))

    assert messages == [{**messages[0], "response": "utter_handoff_refund_over_limit", "team": "billing"}]
    assert events == []
    text = DOMAIN["responses"]["utter_handoff_refund_over_limit"][0]["text"].lower()
    assert "billing" in text and "replied" not in text and "approved" not in text


def test_consult_tells_the_customer_and_keeps_the_ai_draft() -> None:
    record = {"reason": "medium_confidence", "queue": "support", "intent": "password_reset"}
    messages, events = run(ActionConsult(), tracker_with(record))

    assert messages[0]["response"] == "utter_consult_medium_confidence"
    assert messages[0]["team"] == team_name("support") == "customer support"
    assert events == [SlotSet("ai_draft", DOMAIN["responses"]["utter_password_reset"][0]["text"])]


def test_the_draft_for_a_faq_question_is_the_response_selectors_pick() -> None:
    parse_data = {
        "response_selector": {
            "product_question": {"response": {"responses": [{"text": "Hardware has a 2-year warranty."}]}}
        }
    }
    assert draft_answer("product_question/warranty", DOMAIN["responses"], parse_data) == "Hardware has a 2-year warranty."
    assert draft_answer("made_up_intent", DOMAIN["responses"], {}) is None
