"""The escalation actions and what they tell the customer, from the policy's decision record."""

import asyncio
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.routing import ActionConsult, ActionHandoff, consultations
from backline.consult.store import ENV_URL, ConsultationStore
from backline.routing.announce import draft_answer, response_for
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


@pytest.fixture
def consult_store(tmp_path: Path, business_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsultationStore]:
    """The actions' consultation store in tmp_path; no expert channel configured (the dashboard takes all)."""
    url = f"sqlite:///{tmp_path / 'consultations.db'}"
    monkeypatch.setenv(ENV_URL, url)
    for name in ("BACKLINE_SLACK_BOT_TOKEN", "BACKLINE_TELEGRAM_BOT_TOKEN", "BACKLINE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    consultations.cache_clear()
    with ConsultationStore(url) as store:
        yield store
    consultations.cache_clear()


def test_handoff_says_why_opens_the_consultation_and_tells_the_wait(consult_store: ConsultationStore) -> None:
    record = {
        "reason": "sensitive_topic",
        "detail": "refund_over_limit",
        "queue": "billing",
        "intent": "refund_request",
        "priority": "high",
        "action": "handoff",
    }
    messages, events = run(ActionHandoff(), tracker_with(record))

    assert messages[0] == {**messages[0], "response": "utter_handoff_refund_over_limit", "team": "billing"}
    assert messages[1]["text"].startswith("I am connecting you to a colleague.")
    [case] = consult_store.list(conversation_id="customer")
    assert events == [SlotSet("human_joined", False), SlotSet("consultation_id", case.id)]
    assert (case.mode, case.queue, case.priority, case.reasons, case.detail) == (
        "handoff",
        "billing",
        "high",
        ("sensitive_topic",),
        "refund_over_limit",
    )
    assert case.assignee in ("mara", "jonas") and case.channel == "dashboard"
    assert [e.action for e in consult_store.audit_trail(case.id)][-1] == "customer_told"


def test_consult_tells_the_customer_and_keeps_the_ai_draft(consult_store: ConsultationStore) -> None:
    record = {"reason": "medium_confidence", "queue": "support", "intent": "password_reset", "action": "consult"}
    messages, events = run(ActionConsult(), tracker_with(record))

    assert messages[0]["response"] == "utter_consult_medium_confidence"
    assert messages[0]["team"] == "customer support"  # experts.yml: queues.support.team
    draft = DOMAIN["responses"]["utter_password_reset"][0]["text"]
    [case] = consult_store.list(conversation_id="customer")
    assert events == [SlotSet("ai_draft", draft), SlotSet("consultation_id", case.id)]
    assert case.mode == "consult" and case.ai_draft == draft
    assert "customer support team" in messages[1]["text"]


def test_a_store_failure_still_answers_the_customer_honestly(
    consult_store: ConsultationStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BACKLINE_EXPERTS", str(tmp_path / "missing-experts.yml"))
    consultations.cache_clear()
    messages, events = run(ActionHandoff(), tracker_with({"reason": "explicit_request", "queue": "support"}))

    assert [m.get("response") for m in messages] == ["utter_handoff_explicit_request", "utter_escalation_pending"]
    assert events == [SlotSet("human_joined", False)] and consult_store.list() == []


def test_the_draft_for_a_faq_question_is_the_response_selectors_pick() -> None:
    parse_data = {
        "response_selector": {
            "product_question": {"response": {"responses": [{"text": "Hardware has a 2-year warranty."}]}}
        }
    }
    assert (
        draft_answer("product_question/warranty", DOMAIN["responses"], parse_data) == "Hardware has a 2-year warranty."
    )
    assert draft_answer("made_up_intent", DOMAIN["responses"], {}) is None


# --- collect then route, waiting, resolutions -----------------------------------------------------


def test_route_collected_says_what_happens_next_and_keeps_the_draft(consult_store: ConsultationStore) -> None:
    from actions.collect import ActionRouteCollected

    record = {
        "action": "consult",
        "reason": "policy_action",
        "detail": "collected",
        "queue": "billing",
        "intent": "refund_request",
        "row": "refund_request",
        "priority": "normal",
        "evidence": {
            "collected": {
                "form": "collect_refund_request",
                "fields": {"order_id": "10023", "amount": {"value": 49.0, "currency": "EUR"}},
            }
        },
    }
    slots = {
        "routing_decision": record,
        "handoff_mode": "consulting",
        "order_id": "10023",
        "amount": 49.0,
        "currency": "EUR",
    }
    tracker = Tracker("customer", slots, {}, [], False, None, {}, "action_listen")
    messages, events = run(ActionRouteCollected(), tracker)

    assert messages[0]["response"] == "utter_routed_refund_request"
    assert (messages[0]["team"], messages[0]["facts"]) == ("billing", "order 10023, amount €49")
    draft = "Your refund of €49 for order 10023 is approved; it reaches your original payment method within 5 to 7 business days."
    [case] = consult_store.list(conversation_id="customer")
    assert events == [SlotSet("ai_draft", draft), SlotSet("consultation_id", case.id)]
    assert (case.mode, case.queue, case.reasons, case.detail, case.ai_draft) == (
        "consult",
        "billing",
        ("policy_action",),
        "collected",
        draft,
    )
    assert case.context["brief"]["collected"] == {"order_id": "10023", "amount": {"value": 49.0, "currency": "EUR"}}
    assert "billing team" in messages[1]["text"]


def test_the_recorded_resolution_is_told_once() -> None:
    from actions.waiting import ActionTellResolution

    resolution = {
        "consultation_id": "c1",
        "intent": "refund_request",
        "outcome": "approved",
        "by": "Mara",
        "team": "billing",
        "text": "The 49 EUR are on their way.",
        "at": "2026-12-04T10:12:00+00:00",
    }
    tracker = Tracker("customer", {"case_resolution": resolution}, {}, [], False, None, {}, "action_listen")
    messages, events = run(ActionTellResolution(), tracker)
    assert [m["text"] for m in messages] == [
        "About your earlier request: Mara from our billing team approved it on 4 December at 10:12 UTC. "
        "The 49 EUR are on their way. If this is about something new, tell me and I'll help."
    ]
    assert events == [SlotSet("case_resolution", {**resolution, "told": True})]
