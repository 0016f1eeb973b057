"""The satisfaction (CSAT) question: reading ratings, the routing policy's round trip, the actions, and
the question and its answer on every customer channel (REST outbox, socket.io, Telegram, Slack) with the
real running stack.

After an expert's final decision on a case whose mode is in governance.yml `csat.after_modes`, the
customer is asked `csat.question` with buttons 1..5; a button or a typed rating is stored with the
channel it came on and thanked with `csat.thanks`; anything else drops the question and is routed as
usual (backline/routing/csat.py, backline/rasa/routing_policy.py, actions/csat.py).
"""

import asyncio
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet as SdkSlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.csat import ActionRecordCsat, rating_buttons
from actions.expert import ActionExpertUpdate
from actions.routing import consultations
from backline.consult.replies import Reply, record_reply
from backline.consult.store import ENV_URL, ConsultationStore
from backline.rasa.routing_policy import RoutingPolicy
from backline.routing.csat import CLEAR, NONE, RECORD, CsatTurn, answer_turn, asks_after, read_rating
from tests.channels_stack import (
    CUSTOMER_SLACK_SECRET,
    CUSTOMER_TELEGRAM_SECRET,
    Channels,
    _ids,
    api_reply,
    consultation,
    customer_telegram_says,
    eventually,
    running_channels,
    slack_event,
    slack_signed,
    telegram_update,
)
from tests.routing_policy_kit import (  # noqa: F401  (fixtures: the policy trained on the real domain)
    domain,
    execution_context,
    matrix_file,
    model_storage,
    policy,
    predicted,
    resource,
    session,
    trained,
    turn,
    user,
)
from tests.test_channels_e2e import web_chat

QUESTION = "How would you rate the help you got today, from 1 (poor) to 5 (excellent)?"
THANKS = "Thank you for your rating."
BUTTONS = [{"title": str(n), "payload": f'/csat_rating{{"csat_score": {n}}}'} for n in (1, 2, 3, 4, 5)]
REFUND_780 = "I want a refund of €780 for my Hub X1, order 10023"


# --- reading a rating ----------------------------------------------------------------------------


RATINGS = {
    "alone, as digits or a word": [("1", 1), ("4", 4), (" 5 ", 5), ("3.", 3), ("5!", 5), ('"2"', 2), ("four", 4)],
    "words in any case": [("Five", 5), ("one", 1), ("THREE", 3)],
    "with a scale word": [("5 stars", 5), ("1 star", 1), ("four stars!", 4), ("4/5", 4), ("4 / 5", 4), ("2 of 5", 2)],
    "out of five": [("3 out of 5", 3), ("5/5 stars", 5), ("three out of five", 3), ("4 points", 4)],
    "with a lead-in": [("I'd give it a 3", 3), ("I’d give it a 4", 4), ("i would give you a 5", 5), ("give it a 2", 2)],
    "rated or named": [("I'd rate it 4 out of 5", 4), ("rating: 4", 4), ("my rating is 5", 5), ("it's a 4", 4)],
    "short forms": [("a 3", 3), ("solid 5", 5), ("5, thanks!", 5)],
    "stars as symbols": [("⭐⭐⭐⭐", 4), ("★★", 2)],
}
NOT_RATINGS = {
    "out of range": ["0", "6", "7", "10", "seven", "6/5", "3/10", "8 out of 10", "⭐⭐⭐⭐⭐⭐"],
    "an id or number in a sentence": ["my order 12345", "order 10023", "10023", "where is my order 4", "call me at 5"],
    "a count or an amount": ["I have 2 questions", "can I return 3 items", "I want a refund of 5 EUR", "4 5"],
    "no number at all": ["", "   ", "great, thanks", "what are your opening hours?", "it is INV-2025-0107"],
}


@pytest.mark.parametrize("text, score", [pair for family in RATINGS.values() for pair in family])
def test_ratings_are_read(text: str, score: int) -> None:
    assert read_rating(text) == score


@pytest.mark.parametrize("text", [text for family in NOT_RATINGS.values() for text in family])
def test_other_messages_are_not_ratings(text: str) -> None:
    assert read_rating(text) is None


def test_a_missing_text_is_not_a_rating() -> None:
    assert read_rating(None) is None


# --- whether a turn answers the pending question -----------------------------------------------------


def test_a_typed_rating_answers_the_pending_question() -> None:
    assert answer_turn("c-1", text="4/5", intent="inform") == CsatTurn(RECORD, 4, "c-1")


def test_a_button_payload_answers_with_its_score() -> None:
    entities = [{"entity": "csat_score", "value": 2}]
    turn_ = answer_turn("c-1", text='/csat_rating{"csat_score": 2}', intent="csat_rating", entities=entities)
    assert turn_ == CsatTurn(RECORD, 2, "c-1")


def test_a_late_button_press_answers_without_a_pending_question() -> None:
    entities = [{"entity": "csat_score", "value": "5"}]
    assert answer_turn(None, text="/csat_rating", intent="csat_rating", entities=entities) == CsatTurn(RECORD, 5)


def test_a_typed_rating_without_a_pending_question_is_not_an_answer() -> None:
    assert answer_turn(None, text="4", intent="inform") == CsatTurn(NONE)


@pytest.mark.parametrize("value", [0, 6, "seven", True, None, 4.5])
def test_a_button_payload_with_a_bad_score_is_not_an_answer(value: Any) -> None:
    entities = [{"entity": "csat_score", "value": value}]
    assert answer_turn(None, text="/csat_rating", intent="csat_rating", entities=entities) == CsatTurn(NONE)


def test_a_new_question_clears_the_pending_question() -> None:
    assert answer_turn("c-1", text="my order 12345 has not arrived", intent="order_status") == CsatTurn(CLEAR)


def test_in_human_mode_nothing_is_pending() -> None:
    entities = [{"entity": "csat_score", "value": 4}]
    assert answer_turn("c-1", text="4", intent="inform", handoff_mode="human") == CsatTurn(CLEAR)
    assert answer_turn(None, text="/x", intent="csat_rating", entities=entities, handoff_mode="human") == CsatTurn(NONE)


def test_the_question_follows_only_final_decisions_of_the_configured_modes() -> None:
    assert asks_after("handoff", ("handoff", "consult"), final=True) is True
    assert asks_after("consult", ("handoff",), final=True) is False
    assert asks_after("handoff", ("handoff",), final=False) is False
    assert asks_after(None, ("handoff",), final=True) is False


# --- the routing policy ----------------------------------------------------------------------------


def resolved(pending: Optional[str] = "c-1", mode: str = "ai") -> List[Event]:
    """A handoff the expert resolved: action_expert_update told the outcome and asked the question."""
    events = session(turn(user(REFUND_780, "refund_request", 0.93), ActionExecuted("action_handoff")))
    events += [
        UserUttered(None, {"name": "EXTERNAL_expert_reply", "confidence": 1.0}),
        ActionExecuted("action_expert_update"),
        BotUttered("I checked with Mara from our billing team. Approved."),
        SlotSet("handoff_mode", mode),
        SlotSet("case_resolution", {"consultation_id": "c-1", "intent": "refund_request", "outcome": "answered"}),
    ]
    if pending:
        events += [BotUttered(QUESTION, data={"buttons": BUTTONS}), SlotSet("csat_pending", pending)]
    return events + [ActionExecuted(ACTION_LISTEN_NAME)]


def tracker_for(domain: Domain, events: List[Event]) -> Any:
    from rasa.shared.core.trackers import DialogueStateTracker

    return DialogueStateTracker.from_events("customer", events, slots=domain.slots)


def test_a_typed_rating_predicts_action_record_csat(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_for(domain, resolved() + [user("I'd give it a 4", "inform", 0.55)])
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == ("action_record_csat", 1.0)
    [event] = prediction.events
    assert isinstance(event, SlotSet) and event.key == "routing_decision"
    assert (event.value["action"], event.value["intent"], event.value["detail"]) == (
        "record_csat",
        "csat_rating",
        "csat_answer",
    )
    assert event.value["evidence"]["csat"] == {"consultation_id": "c-1", "score": 4, "classified_as": "inform"}
    assert prediction.action_metadata == {"routing": event.value}
    assert prediction.optional_events == []

    after = tracker_for(
        domain,
        resolved()
        + [user("I'd give it a 4", "inform", 0.55), ActionExecuted("action_record_csat"), BotUttered(THANKS)]
        + [SlotSet("csat_pending", None)],
    )
    assert predicted(policy.predict_action_probabilities(after, domain), domain) == (ACTION_LISTEN_NAME, 1.0)


def test_a_button_payload_predicts_action_record_csat(policy: RoutingPolicy, domain: Domain) -> None:
    payload = user('/csat_rating{"csat_score": 5}', "csat_rating", 1.0, entities=[{"entity": "csat_score", "value": 5}])
    prediction = policy.predict_action_probabilities(tracker_for(domain, resolved() + [payload]), domain)
    assert predicted(prediction, domain) == ("action_record_csat", 1.0)
    assert prediction.events[0].value["evidence"]["csat"]["score"] == 5


def test_an_unrelated_question_drops_the_question_and_is_routed_as_usual(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_for(domain, resolved() + [user("when are you open?", "opening_hours", 0.97)])
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == (None, 0.0)  # an answer: left to the other policies
    record, cleared = prediction.events
    assert isinstance(record, SlotSet) and record.key == "routing_decision" and record.value["action"] == "answer"
    assert cleared == SlotSet("csat_pending", None)


def test_an_order_number_is_not_a_rating(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_for(domain, resolved() + [user("my order 12345", "order_status", 0.95)])
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) != ("action_record_csat", 1.0)
    assert SlotSet("csat_pending", None) in prediction.events


def test_in_human_mode_a_number_goes_to_the_person(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_for(domain, resolved(mode="human") + [user("4", "inform", 0.6)])
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == ("action_relay_to_expert", 1.0)
    assert SlotSet("csat_pending", None) in prediction.events


def test_without_a_pending_question_a_number_is_routed_as_usual(policy: RoutingPolicy, domain: Domain) -> None:
    tracker = tracker_for(domain, resolved(pending=None) + [user("4", "inform", 0.95)])
    prediction = policy.predict_action_probabilities(tracker, domain)
    assert predicted(prediction, domain) == (None, 0.0)
    assert [e.key for e in prediction.events] == ["routing_decision"]


# --- the actions -------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsultationStore]:
    url = f"sqlite:///{tmp_path / 'consultations.db'}"
    monkeypatch.setenv(ENV_URL, url)
    for name in ("BACKLINE_SLACK_BOT_TOKEN", "BACKLINE_TELEGRAM_BOT_TOKEN", "BACKLINE_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    consultations.cache_clear()
    with ConsultationStore(url) as opened:
        yield opened
    consultations.cache_clear()


def sdk_tracker(sender: str, latest: Dict[str, Any], slots: Dict[str, Any], channel: str = "telegram") -> Tracker:
    event = {"event": "user", "text": latest.get("text"), "parse_data": latest, "input_channel": channel}
    return Tracker(sender, slots, latest, [event], False, None, {}, ACTION_LISTEN_NAME)


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def expert_update(store: ConsultationStore, sender: str, mode: str, reply: Reply) -> tuple:
    case = store.create(conversation_id=sender, mode=mode, queue="billing")
    resume = record_reply(store, case.id, "mara", "dashboard", reply)
    entities = [{"entity": name, "value": value} for name, value in resume.entities.items()]
    latest = {"intent": {"name": resume.intent, "confidence": 1.0}, "entities": entities, "text": None}
    return case, run(ActionExpertUpdate(), sdk_tracker(sender, latest, {}))


@pytest.mark.parametrize("mode", ["handoff", "consult"])
def test_a_final_decision_is_followed_by_the_question(store: ConsultationStore, mode: str) -> None:
    case, (messages, events) = expert_update(store, "telegram:501", mode, Reply("answer", text="Refund approved."))
    assert [m["text"] for m in messages] == ["I checked with Mara from our billing team. Refund approved.", QUESTION]
    assert messages[1]["buttons"] == BUTTONS == rating_buttons()
    assert events[-1] == SdkSlotSet("csat_pending", case.id)


def test_a_decision_that_is_not_final_asks_nothing(store: ConsultationStore) -> None:
    _, (messages, events) = expert_update(store, "telegram:502", "handoff", Reply("take_over"))
    assert len(messages) == 1 and messages[0]["text"].endswith("from our billing team has joined the conversation.")
    assert [e for e in events if e.get("name") == "csat_pending"] == []


def test_the_answer_is_stored_with_its_channel_and_thanked_once_per_case(store: ConsultationStore) -> None:
    case = store.create(conversation_id="slack:U0RATE01", mode="handoff", queue="billing")
    latest = {"intent": {"name": "inform", "confidence": 0.5}, "entities": [], "text": "4 stars"}
    messages, events = run(
        ActionRecordCsat(), sdk_tracker("slack:U0RATE01", latest, {"csat_pending": case.id}, "slack")
    )
    assert [m["text"] for m in messages] == [THANKS]
    assert events == [SdkSlotSet("csat_pending", None)]
    answer = store.csat(case.id)
    assert answer is not None
    assert (answer.score, answer.channel, answer.conversation_id) == (4, "slack", "slack:U0RATE01")

    button = {"intent": {"name": "csat_rating", "confidence": 1.0}, "entities": [{"entity": "csat_score", "value": 1}]}
    resolution = {"consultation_id": case.id}
    again = sdk_tracker("slack:U0RATE01", {**button, "text": "/csat_rating"}, {"case_resolution": resolution}, "slack")
    messages, _ = run(ActionRecordCsat(), again)
    assert [m["text"] for m in messages] == [THANKS]
    assert store.csat(case.id).score == 4  # the first answer counts


def test_a_case_of_another_conversation_is_not_rated(store: ConsultationStore) -> None:
    case = store.create(conversation_id="telegram:777", mode="handoff", queue="billing")
    latest = {"intent": {"name": "inform", "confidence": 0.5}, "entities": [], "text": "5"}
    messages, _ = run(ActionRecordCsat(), sdk_tracker("telegram:999", latest, {"csat_pending": case.id}))
    assert [m["text"] for m in messages] == [THANKS]
    assert store.csat(case.id) is None


# --- the question and the answer on every customer channel (the running stack) ------------------------


@pytest.fixture(scope="module")
def c(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    with running_channels(business_url_today, tmp_path_factory.mktemp("csat")) as channels:
        yield channels


def stored(c: Channels, consultation_id: str) -> Dict[str, Any]:
    def answered() -> Optional[Dict[str, Any]]:
        with ConsultationStore(c.stack.consult_url) as opened:
            record = opened.csat(consultation_id)
        return record.as_dict() if record is not None else None

    return eventually(answered, what=f"the rating of {consultation_id} in the store")


def telegram_posts(c: Channels, chat: int) -> List[Dict[str, Any]]:
    return [m for m in c.customer_telegram.messages() if str(m.get("chat_id")) == str(chat)]


@pytest.mark.stack
def test_telegram_customer_rates_with_a_button(c: Channels) -> None:
    chat = 880301
    assert customer_telegram_says(c, chat, REFUND_780).status_code == 200
    case = consultation(c.stack, f"telegram:{chat}")
    assert api_reply(c.stack, case["id"], action="answer", text="The refund of 780 EUR is approved.").ok
    [asked] = eventually(lambda: [m for m in telegram_posts(c, chat) if m.get("text") == QUESTION], what="the question")
    keys = [(k["text"], k["callback_data"]) for row in asked["reply_markup"]["inline_keyboard"] for k in row]
    assert keys == [(b["title"], b["payload"]) for b in BUTTONS]

    press = {
        "update_id": next(_ids),
        "callback_query": {
            "id": "cbq-csat-1",
            "from": {"id": chat, "is_bot": False, "first_name": "Kim"},
            "message": {"message_id": 5, "chat": {"id": chat}},
            "data": keys[3][1],
        },
    }
    url = f"{c.stack.rasa_url}/webhooks/telegram/webhook"
    assert telegram_update(url, CUSTOMER_TELEGRAM_SECRET, press).status_code == 200
    eventually(lambda: [m for m in telegram_posts(c, chat) if m.get("text") == THANKS], what="the thanks")
    answer = stored(c, case["id"])
    assert (answer["score"], answer["channel"], answer["conversation_id"]) == (4, "telegram", f"telegram:{chat}")


@pytest.mark.stack
def test_slack_customer_rates_with_a_button(c: Channels) -> None:
    customer, dm = "U0CSAT0001", "D0CSAT0001"
    webhook = f"{c.stack.rasa_url}/webhooks/slack/webhook"
    said = {"type": "message", "channel": dm, "channel_type": "im", "user": customer, "text": REFUND_780}
    assert slack_event(webhook, CUSTOMER_SLACK_SECRET, {**said, "ts": f"{time.time():.6f}"}).status_code == 200
    case = consultation(c.stack, f"slack:{customer}")
    assert api_reply(c.stack, case["id"], action="deny", text="Refunds over 500 EUR need the device back.").ok

    def question() -> List[Dict[str, Any]]:
        return [p for p in c.customer_slack.posts() if p.get("channel") in (customer, dm) and p.get("text") == QUESTION]

    [asked] = eventually(question, what="the question on Slack")
    blocks = asked["blocks"] if isinstance(asked["blocks"], list) else json.loads(asked["blocks"])
    buttons = [(e["text"]["text"], e["value"]) for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [(b["title"], b["payload"]) for b in BUTTONS]

    click = {
        "type": "block_actions",
        "user": {"id": customer},
        "channel": {"id": dm},
        "message": {"ts": "1764000000.000900"},
        "actions": [{"type": "button", "value": buttons[1][1], "action_ts": f"{time.time():.6f}"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(click)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signed(body, CUSTOMER_SLACK_SECRET)}
    assert requests.post(webhook, data=body, headers=headers, timeout=60).status_code == 200
    eventually(
        lambda: [p for p in c.customer_slack.posts() if p.get("channel") in (customer, dm) and p.get("text") == THANKS],
        what="the thanks on Slack",
    )
    answer = stored(c, case["id"])
    assert (answer["score"], answer["channel"], answer["conversation_id"]) == (2, "slack", f"slack:{customer}")


@pytest.mark.stack
def test_web_chat_customer_types_a_rating_after_a_new_question_was_not_one(c: Channels) -> None:
    async def chat() -> tuple:
        async with web_chat(c.stack.rasa_url, {}) as (client, received, session_id):
            await client.emit("user_uttered", {"message": REFUND_780, "session_id": session_id})
            await asyncio.to_thread(eventually, lambda: received, 60, "the wait message")
            case = await asyncio.to_thread(consultation, c.stack, "web:" + session_id.split(".")[0])
            answered = await asyncio.to_thread(
                api_reply, c.stack, case["id"], action="close", text="We sent the replacement instead."
            )
            assert answered.ok, answered.text
            asked = await asyncio.to_thread(
                eventually, lambda: [m for m in received if m.get("text") == QUESTION], 60, "the question"
            )
            # typed, not pressed: read by read_rating, stored with the socket.io channel
            count = len(received)
            await client.emit("user_uttered", {"message": "I'd give it a 5", "session_id": session_id})
            await asyncio.to_thread(
                eventually, lambda: [m for m in received[count:] if m.get("text") == THANKS], 60, "the thanks"
            )
            return case, asked[0]

    case, asked = asyncio.run(chat())
    assert [(q["title"], q["payload"]) for q in asked["quick_replies"]] == [(b["title"], b["payload"]) for b in BUTTONS]
    answer = stored(c, case["id"])
    assert (answer["score"], answer["channel"]) == (5, "socketio")


@pytest.mark.stack
def test_rest_customer_asks_something_else_and_the_question_is_dropped(c: Channels) -> None:
    sender = f"outbox-csat-{next(_ids)}"

    def say(text: str) -> requests.Response:
        return requests.post(
            f"{c.stack.rasa_url}/webhooks/outbox/webhook",
            timeout=60,
            headers=c.stack.channel_auth,
            json={"sender": sender, "message": text},
        )

    def outbox() -> List[Dict[str, Any]]:
        return requests.get(
            f"{c.stack.rasa_url}/webhooks/outbox/messages",
            params={"sender": sender},
            headers=c.stack.channel_auth,
            timeout=30,
        ).json()

    assert say(REFUND_780).status_code == 200
    case = consultation(c.stack, sender)
    assert api_reply(c.stack, case["id"], action="answer", text="Approved: 780 EUR back in 5 days.").ok
    [asked] = eventually(lambda: [m for m in outbox() if m.get("text") == QUESTION], what="the question")
    assert asked["buttons"] == BUTTONS

    hours = say("what are your opening hours?").json()  # a new question: answered, the question dropped
    assert any((m.get("text") or "").startswith("Our support team is available") for m in hours), hours
    assert THANKS not in [m.get("text") for m in hours]
    with ConsultationStore(c.stack.consult_url) as opened:
        assert opened.csat(case["id"]) is None

    pressed = say(BUTTONS[2]["payload"]).json()  # the button still works: the first answer counts
    assert [m.get("text") for m in pressed] == [THANKS]
    answer = stored(c, case["id"])
    assert (answer["score"], answer["channel"]) == (3, "outbox")
