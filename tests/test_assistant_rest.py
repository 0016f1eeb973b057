"""The real processes: `backline run` (Rasa server, action server, hub) answering over REST."""

from typing import Dict, List, Optional

import pytest
import requests

from backline.business import queries
from backline.business.db import session_scope
from backline.consult.store import ConsultationStore
from tests.servers import Stack

TOKEN = "test-api-token"
CHANNEL = {"Authorization": f"Bearer {Stack.channel_token}"}


@pytest.fixture(scope="module")
def assistant(stack: Stack) -> str:
    return stack.rasa_url


@pytest.fixture(scope="module")
def consult_url(stack: Stack) -> str:
    return stack.consult_url


def say(base_url: str, sender: str, text: str) -> List[Dict]:
    response = requests.post(
        f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, headers=CHANNEL, timeout=60
    )
    response.raise_for_status()
    return response.json()


def tracker(base_url: str, sender: str) -> Dict:
    response = requests.get(f"{base_url}/conversations/{sender}/tracker", params={"token": TOKEN}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_order_status_comes_from_the_database(assistant: str, business_url_today: str) -> None:
    with session_scope(business_url_today) as session:
        order = queries.get_order(session, "10023")
    assert order is not None and order.tracking_number

    messages = say(assistant, "rest-order", "where is my order 10023?")

    text = "\n".join(message.get("text", "") for message in messages)
    assert "10023" in text
    assert order.tracking_number in text
    assert order.carrier in text
    state = tracker(assistant, "rest-order")
    assert state["slots"]["order_id"] == "10023"
    assert state["slots"]["customer_tier"] == order.customer.tier
    assert state["latest_message"]["intent"]["name"] == "order_status"


def test_order_number_asked_for_then_answered(assistant: str) -> None:
    first = say(assistant, "rest-ask", "can i get the tracking number for my parcel please")
    assert any("order number" in message.get("text", "").lower() for message in first)

    second = say(assistant, "rest-ask", "99999")
    assert any("99999" in message.get("text", "") for message in second)
    assert tracker(assistant, "rest-ask")["slots"]["order_id"] is None


def test_the_api_refuses_a_wrong_token(assistant: str) -> None:
    response = requests.get(f"{assistant}/conversations/rest-order/tracker", params={"token": "forged"}, timeout=30)
    assert response.status_code == 401


def slots(base_url: str, sender: str) -> Dict:
    return tracker(base_url, sender)["slots"]


@pytest.mark.parametrize(
    "sender, text, reason, detail",
    [
        ("rest-human", "can i talk to a real person please", "explicit_request", None),
        ("rest-refund", "I want a refund of 1.200,50 € for my laptop", "sensitive_topic", "refund_over_limit"),
        ("rest-refund-usd", "please refund the $900 you charged me", "sensitive_topic", "refund_over_limit"),
        ("rest-lawyer", "where is order 10023? my lawyer is asking", "sensitive_topic", "legal"),
        ("rest-bot-or-human", "are you a bot or a human?", "sensitive_topic", "formal_complaint"),
        ("rest-hacked", "someone logged into my account from another country", "sensitive_topic", "account_security"),
    ],
)
def test_triggers_hand_off_with_their_reason(
    assistant: str, consult_url: str, sender: str, text: str, reason: str, detail: Optional[str]
) -> None:
    messages = say(assistant, sender, text)

    state = tracker(assistant, sender)
    assert (state["slots"]["handoff_mode"], state["slots"]["escalation_reason"]) == ("human", reason)
    assert state["slots"]["escalation_detail"] == detail
    handoff = [e for e in state["events"] if e["event"] == "action" and e["name"] == "action_handoff"]
    assert handoff and handoff[-1]["metadata"]["routing"]["reason"] == reason
    assert any(m.get("text", "").startswith("I am connecting you to a colleague.") for m in messages)
    with ConsultationStore(consult_url) as store:
        [case] = store.list(conversation_id=sender)
    assert state["slots"]["consultation_id"] == case.id
    assert (case.mode, case.reasons, case.detail) == ("handoff", (reason,), detail)
    assert case.brief["user_claim"] == text and case.assignee


def test_a_small_refund_is_collected_not_handed_off(assistant: str) -> None:
    messages = say(assistant, "rest-small-refund", "i want a refund of 50 euros for my last order")

    state = slots(assistant, "rest-small-refund")
    assert state["handoff_mode"] == "ai" and state["escalation_reason"] is None
    assert (state["amount"], state["currency"]) == (50.0, "EUR")
    assert (state["routing_decision"]["action"], state["requested_slot"]) == ("collect", "order_id")
    assert "order number" in " ".join(m.get("text", "") for m in messages)


def test_human_resources_is_not_a_request_for_a_person(assistant: str) -> None:
    say(assistant, "rest-hr", "do you have a human resources department i could apply to")
    assert slots(assistant, "rest-hr")["escalation_reason"] != "explicit_request"


def test_in_human_mode_the_ai_is_silent_but_for_information_while_waiting(assistant: str) -> None:
    say(assistant, "rest-silent", "i want to speak to a human")
    state = slots(assistant, "rest-silent")
    assert (state["handoff_mode"], state["human_joined"]) == ("human", False)

    assert say(assistant, "rest-silent", "hello? is anybody there?") == []
    assert slots(assistant, "rest-silent")["routing_decision"]["action"] == "silent"
    answered = say(assistant, "rest-silent", "what are your opening hours?")
    assert answered[0]["text"].startswith("While you wait for our customer support team")
    assert slots(assistant, "rest-silent")["routing_decision"]["action"] == "answer_waiting"


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "?!", "refund " * 580 + "please"])
def test_bad_input_gets_a_sane_answer(assistant: str, text: str) -> None:
    sender = f"rest-bad-{abs(hash(text))}"
    messages = say(assistant, sender, text)

    assert messages, "the assistant answered nothing"
    assert slots(assistant, sender)["routing_decision"]["action"] in {
        "clarify",
        "answer",
        "consult",
        "handoff",
        "collect",
    }


def test_a_message_over_the_limit_is_refused_and_changes_nothing(assistant: str) -> None:
    response = requests.post(
        f"{assistant}/webhooks/rest/webhook",
        headers=CHANNEL,
        json={"sender": "rest-too-long", "message": "refund " * 1500 + "please"},
        timeout=60,
    )
    assert response.status_code == 413 and "4096 characters" in response.json()["error"]
    tracker = requests.get(
        f"{assistant}/conversations/rest-too-long/tracker", timeout=30, params={"token": TOKEN}
    ).json()
    assert [e for e in tracker["events"] if e["event"] == "user"] == []
