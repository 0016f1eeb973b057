"""Issue 14 with the real processes (Rasa, the action server, the hub) over REST: a collect_then_route
row collects and routes, a handoff waiting for a person answers information questions, a case is
closed in human mode, the AI cites the recorded resolution, and one conversation keeps one open case."""

from typing import Any, Dict, List

import requests

from tests.servers import Stack
from tests.test_hub_loop import consultation_of, hub, reply, say, slots, texts


def open_cases(stack: Stack, sender: str) -> List[Dict[str, Any]]:
    response = hub(stack, "GET", "/api/consultations", params={"conversation_id": sender})
    assert response.status_code == 200
    return [c for c in response.json() if c["status"] != "closed"]


def test_a_return_is_collected_checked_routed_and_its_outcome_told(stack: Stack) -> None:
    sender = "route-return"
    asked = texts(say(stack, sender, "i want to return my order"))
    assert "order number" in asked, asked
    unknown = texts(say(stack, sender, "it is order 99999"))
    assert "99999" in unknown and "order number" in unknown.lower(), unknown  # checked against the orders
    assert open_cases(stack, sender) == []
    reason = texts(say(stack, sender, "order 10023"))
    assert "Why would you like to return it?" in reason, reason
    routed = texts(say(stack, sender, "it is too wide for my desk"))
    assert "passed your return (order 10023) to our customer support team" in routed, routed

    state = slots(stack, sender)
    assert (state["handoff_mode"], state["escalation_reason"], state["escalation_detail"]) == (
        "consulting",
        "policy_action",
        "collected",
    )
    [case] = open_cases(stack, sender)
    assert (case["mode"], case["queue"], case["reasons"]) == ("consult", "support", ["policy_action"])
    assert case["brief"]["collected"] == {"order_id": "10023", "issue_details": "it is too wide for my desk"}
    assert (
        case["ai_draft"]
        == "Your return of order 10023 is authorised. You will receive a prepaid return label by e-mail."
    )

    approved = reply(stack, case["id"], action="approve")
    assert approved.status_code == 200, approved.text
    assert "Your return of order 10023 is authorised" in texts(approved.json()["customer_messages"])
    resolution = slots(stack, sender)["case_resolution"]
    assert (resolution["intent"], resolution["outcome"], resolution["consultation_id"]) == (
        "return_item",
        "approved",
        case["id"],
    )

    told = texts(say(stack, sender, "how do i return an item"))
    assert told.startswith("About your earlier request:") and "approved it on" in told, told
    assert "Your return of order 10023 is authorised" in told
    assert open_cases(stack, sender) == []


def test_a_handoff_waiting_for_a_person_answers_information_questions_until_someone_joins(stack: Stack) -> None:
    sender = "route-waiting"
    say(stack, sender, "i want to talk to a human")
    state = slots(stack, sender)
    assert (state["handoff_mode"], state["human_joined"]) == ("human", False)

    answered = texts(say(stack, sender, "what are your opening hours?"))
    assert answered.startswith("While you wait for our customer support team, I can answer this one:"), answered
    assert "will still join you here" in answered
    assert say(stack, sender, "hello? is anyone there?") == []  # not informational: relayed, the AI is silent
    case = consultation_of(stack, sender)
    detail = hub(stack, "GET", f"/api/consultations/{case['id']}").json()
    assert "hello? is anyone there?" in [m["text"] for m in detail["messages"] if m["direction"] == "from_customer"]

    assert reply(stack, case["id"], action="take_over").status_code == 200
    assert slots(stack, sender)["human_joined"] is True
    assert say(stack, sender, "what are your opening hours?") == []  # a person is in: the AI is silent

    closed = reply(stack, case["id"], action="close", text="Your invoice address is fixed; nothing else is needed.")
    assert closed.status_code == 200, closed.text
    said = texts(closed.json()["customer_messages"])
    assert "has closed this case: Your invoice address is fixed" in said, said
    state = slots(stack, sender)
    assert (state["handoff_mode"], state["human_joined"], state["case_resolution"]["outcome"]) == (
        "ai",
        False,
        "closed",
    )
    assert texts(say(stack, sender, "what are your opening hours?"))  # the AI is back


def test_a_second_escalation_adds_to_the_open_case(stack: Stack) -> None:
    sender = "route-merge"
    say(stack, sender, "the vat number on my invoice is wrong")
    say(stack, sender, "INV-2025-0107")
    say(stack, sender, "the vat number should be DE123456789")
    [consult] = open_cases(stack, sender)
    assert (consult["mode"], consult["reasons"]) == ("consult", ["policy_action"])

    again = texts(say(stack, sender, "can i talk to a real person please"))
    assert "already with our billing team" in again, again
    [merged] = open_cases(stack, sender)
    assert merged["id"] == consult["id"]
    assert (merged["mode"], merged["reasons"]) == ("handoff", ["policy_action", "explicit_request"])


def test_keyboard_mash_asks_to_rephrase_then_a_second_goes_to_a_person(stack: Stack) -> None:
    sender = "route-mash"
    first = texts(say(stack, sender, "asdfghjkl qwrtzp"))
    assert "Could you tell me in a few words" in first, first
    assert slots(stack, sender)["handoff_mode"] == "ai"
    second = texts(say(stack, sender, "jkjkjk sdfsdf"))
    assert "bringing in a person" in second, second
    state = slots(stack, sender)
    assert (state["handoff_mode"], state["escalation_reason"], state["escalation_detail"]) == (
        "human",
        "low_confidence",
        "not_understood",
    )
    assert requests.get(f"{stack.hub_url}/health", timeout=10).status_code == 200


def test_a_customer_who_changes_their_mind_leaves_the_form_and_nothing_is_routed(stack: Stack) -> None:
    sender = "route-stop"
    asked = texts(say(stack, sender, "i want to cancel my subscription"))
    assert "e-mail address" in asked, asked
    stopped = texts(say(stack, sender, "no, forget it"))
    assert stopped == "All right, I have stopped and passed nothing on. What else can I do for you?", stopped
    state = slots(stack, sender)
    assert (state["handoff_mode"], state["requested_slot"]) == ("ai", None)
    assert open_cases(stack, sender) == []


def test_a_reply_the_form_cannot_use_gets_the_question_again(stack: Stack) -> None:
    sender = "route-reask"
    assert "order number" in texts(say(stack, sender, "i want to return my order"))
    again = texts(say(stack, sender, "hmm let me have a look"))
    assert "What's your order number?" in again, again
    assert slots(stack, sender)["requested_slot"] == "order_id"
    assert "Why would you like to return it?" in texts(say(stack, sender, "found it, 10023"))
