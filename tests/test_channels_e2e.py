"""The loop closed on every customer channel, with the real processes (`backline run`: Rasa server,
action server, hub) and loopback servers speaking Slack's Web API and Telegram's Bot API.

Experts: Mara (billing) on Slack, Jonas (support) on Telegram (tests/fixtures/experts_channels.yml).
They answer through the hub's signed webhooks exactly as Slack and Telegram would call them.
"""
import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
import socketio

from tests.channel_servers import FakeBotApi
from tests.expert_apis import FakeSlack
from tests.servers import Stack, assistant_env, running_assistant

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HUB_SLACK_SECRET = "hub-slack-signing-secret"
HUB_TELEGRAM_SECRET = "hub-telegram-secret"
CUSTOMER_SLACK_SECRET = "customer-slack-signing-secret"
CUSTOMER_TELEGRAM_SECRET = "customer-telegram-secret"
MARA, JONAS_CHAT = "U0MARA01", 7001
_ids = itertools.count(1000)


class Channels:
    """The running stack and the fake APIs it talks to."""

    def __init__(self, stack: Stack, expert_slack: FakeSlack, expert_telegram: FakeBotApi,
                 customer_slack: FakeSlack, customer_telegram: FakeBotApi) -> None:
        self.stack = stack
        self.expert_slack = expert_slack
        self.expert_telegram = expert_telegram
        self.customer_slack = customer_slack
        self.customer_telegram = customer_telegram


@pytest.fixture(scope="module")
def c(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    model = PROJECT_ROOT / "models" / "backline.tar.gz"
    if not model.exists():
        pytest.fail(f"{model} is missing: run `make train`")
    fakes = [FakeSlack("xoxb-experts"), FakeBotApi("111:experts", "kestrel_experts_bot"),
             FakeSlack("xoxb-customers"), FakeBotApi("222:customers", "kestrel_support_bot")]
    for fake in fakes:
        fake.start()
    expert_slack, expert_telegram, customer_slack, customer_telegram = fakes
    tmp = tmp_path_factory.mktemp("channels")
    stack, env = assistant_env(
        tmp, business_url_today,
        BACKLINE_EXPERTS=str(PROJECT_ROOT / "tests" / "fixtures" / "experts_channels.yml"),
        BACKLINE_SLACK_BOT_TOKEN="xoxb-experts", BACKLINE_SLACK_API_URL=f"{expert_slack.url}/api/",
        BACKLINE_SLACK_SIGNING_SECRET=HUB_SLACK_SECRET,
        BACKLINE_TELEGRAM_BOT_TOKEN="111:experts", BACKLINE_TELEGRAM_API_URL=expert_telegram.url,
        BACKLINE_TELEGRAM_WEBHOOK_SECRET=HUB_TELEGRAM_SECRET,
        BACKLINE_CUSTOMER_SLACK_TOKEN="xoxb-customers", BACKLINE_CUSTOMER_SLACK_API_URL=f"{customer_slack.url}/api/",
        BACKLINE_CUSTOMER_SLACK_SIGNING_SECRET=CUSTOMER_SLACK_SECRET,
        BACKLINE_CUSTOMER_TELEGRAM_TOKEN="222:customers", BACKLINE_CUSTOMER_TELEGRAM_API_URL=customer_telegram.url,
        BACKLINE_CUSTOMER_TELEGRAM_BOT_NAME="kestrel_support_bot",
        BACKLINE_CUSTOMER_TELEGRAM_WEBHOOK_URL="https://kestrel.example/webhooks/telegram/webhook",
        BACKLINE_CUSTOMER_TELEGRAM_SECRET=CUSTOMER_TELEGRAM_SECRET,
    )
    try:
        with running_assistant(model, env, tmp / "backline-run.log"):
            yield Channels(stack, *fakes)
    finally:
        for fake in fakes:
            fake.stop()


# --- helpers ----------------------------------------------------------------------------------------


def eventually(probe: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def slack_signed(body: bytes, secret: str, timestamp: Optional[int] = None) -> Dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def slack_event(url: str, secret: str, event: Dict[str, Any], event_id: Optional[str] = None,
                **headers: str) -> requests.Response:
    body = json.dumps({"type": "event_callback", "event_id": event_id or f"Ev{next(_ids)}",
                       "team_id": "T0KESTREL", "event": event}).encode()
    return requests.post(url, data=body, timeout=30, headers={
        "Content-Type": "application/json", **slack_signed(body, secret), **headers})


def slack_click(stack: Stack, action_id: str, consultation_id: str, message_ts: str) -> requests.Response:
    payload = {"type": "block_actions", "user": {"id": MARA}, "trigger_id": "1.2.3",
               "container": {"type": "message", "channel_id": "D0MARA01", "message_ts": message_ts},
               "actions": [{"action_id": action_id, "value": consultation_id, "action_ts": f"{time.time():.6f}"}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return requests.post(f"{stack.hub_url}/slack/interactivity", data=body, timeout=30, headers={
        "Content-Type": "application/x-www-form-urlencoded", **slack_signed(body, HUB_SLACK_SECRET)})


def telegram_update(url: str, secret: str, update: Dict[str, Any]) -> requests.Response:
    return requests.post(url, json=update, timeout=60, headers={"X-Telegram-Bot-Api-Secret-Token": secret})


def customer_telegram_says(c: Channels, chat_id: int, text: str, update_id: Optional[int] = None) -> requests.Response:
    update = {"update_id": update_id or next(_ids), "message": {
        "message_id": next(_ids), "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "is_bot": False, "first_name": "Kim"}}}
    return telegram_update(f"{c.stack.rasa_url}/webhooks/telegram/webhook", CUSTOMER_TELEGRAM_SECRET, update)


def jonas_says(c: Channels, text: str, reply_to: Optional[int] = None, update_id: Optional[int] = None
               ) -> requests.Response:
    message: Dict[str, Any] = {"message_id": next(_ids), "date": int(time.time()), "text": text,
                               "chat": {"id": JONAS_CHAT, "type": "private"},
                               "from": {"id": JONAS_CHAT, "is_bot": False, "first_name": "Jonas"}}
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "chat": {"id": JONAS_CHAT}}
    return telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET,
                           {"update_id": update_id or next(_ids), "message": message})


def texts_to(fake: Any, recipient: Any) -> List[str]:
    key = "chat_id" if isinstance(fake, FakeBotApi) else "channel"
    return [str(p.get("text") or "") for p in list(fake.posts() if isinstance(fake, FakeSlack) else fake.messages())
            if str(p.get(key)) in {str(recipient), "D" + str(recipient)[1:]}]


def consultation(stack: Stack, conversation_id: Any, assigned: bool = False) -> Dict[str, Any]:
    """The conversation's latest consultation (once an expert was given it, with ``assigned``)."""
    def found() -> Optional[Dict[str, Any]]:
        response = requests.get(f"{stack.hub_url}/api/consultations", params={"conversation_id": conversation_id},
                                headers={"Authorization": f"Bearer {stack.operator_token}"}, timeout=30)
        cases = response.json()
        return cases[-1] if cases and (cases[-1]["assignee"] or not assigned) else None
    return eventually(found, what=f"a consultation for {conversation_id}")


def case_detail(stack: Stack, consultation_id: str) -> Dict[str, Any]:
    return requests.get(f"{stack.hub_url}/api/consultations/{consultation_id}",
                        headers={"Authorization": f"Bearer {stack.operator_token}"}, timeout=30).json()


def slots(stack: Stack, conversation_id: str) -> Dict[str, Any]:
    return requests.get(f"{stack.rasa_url}/conversations/{conversation_id}/tracker",
                        params={"token": stack.rasa_token}, timeout=30).json()["slots"]


def first_delivery(fake: Any, consultation_id: str) -> Dict[str, Any]:
    """The notification about the consultation that reached the expert's fake API."""
    def found() -> Optional[Dict[str, Any]]:
        for payload in list(fake.posts() if isinstance(fake, FakeSlack) else fake.messages()):
            if consultation_id in json.dumps(payload):
                return payload
        return None
    return eventually(found, what=f"the notification of {consultation_id}")


# --- Telegram customer, Slack expert ------------------------------------------------------------------


def test_telegram_customer_gets_the_slack_experts_answer_once_and_forgeries_change_nothing(c: Channels) -> None:
    chat = 880001
    assert customer_telegram_says(c, chat, "I want a refund of €780 for my Hub X1, order 10023").status_code == 200
    case = consultation(c.stack, chat, assigned=True)
    assert (case["queue"], case["assignee"], case["channel"]) == ("billing", "mara", "slack")
    waiting = eventually(lambda: texts_to(c.customer_telegram, chat), what="the wait message")
    assert any("minutes" in text or "colleague" in text for text in waiting), waiting
    assert first_delivery(c.expert_slack, case["id"])["channel"] == MARA
    detail = case_detail(c.stack, case["id"])
    posted_ts = next(e["detail"]["message_id"] for e in detail["audit"] if e["action"] == "assigned")

    answer = {"type": "message", "channel": "D0MARA01", "user": MARA, "ts": f"{time.time():.6f}",
              "thread_ts": posted_ts,
              "text": "answer: The refund of 780 EUR is approved; expect it within 5 days. // finance signed off"}
    forged = slack_event(f"{c.stack.hub_url}/slack/events", "not-the-secret", answer)
    stale = requests.post(f"{c.stack.hub_url}/slack/events", data=b"{}", timeout=30, headers={
        "Content-Type": "application/json", **slack_signed(b"{}", HUB_SLACK_SECRET, int(time.time()) - 600)})
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert case_detail(c.stack, case["id"])["status"] == "assigned"

    before = len(texts_to(c.customer_telegram, chat))
    first = slack_event(f"{c.stack.hub_url}/slack/events", HUB_SLACK_SECRET, answer, event_id="EvRefund780")
    retry = slack_event(f"{c.stack.hub_url}/slack/events", HUB_SLACK_SECRET, answer, event_id="EvRefund780",
                        **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert (first.status_code, retry.status_code) == (200, 200)
    said = eventually(lambda: texts_to(c.customer_telegram, chat)[before:], what="the expert's answer")
    assert any("780 EUR is approved" in text for text in said) and not any("finance" in text for text in said)
    assert eventually(lambda: case_detail(c.stack, case["id"])["status"] == "closed", what="the case closed")
    time.sleep(2)
    assert sum("780 EUR is approved" in text for text in texts_to(c.customer_telegram, chat)) == 1  # the retry: no effect
    answered = [m for m in case_detail(c.stack, case["id"])["messages"] if m["direction"] == "from_expert"]
    assert answered[-1]["meta"]["internal_notes"] == ["finance signed off"]  # kept, never sent

    late = dict(answer, ts=f"{time.time():.6f}", text="answer: actually, make it 800")
    assert slack_event(f"{c.stack.hub_url}/slack/events", HUB_SLACK_SECRET, late).status_code == 200
    told = eventually(lambda: [p for p in c.expert_slack.requests if p.path.endswith("postEphemeral")],
                      what="the expert told the case is closed")
    assert "already decided by Mara Klein (answered)" in told[-1].payload["text"] and told[-1].payload["user"] == MARA
    assert not any("800" in text for text in texts_to(c.customer_telegram, chat))

    assert customer_telegram_says(c, chat, "hello?", update_id=999_999).status_code == 200
    replayed = customer_telegram_says(c, chat, "hello?", update_id=999_999)
    assert replayed.text == "duplicate"
    wrong = telegram_update(f"{c.stack.rasa_url}/webhooks/telegram/webhook", "forged",
                            {"update_id": next(_ids), "message": {"text": "refund 9000 EUR", "chat": {"id": chat}}})
    assert wrong.status_code == 403


# --- Slack customer, Telegram expert: human mode and hand-back -------------------------------------------


def test_slack_customer_in_human_mode_with_a_telegram_expert_then_a_limited_hand_back(c: Channels) -> None:
    customer = "U0CUST0001"
    webhook = f"{c.stack.rasa_url}/webhooks/slack/webhook"

    def customer_says(text: str) -> requests.Response:
        return slack_event(webhook, CUSTOMER_SLACK_SECRET, {
            "type": "message", "channel": "D0CUST0001", "channel_type": "im", "user": customer,
            "text": text, "ts": f"{time.time():.6f}"})

    assert slack_event(webhook, "forged", {"type": "message", "channel": "D0CUST0001", "channel_type": "im",
                                           "user": customer, "text": "hi", "ts": "1.0"}).status_code == 401
    assert customer_says("can i talk to a real person please").status_code == 200
    case = consultation(c.stack, customer, assigned=True)
    assert (case["mode"], case["assignee"], case["channel"]) == ("handoff", "jonas", "telegram")
    card = first_delivery(c.expert_telegram, case["id"])
    assert card["chat_id"] == JONAS_CHAT and card["reply_markup"]["inline_keyboard"]

    take_over = next(b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row
                     if b["callback_data"].startswith("take_over:"))
    press = {"update_id": next(_ids), "callback_query": {
        "id": "cbq-1", "from": {"id": JONAS_CHAT, "is_bot": False, "first_name": "Jonas"},
        "message": {"message_id": 1, "chat": {"id": JONAS_CHAT}}, "data": take_over}}
    forged = telegram_update(f"{c.stack.hub_url}/telegram/webhook", "forged", press)
    assert forged.status_code == 401
    taken = telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET, press)
    assert taken.status_code == 200 and taken.json()["method"] == "answerCallbackQuery"
    assert telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET, press).json() == {}
    joined = eventually(lambda: [t for t in texts_to(c.customer_slack, customer) if "joined" in t],
                        what="the customer told a person joined")
    assert "Jonas" in joined[0]
    assert eventually(lambda: slots(c.stack, customer)["handoff_mode"] == "human", what="human mode")

    said_before = len(texts_to(c.customer_slack, customer))
    assert customer_says("it is about my invoice INV-2025-0107").status_code == 200
    relayed = eventually(lambda: [m for m in c.expert_telegram.messages()
                                  if "INV-2025-0107" in str(m.get("text"))], what="the message relayed to Jonas")
    assert relayed[0]["chat_id"] == JONAS_CHAT
    time.sleep(1)
    assert texts_to(c.customer_slack, customer)[said_before:] == []  # the AI stays silent

    assert jonas_says(c, "I have sent you a corrected copy.").status_code == 200
    person = eventually(lambda: [t for t in texts_to(c.customer_slack, customer) if "corrected copy" in t],
                        what="Jonas's words reaching the customer")
    assert person[0].startswith("Jonas") and "corrected copy" in person[0]

    assert jonas_says(c, "hand back: All sorted.\nallowed: informational").status_code == 200
    eventually(lambda: [t for t in texts_to(c.customer_slack, customer) if "handed the conversation back" in t],
               what="the hand-back message")
    state = slots(c.stack, customer)
    assert state["handoff_mode"] == "handed_back" and "opening_hours" in state["allowed_intents"]

    answered_before = len(texts_to(c.customer_slack, customer))
    assert customer_says("what are your opening hours?").status_code == 200
    eventually(lambda: len(texts_to(c.customer_slack, customer)) > answered_before,
               what="the AI answering an allowed follow-up")
    assert slots(c.stack, customer)["handoff_mode"] == "handed_back"
    assert customer_says("I want to cancel my subscription").status_code == 200
    eventually(lambda: slots(c.stack, customer)["handoff_mode"] == "human", what="back to a person")
    assert slots(c.stack, customer)["escalation_detail"] == "outside_handback"


# --- socket.io (web chat) and REST outbox, answered through the API --------------------------------------


def api_reply(stack: Stack, consultation_id: str, **body: Any) -> requests.Response:
    return requests.post(f"{stack.hub_url}/api/consultations/{consultation_id}/reply", json=body, timeout=90,
                         headers={"Authorization": f"Bearer {stack.operator_token}"})


def test_web_chat_customer_receives_the_answer_on_the_open_socket(c: Channels) -> None:
    session = f"web-{next(_ids)}"

    async def chat() -> List[Dict[str, Any]]:
        client = socketio.AsyncClient()
        received: List[Dict[str, Any]] = []
        confirmed = asyncio.Event()
        client.on("session_confirm", lambda *_: confirmed.set())
        client.on("bot_uttered", received.append)
        # long-polling: python-engineio's websocket client needs a newer aiohttp than Rasa 3.6 pins
        await client.connect(c.stack.rasa_url, transports=["polling"], wait_timeout=30)
        try:
            await client.emit("session_request", {"session_id": session})
            await asyncio.wait_for(confirmed.wait(), 30)
            await client.emit("user_uttered", {"message": "I want a refund of €780 for my Hub X1, order 10023",
                                               "session_id": session})
            await asyncio.to_thread(eventually, lambda: received, 60, "the wait message on the socket")
            case = await asyncio.to_thread(consultation, c.stack, session)
            count = len(received)
            answered = await asyncio.to_thread(api_reply, c.stack, case["id"], action="answer",
                                               text="Approved: 780 EUR back in 5 days. // ok'd by Mara")
            assert answered.ok, answered.text
            await asyncio.to_thread(eventually, lambda: received[count:], 60, "the answer pushed on the socket")
            return received[count:]
        finally:
            await client.eio.disconnect(abort=True)

    pushed = asyncio.run(chat())
    assert any("780 EUR back in 5 days" in m.get("text", "") for m in pushed), pushed
    assert not any("ok'd" in m.get("text", "") for m in pushed)


def test_rest_customer_reads_the_answer_from_the_outbox(c: Channels) -> None:
    sender = f"outbox-{next(_ids)}"
    first = requests.post(f"{c.stack.rasa_url}/webhooks/outbox/webhook", timeout=60, headers=c.stack.channel_auth,
                          json={"sender": sender, "message": "I want a refund of €780 for my Hub X1, order 10023"})
    assert first.status_code == 200 and first.json()
    case = consultation(c.stack, sender)
    assert api_reply(c.stack, case["id"], action="deny", text="Refunds over 500 EUR need the device back first.").ok

    def outbox() -> List[Dict[str, Any]]:
        return requests.get(f"{c.stack.rasa_url}/webhooks/outbox/messages", params={"sender": sender},
                            headers=c.stack.channel_auth, timeout=30).json()
    messages = eventually(outbox, what="the answer in the outbox")
    assert any("device back first" in m["text"] for m in messages)
    last = messages[-1]["id"]
    assert requests.get(f"{c.stack.rasa_url}/webhooks/outbox/messages", params={"sender": sender, "after": last},
                        headers=c.stack.channel_auth, timeout=30).json() == []
