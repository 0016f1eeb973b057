"""The loop closed with the real processes: a REST customer hits a trigger, an operator answers through
the hub's JSON API, the customer gets the answer in the same conversation; human mode and hand-back."""

from typing import Any, Dict, List

import pytest
import requests

from tests.servers import Stack


def say(stack: Stack, sender: str, text: str) -> List[Dict[str, Any]]:
    response = requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        headers=stack.channel_auth,
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def slots(stack: Stack, sender: str) -> Dict[str, Any]:
    response = requests.get(
        f"{stack.rasa_url}/conversations/{sender}/tracker", params={"token": stack.rasa_token}, timeout=30
    )
    response.raise_for_status()
    return response.json()["slots"]


def hub(stack: Stack, method: str, path: str, token: str = "", **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or stack.operator_token}"}
    return requests.request(method, f"{stack.hub_url}{path}", headers=headers, timeout=90, **kwargs)


def consultation_of(stack: Stack, sender: str) -> Dict[str, Any]:
    response = hub(stack, "GET", "/api/consultations", params={"conversation_id": sender})
    assert response.status_code == 200
    return response.json()[-1]


def reply(stack: Stack, consultation_id: str, **body: Any) -> requests.Response:
    return hub(stack, "POST", f"/api/consultations/{consultation_id}/reply", json=body)


def texts(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def test_the_api_needs_the_operator_token(stack: Stack) -> None:
    assert requests.get(f"{stack.hub_url}/api/consultations", timeout=10).status_code == 401
    assert hub(stack, "GET", "/api/consultations", token="forged").status_code == 401
    assert hub(stack, "GET", "/api/metrics").status_code == 200
    assert requests.get(f"{stack.hub_url}/health", timeout=10).json() == {"status": "ok"}
    home = requests.get(stack.hub_url, timeout=10, allow_redirects=False)
    assert (home.status_code, home.headers["Location"]) == (302, "/dashboard")


def test_an_expert_answer_reaches_the_customer_in_the_assistants_voice(stack: Stack) -> None:
    say(stack, "loop-answer", "I want a refund of €780 for my Hub X1, order 10023")
    case = consultation_of(stack, "loop-answer")
    assert (case["mode"], case["status"], case["queue"], case["reasons"]) == (
        "handoff",
        "assigned",
        "billing",
        ["sensitive_topic"],
    )
    assert case["brief"]["amount"]["value"] == 780.0 and case["sla_due_at"]

    response = reply(stack, case["id"], action="answer", text="The refund of 780 EUR is approved; expect it in 5 days.")
    assert response.status_code == 200, response.text
    said = texts(response.json()["customer_messages"])
    assert said.startswith("I checked with") and "from our billing team" in said and "780 EUR is approved" in said
    assert response.json()["consultation"]["status"] == "closed"
    assert slots(stack, "loop-answer")["handoff_mode"] == "ai"

    again = reply(stack, case["id"], action="answer", text="late double click")
    # the shared token answers as the case's assignee: a billing member (who depends on the stack's load)
    decider = {"mara": "Mara Klein", "jonas": "Jonas Weber"}[case["assignee"]]
    assert again.status_code == 409 and f"already decided by {decider} (answered)" in again.json()["error"]
    assert texts(say(stack, "loop-answer", "what are your opening hours?"))  # the AI is back


def test_take_over_relay_and_hand_back_with_limits(stack: Stack) -> None:
    say(stack, "loop-human", "can i talk to a real person please")
    case = consultation_of(stack, "loop-human")

    joined = reply(stack, case["id"], action="take_over")
    assert joined.status_code == 200, joined.text
    assert "has joined the conversation" in texts(joined.json()["customer_messages"])
    assert slots(stack, "loop-human")["handoff_mode"] == "human"

    restarted = requests.post(
        f"{stack.rasa_url}/conversations/loop-human/execute",
        params={"token": stack.rasa_token},
        json={"name": "action_session_start"},
        timeout=60,
    )  # as when the session expires
    assert restarted.status_code == 200, restarted.text
    assert slots(stack, "loop-human")["handoff_mode"] == "human"
    assert say(stack, "loop-human", "it is about my invoice INV-2025-0107") == []  # the AI stays silent
    detail = hub(stack, "GET", f"/api/consultations/{case['id']}").json()
    relayed = [m for m in detail["messages"] if m["direction"] == "from_customer"]
    assert relayed and relayed[-1]["text"] == "it is about my invoice INV-2025-0107"

    human = reply(stack, case["id"], action="message", text="I have sent you a corrected copy.")
    person = texts(human.json()["customer_messages"])
    assert person == "I have sent you a corrected copy." and slots(stack, "loop-human")["human_agent"]
    tracker = requests.get(
        f"{stack.rasa_url}/conversations/loop-human/tracker", params={"token": stack.rasa_token}, timeout=30
    ).json()
    said = [e for e in tracker["events"] if e["event"] == "bot"][-1]
    # who spoke is the message's metadata, not a prefix in its text (each channel shows it its own way)
    assert (said["text"], said["metadata"].get("sender_name")) == ("I have sent you a corrected copy.", "Felix Braun")

    back = reply(stack, case["id"], action="hand_back", text="All sorted.", allowed_followups=["informational"])
    assert back.status_code == 200, back.text
    assert "handed the conversation back to me" in texts(back.json()["customer_messages"])
    state = slots(stack, "loop-human")
    assert state["handoff_mode"] == "handed_back" and "opening_hours" in state["allowed_intents"]

    assert "cancel" not in texts(say(stack, "loop-human", "what are your opening hours?")).lower()
    assert slots(stack, "loop-human")["handoff_mode"] == "handed_back"
    say(stack, "loop-human", "I want to cancel my subscription")
    state = slots(stack, "loop-human")
    assert (state["handoff_mode"], state["escalation_reason"], state["escalation_detail"]) == (
        "human",
        "policy_action",
        "outside_handback",
    )


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"action": "answer"}, 400, "needs the text"),
        ({"action": "teleport", "text": "x"}, 400, "unknown action"),
        ({"action": "hand_back", "allowed_followups": ["anything"]}, 400, "unknown follow-up"),
        ({"action": "answer", "text": "x", "actor": "mallory"}, 400, "not a person"),
    ],
)
def test_bad_replies_are_refused_and_change_nothing(
    stack: Stack, body: Dict[str, Any], status: int, error: str
) -> None:
    sender = f"loop-bad-{abs(hash(str(body)))}"
    say(stack, sender, "I want to speak to a human")
    case = consultation_of(stack, sender)
    response = reply(stack, case["id"], **body)
    assert response.status_code == status and error in response.json()["error"]
    assert consultation_of(stack, sender)["status"] == "assigned"
    assert reply(stack, "no-such-id", action="answer", text="x").status_code == 404
