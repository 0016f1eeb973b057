"""The Slack customer channel: Rasa's connector on a configurable API URL, retries applied once,
proactive messages addressed to the conversation's DM or thread, bodies of the wrong shape refused (a real
Sanic server, a fake Slack API)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from typing import Any, Dict, Iterator, List

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from backline.rasa.channels.slack import SlackInput, SlackOutput
from tests.channel_servers import LiveApp
from tests.expert_apis import FakeSlack

SECRET = "customer-signing-secret"


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    api = FakeSlack("xoxb-customers")
    api.start()
    yield api
    api.stop()


@pytest.fixture
def served(slack_api: FakeSlack) -> Iterator[Dict[str, Any]]:
    channel = SlackInput.from_credentials(
        {"slack_token": "xoxb-customers", "slack_signing_secret": SECRET, "api_url": f"{slack_api.url}/api"}
    )
    received: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

    app = Sanic(f"slack-{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/slack")
    live = LiveApp(app).start()
    yield {"url": f"{live.url}/webhooks/slack/webhook", "received": received, "channel": channel, "live": live}
    live.stop()


def post_event(
    url: str, event: Dict[str, Any], event_id: str, secret: str = SECRET, **headers: str
) -> requests.Response:
    body = json.dumps({"type": "event_callback", "event_id": event_id, "event": event}).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return requests.post(
        url,
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
            **headers,
        },
    )


DM = {
    "type": "message",
    "channel": "D0CUST0001",
    "channel_type": "im",
    "user": "U0CUST0001",
    "text": "where is my order 10023?",
    "ts": "1764000000.000100",
}


def wait_for(probe: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return probe()
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_message_is_answered_through_the_configured_api(served: Dict[str, Any], slack_api: FakeSlack) -> None:
    assert post_event(served["url"], DM, "Ev1").status_code == 200
    posts = wait_for(slack_api.posts)
    assert posts[0]["channel"] == "D0CUST0001" and posts[0]["text"] == "echo: where is my order 10023?"
    assert slack_api.requests[0].headers["Authorization"] == "Bearer xoxb-customers"
    assert served["received"][0].sender_id == "slack:U0CUST0001"


def test_a_retried_event_reaches_rasa_once(served: Dict[str, Any], slack_api: FakeSlack) -> None:
    for retry in ("", "1", "2"):
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_error"} if retry else {}
        assert post_event(served["url"], DM, "EvSame", **headers).status_code == 200
    assert post_event(served["url"], dict(DM, ts="1764000000.000200"), "EvOther").status_code == 200
    wait_for(lambda: len(slack_api.posts()) == 2)
    time.sleep(0.3)
    assert [m.text for m in served["received"]] == ["where is my order 10023?"] * 2
    assert len(slack_api.posts()) == 2


def test_forged_and_stale_requests_are_refused(served: Dict[str, Any], slack_api: FakeSlack) -> None:
    assert post_event(served["url"], DM, "EvForged", secret="not-the-secret").status_code == 401
    body = json.dumps({"type": "event_callback", "event_id": "EvOld", "event": DM}).encode()
    old = str(int(time.time()) - 600)
    digest = hmac.new(SECRET.encode(), f"v0:{old}:".encode() + body, hashlib.sha256).hexdigest()
    stale = requests.post(
        served["url"],
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": old,
            "X-Slack-Signature": f"v0={digest}",
        },
    )
    assert stale.status_code == 401
    time.sleep(0.3)
    assert served["received"] == [] and slack_api.posts() == []


def test_proactive_messages_find_the_dm_or_the_thread(served: Dict[str, Any], slack_api: FakeSlack) -> None:
    channel: SlackInput = served["channel"]
    output = channel.get_output_channel()
    assert isinstance(output, SlackOutput)
    served["live"].run(output.send_text_message("U0CUST0001", "Mara: your refund is approved"))
    served["live"].run(
        channel.get_output_channel().send_text_message("U0CUST0001_C0SUPPORT_1764000000.000300", "In the thread")
    )
    first, second = slack_api.posts()
    assert (first["channel"], first.get("thread_ts")) == ("U0CUST0001", None)
    assert (second["channel"], second["thread_ts"], second["text"]) == (
        "C0SUPPORT",
        "1764000000.000300",
        "In the thread",
    )


def test_a_persons_message_is_signed_with_their_name_once(served: Dict[str, Any], slack_api: FakeSlack) -> None:
    output = served["channel"].get_output_channel()
    for message in (
        {"text": "I've refunded the order.", "sender_name": "Mara Klein"},
        {"text": "Mara Klein: Anything else?", "sender_name": "Mara Klein"},
        {"text": "Back to the assistant."},
    ):
        served["live"].run(output.send_response("U0CUST0001", dict(message)))
    assert [post["text"] for post in slack_api.posts()] == [
        "Mara Klein: I've refunded the order.",
        "Mara Klein: Anything else?",
        "Back to the assistant.",
    ]


def test_without_api_url_it_uses_slacks(slack_api: FakeSlack) -> None:
    channel = SlackInput.from_credentials({"slack_token": "xoxb-x", "slack_signing_secret": SECRET})
    assert channel.get_output_channel().client.base_url == "https://slack.com/api/"


# --- bad bodies: checked after the signature, answered 4xx, nothing reaches Rasa -------------------------


def post_signed(url: str, body: bytes, content_type: str, secret: str = SECRET) -> requests.Response:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return requests.post(
        url,
        data=body,
        timeout=10,
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
        },
    )


def click(**action: Any) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0CUST0001"},
        "channel": {"id": "D0CUST0001"},
        "message": {"ts": "1764000000.000100"},
        "actions": [{"type": "button", "value": "/affirm", "action_ts": "1764000000.5", **action}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize(
    "body, content_type, status, error",
    [
        (b"[1, 2]", "application/json", 400, "the body is an array, not a JSON object"),
        (b"{" * 3, "application/json", 400, "the body is not JSON"),
        (b"\xff\xfe", "application/json", 400, "the body is not UTF-8"),
        (
            json.dumps({"type": "event_callback", "event": "hi"}).encode(),
            "application/json",
            400,
            "event must be a JSON object, not a string",
        ),
        (
            json.dumps({"type": "event_callback", "event": dict(DM, text=42)}).encode(),
            "application/json",
            400,
            "event.text must be a string, not a number",
        ),
        (
            json.dumps({"type": "event_callback", "event": dict(DM, user={"id": "U1"})}).encode(),
            "application/json",
            400,
            "event.user must be a string, not an object",
        ),
        (
            json.dumps({"type": "event_callback", "event": dict(DM, text="a" * 5000)}).encode(),
            "application/json",
            413,
            "event.text is longer than 4096 characters",
        ),
        (b"token=x&text=hi", "application/x-www-form-urlencoded", 400, "expected a form field 'payload'"),
        (
            b"payload=%5B1%5D",
            "application/x-www-form-urlencoded",
            400,
            "the form field 'payload' is an array, not a JSON object",
        ),
        (click(value=["/affirm"]), "application/x-www-form-urlencoded", 400, "the action's value must be a string"),
        (click(action_ts=1.5), "application/x-www-form-urlencoded", 400, "action_ts must be a string"),
        (b"hello", "text/plain", 415, "Slack sends events as application/json"),
    ],
)
def test_a_signed_body_of_the_wrong_shape_gets_a_4xx_and_reaches_no_one(
    served: Dict[str, Any], body: bytes, content_type: str, status: int, error: str
) -> None:
    answer = post_signed(served["url"], body, content_type)

    assert answer.status_code == status
    assert error in answer.json()["error"]
    time.sleep(0.2)
    assert served["received"] == []


def test_a_click_reaches_rasa_once_and_components_rasa_cannot_read_are_ignored(served: Dict[str, Any]) -> None:
    url, form = served["url"], "application/x-www-form-urlencoded"
    answers = [
        post_signed(url, body, form).status_code
        for body in (click(), click(), click(type="rich_text_input"), click(value=None, action_ts="1764000000.6"))
    ]
    unsigned = requests.post(url, data=click(action_ts="1764000000.7"), headers={"Content-Type": form}, timeout=10)
    challenge = post_signed(
        url, json.dumps({"type": "url_verification", "challenge": "c-42"}).encode(), "application/json"
    )

    assert answers == [200, 200, 200, 200]
    assert (unsigned.status_code, challenge.json()) == (401, {"challenge": "c-42"})
    wait_for(lambda: served["received"])
    time.sleep(0.2)
    assert [(m.text, m.sender_id) for m in served["received"]] == [("/affirm", "slack:U0CUST0001")]
