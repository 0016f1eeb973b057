"""The loop closed on every customer channel, with the real processes (`backline run`: Rasa server,
action server, hub) and loopback servers speaking Slack's Web API and Telegram's Bot API.

Experts: Mara (billing) on Slack, Jonas (support) on Telegram (tests/fixtures/experts_channels.yml).
They answer through the hub's signed webhooks exactly as Slack and Telegram would call them.
"""

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Dict, Iterator, List, Tuple

import pytest
import requests
import socketio

from tests.channels_stack import (
    CUSTOMER_SLACK_SECRET,
    HUB_SLACK_SECRET,
    HUB_TELEGRAM_SECRET,
    JONAS_CHAT,
    MARA,
    Channels,
    _ids,
    api_reply,
    case_detail,
    consultation,
    customer_telegram_says,
    eventually,
    first_delivery,
    jonas_says,
    running_channels,
    slack_event,
    slack_signed,
    slots,
    telegram_update,
    texts_to,
)


@pytest.fixture(scope="module")
def c(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    with running_channels(business_url_today, tmp_path_factory.mktemp("channels")) as channels:
        yield channels


# --- Telegram customer, Slack expert ------------------------------------------------------------------


def test_telegram_customer_gets_the_slack_experts_answer_once_and_forgeries_change_nothing(c: Channels) -> None:
    chat = 880001
    assert customer_telegram_says(c, chat, "I want a refund of €780 for my Hub X1, order 10023").status_code == 200
    case = consultation(c.stack, f"telegram:{chat}", assigned=True)  # conversation ids are namespaced
    assert (case["queue"], case["assignee"], case["channel"]) == ("billing", "mara", "slack")
    waiting = eventually(lambda: texts_to(c.customer_telegram, chat), what="the wait message")
    assert any("minutes" in text or "colleague" in text for text in waiting), waiting
    assert first_delivery(c.expert_slack, case["id"])["channel"] == MARA
    detail = case_detail(c.stack, case["id"])
    posted_ts = next(e["detail"]["message_id"] for e in detail["audit"] if e["action"] == "assigned")

    answer = {
        "type": "message",
        "channel": "D0MARA01",
        "user": MARA,
        "ts": f"{time.time():.6f}",
        "thread_ts": posted_ts,
        "text": "answer: The refund of 780 EUR is approved; expect it within 5 days. // finance signed off",
    }
    forged = slack_event(f"{c.stack.hub_url}/slack/events", "not-the-secret", answer)
    stale = requests.post(
        f"{c.stack.hub_url}/slack/events",
        data=b"{}",
        timeout=30,
        headers={"Content-Type": "application/json", **slack_signed(b"{}", HUB_SLACK_SECRET, int(time.time()) - 600)},
    )
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert case_detail(c.stack, case["id"])["status"] == "assigned"

    before = len(texts_to(c.customer_telegram, chat))
    first = slack_event(f"{c.stack.hub_url}/slack/events", HUB_SLACK_SECRET, answer, event_id="EvRefund780")
    retry = slack_event(
        f"{c.stack.hub_url}/slack/events",
        HUB_SLACK_SECRET,
        answer,
        event_id="EvRefund780",
        **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    said = eventually(lambda: texts_to(c.customer_telegram, chat)[before:], what="the expert's answer")
    assert any("780 EUR is approved" in text for text in said) and not any("finance" in text for text in said)
    assert eventually(lambda: case_detail(c.stack, case["id"])["status"] == "closed", what="the case closed")
    time.sleep(2)
    assert (
        sum("780 EUR is approved" in text for text in texts_to(c.customer_telegram, chat)) == 1
    )  # the retry: no effect
    answered = [m for m in case_detail(c.stack, case["id"])["messages"] if m["direction"] == "from_expert"]
    assert answered[-1]["meta"]["internal_notes"] == ["finance signed off"]  # kept, never sent

    late = dict(answer, ts=f"{time.time():.6f}", text="answer: actually, make it 800")
    assert slack_event(f"{c.stack.hub_url}/slack/events", HUB_SLACK_SECRET, late).status_code == 200
    told = eventually(
        lambda: [p for p in c.expert_slack.requests if p.path.endswith("postEphemeral")],
        what="the expert told the case is closed",
    )
    assert "already decided by Mara Klein (answered)" in told[-1].payload["text"] and told[-1].payload["user"] == MARA
    assert not any("800" in text for text in texts_to(c.customer_telegram, chat))

    assert customer_telegram_says(c, chat, "hello?", update_id=999_999).status_code == 200
    replayed = customer_telegram_says(c, chat, "hello?", update_id=999_999)
    assert replayed.text == "duplicate"
    wrong = telegram_update(
        f"{c.stack.rasa_url}/webhooks/telegram/webhook",
        "forged",
        {"update_id": next(_ids), "message": {"text": "refund 9000 EUR", "chat": {"id": chat}}},
    )
    assert wrong.status_code == 403


# --- Slack customer, Telegram expert: human mode and hand-back -------------------------------------------


def test_slack_customer_in_human_mode_with_a_telegram_expert_then_a_limited_hand_back(c: Channels) -> None:
    customer = "U0CUST0001"
    webhook = f"{c.stack.rasa_url}/webhooks/slack/webhook"

    def customer_says(text: str) -> requests.Response:
        return slack_event(
            webhook,
            CUSTOMER_SLACK_SECRET,
            {
                "type": "message",
                "channel": "D0CUST0001",
                "channel_type": "im",
                "user": customer,
                "text": text,
                "ts": f"{time.time():.6f}",
            },
        )

    assert (
        slack_event(
            webhook,
            "forged",
            {
                "type": "message",
                "channel": "D0CUST0001",
                "channel_type": "im",
                "user": customer,
                "text": "hi",
                "ts": "1.0",
            },
        ).status_code
        == 401
    )
    assert customer_says("can i talk to a real person please").status_code == 200
    case = consultation(c.stack, f"slack:{customer}", assigned=True)
    assert (case["mode"], case["assignee"], case["channel"]) == ("handoff", "jonas", "telegram")
    card = first_delivery(c.expert_telegram, case["id"])
    assert card["chat_id"] == JONAS_CHAT and card["reply_markup"]["inline_keyboard"]

    take_over = next(
        b["callback_data"]
        for row in card["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("take_over:")
    )
    press = {
        "update_id": next(_ids),
        "callback_query": {
            "id": "cbq-1",
            "from": {"id": JONAS_CHAT, "is_bot": False, "first_name": "Jonas"},
            "message": {"message_id": 1, "chat": {"id": JONAS_CHAT}},
            "data": take_over,
        },
    }
    forged = telegram_update(f"{c.stack.hub_url}/telegram/webhook", "forged", press)
    assert forged.status_code == 401
    taken = telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET, press)
    assert taken.status_code == 200 and taken.json()["method"] == "answerCallbackQuery"
    assert telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET, press).json() == {}
    joined = eventually(
        lambda: [t for t in texts_to(c.customer_slack, customer) if "joined" in t],
        what="the customer told a person joined",
    )
    assert "Jonas" in joined[0]
    assert eventually(lambda: slots(c.stack, f"slack:{customer}")["handoff_mode"] == "human", what="human mode")

    said_before = len(texts_to(c.customer_slack, customer))
    assert customer_says("it is about my invoice INV-2025-0107").status_code == 200
    relayed = eventually(
        lambda: [m for m in c.expert_telegram.messages() if "INV-2025-0107" in str(m.get("text"))],
        what="the message relayed to Jonas",
    )
    assert relayed[0]["chat_id"] == JONAS_CHAT
    time.sleep(1)
    assert texts_to(c.customer_slack, customer)[said_before:] == []  # the AI stays silent

    assert jonas_says(c, "I have sent you a corrected copy.").status_code == 200
    person = eventually(
        lambda: [t for t in texts_to(c.customer_slack, customer) if "corrected copy" in t],
        what="Jonas's words reaching the customer",
    )
    assert person[0].startswith("Jonas") and "corrected copy" in person[0]

    assert jonas_says(c, "hand back: All sorted.\nallowed: informational").status_code == 200
    eventually(
        lambda: [t for t in texts_to(c.customer_slack, customer) if "handed the conversation back" in t],
        what="the hand-back message",
    )
    state = slots(c.stack, f"slack:{customer}")
    assert state["handoff_mode"] == "handed_back" and "opening_hours" in state["allowed_intents"]

    answered_before = len(texts_to(c.customer_slack, customer))
    assert customer_says("what are your opening hours?").status_code == 200
    eventually(
        lambda: len(texts_to(c.customer_slack, customer)) > answered_before,
        what="the AI answering an allowed follow-up",
    )
    assert slots(c.stack, f"slack:{customer}")["handoff_mode"] == "handed_back"
    assert customer_says("I want to cancel my subscription").status_code == 200
    eventually(lambda: slots(c.stack, f"slack:{customer}")["handoff_mode"] == "human", what="back to a person")
    assert slots(c.stack, f"slack:{customer}")["escalation_detail"] == "outside_handback"


# --- socket.io (web chat) and REST outbox, answered through the API --------------------------------------


@contextlib.asynccontextmanager
async def web_chat(rasa_url: str, requested: Dict[str, Any]) -> AsyncIterator[Tuple[Any, List[Dict[str, Any]], str]]:
    """A socket.io customer: (client, the bot messages received so far, the session id the server issued)."""
    client = socketio.AsyncClient()
    received: List[Dict[str, Any]] = []
    issued: List[str] = []
    confirmed = asyncio.Event()

    def on_confirm(session_id: str) -> None:
        issued.append(session_id)
        confirmed.set()

    client.on("session_confirm", on_confirm)
    client.on("bot_uttered", received.append)
    # long-polling: python-engineio's websocket client needs a newer aiohttp than Rasa 3.6 pins
    await client.connect(rasa_url, transports=["polling"], wait_timeout=30)
    try:
        await client.emit("session_request", requested)
        await asyncio.wait_for(confirmed.wait(), 30)
        yield client, received, issued[0]
    finally:
        await client.eio.disconnect(abort=True)


def test_web_chat_customer_receives_the_answer_on_the_open_socket(c: Channels) -> None:
    async def chat() -> List[Dict[str, Any]]:
        async with web_chat(c.stack.rasa_url, {"session_id": f"web-{next(_ids)}"}) as (client, received, session):
            # the session id asked for is not one the server issued: it issues its own
            await client.emit(
                "user_uttered", {"message": "I want a refund of €780 for my Hub X1, order 10023", "session_id": session}
            )
            await asyncio.to_thread(eventually, lambda: received, 60, "the wait message on the socket")
            case = await asyncio.to_thread(consultation, c.stack, "web:" + session.split(".")[0])
            count = len(received)
            answered = await asyncio.to_thread(
                api_reply,
                c.stack,
                case["id"],
                action="answer",
                text="Approved: 780 EUR back in 5 days. // ok'd by Mara",
            )
            assert answered.ok, answered.text
            await asyncio.to_thread(eventually, lambda: received[count:], 60, "the answer pushed on the socket")
            return received[count:]

    pushed = asyncio.run(chat())
    assert any("780 EUR back in 5 days" in m.get("text", "") for m in pushed), pushed
    assert not any("ok'd" in m.get("text", "") for m in pushed)


def test_web_chat_customer_is_asked_for_the_refund_details_then_routed_to_billing(c: Channels) -> None:
    """collect_then_route over socket.io: the form asks, checks, and the case reaches billing with the facts."""
    sessions: List[str] = []

    async def chat() -> List[str]:
        async with web_chat(c.stack.rasa_url, {}) as (client, received, session):
            sessions.append(session)
            said: List[str] = []
            for text, expect in (
                ("i want a refund please", "order number"),
                ("order 10023", "How much should be refunded"),
                ("49 euros", "passed your refund request"),
            ):
                count = len(received)
                await client.emit("user_uttered", {"message": text, "session_id": session})
                got = await asyncio.to_thread(
                    eventually,
                    lambda: [m for m in received[count:] if expect in m.get("text", "")] and received[count:],
                    60,
                    f"a reply with {expect!r}",
                )
                said += [m.get("text", "") for m in got]
            return said

    said = asyncio.run(chat())
    assert any("order 10023, amount €49" in text for text in said), said
    case = consultation(c.stack, "web:" + sessions[0].split(".")[0])
    assert (case["mode"], case["queue"], case["reasons"]) == ("consult", "billing", ["policy_action"])
    assert case["brief"]["collected"] == {"order_id": "10023", "amount": {"value": 49.0, "currency": "EUR"}}


def test_rest_customer_reads_the_answer_from_the_outbox(c: Channels) -> None:
    sender = f"outbox-{next(_ids)}"
    first = requests.post(
        f"{c.stack.rasa_url}/webhooks/outbox/webhook",
        timeout=60,
        headers=c.stack.channel_auth,
        json={"sender": sender, "message": "I want a refund of €780 for my Hub X1, order 10023"},
    )
    assert first.status_code == 200 and first.json()
    case = consultation(c.stack, sender)
    assert api_reply(c.stack, case["id"], action="deny", text="Refunds over 500 EUR need the device back first.").ok

    def outbox() -> List[Dict[str, Any]]:
        return requests.get(
            f"{c.stack.rasa_url}/webhooks/outbox/messages",
            params={"sender": sender},
            headers=c.stack.channel_auth,
            timeout=30,
        ).json()

    messages = eventually(outbox, what="the answer in the outbox")
    assert any("device back first" in m["text"] for m in messages)
    last = messages[-1]["id"]
    assert (
        requests.get(
            f"{c.stack.rasa_url}/webhooks/outbox/messages",
            params={"sender": sender, "after": last},
            headers=c.stack.channel_auth,
            timeout=30,
        ).json()
        == []
    )
