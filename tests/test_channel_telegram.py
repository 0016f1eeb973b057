"""The Telegram customer channel against a loopback Bot API: its webhook in a real Sanic app, and
trigger_intent through a real `rasa run`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from backline.limits import MAX_BODY_BYTES, MAX_MESSAGE_CHARS, SERVER_MAX_BYTES
from backline.rasa.channels import enabled_credentials
from backline.rasa.channels.telegram import SECRET_HEADER, TelegramError, TelegramInput
from tests.channel_servers import FakeBotApi, LiveApp
from tests.expert_apis import Answer, Recorded, RecordingApi
from tests.servers import PROJECT_ROOT, free_port

TOKEN = "123456:customer-bot-token"
SECRET = "webhook-secret_42"
CHAT = 777000111
WEBHOOK_URL = "https://bot.example/webhooks/telegram/webhook"


def update(update_id: int, text: str) -> Dict[str, Any]:
    """A customer's text message as Telegram posts it to the webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1764000000,
            "text": text,
            "chat": {"id": CHAT, "type": "private"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "Ada"},
        },
    }


class Webhook:
    """A TelegramInput in a Sanic app on loopback; each user message is recorded and echoed back."""

    def __init__(self, bot_api: FakeBotApi) -> None:
        self.received: List[UserMessage] = []
        self.channel = TelegramInput(
            TOKEN, verify=bot_api.username, webhook_url=WEBHOOK_URL, secret_token=SECRET, api_url=bot_api.url
        )

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)
            await message.output_channel.send_response(message.sender_id, {"text": f"echo: {message.text}"})

        app = Sanic(f"telegram-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(self.channel.blueprint(on_new_message), url_prefix="/webhooks/telegram")
        self.live = LiveApp(app).start()

    def post(self, body: Dict[str, Any], secret: str = SECRET) -> requests.Response:
        return requests.post(
            f"{self.live.url}/webhooks/telegram/webhook", json=body, headers={SECRET_HEADER: secret}, timeout=30
        )


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    api = FakeBotApi(TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def webhook(bot_api: FakeBotApi) -> Iterator[Webhook]:
    hook = Webhook(bot_api)
    yield hook
    hook.live.stop()


def test_an_update_reaches_rasa_and_the_reply_reaches_the_bot_api(webhook: Webhook, bot_api: FakeBotApi) -> None:
    answer = webhook.post(update(1, "where is my order 10023?"))

    assert answer.status_code == 200
    [message] = webhook.received
    assert (message.text, message.sender_id) == ("where is my order 10023?", f"telegram:{CHAT}")
    assert message.input_channel == "telegram"
    assert bot_api.calls("sendMessage") == [{"chat_id": str(CHAT), "text": "echo: where is my order 10023?"}]


def test_startup_checks_the_bot_and_registers_the_webhook_with_the_secret(
    webhook: Webhook, bot_api: FakeBotApi
) -> None:
    assert bot_api.calls("getMe") == [{}]
    assert bot_api.calls("setWebhook") == [{"url": WEBHOOK_URL, "secret_token": SECRET}]


@pytest.mark.parametrize("secret", ["forged", "", SECRET + "x"])
def test_a_forged_secret_token_is_refused_and_nothing_reaches_rasa(
    webhook: Webhook, bot_api: FakeBotApi, secret: str
) -> None:
    answer = webhook.post(update(2, "I want a refund of 900 EUR"), secret=secret)

    assert answer.status_code == 403
    assert webhook.received == []
    assert bot_api.calls("sendMessage") == []


def test_a_replayed_update_has_one_effect(webhook: Webhook, bot_api: FakeBotApi) -> None:
    first = webhook.post(update(3, "hello"))
    replay = webhook.post(update(3, "hello"))
    webhook.post(update(4, "hello again"))

    assert (first.status_code, replay.status_code) == (200, 200)
    assert [m.text for m in webhook.received] == ["hello", "hello again"]
    assert len(bot_api.calls("sendMessage")) == 2


def test_a_button_press_is_the_payload_and_is_acknowledged(webhook: Webhook, bot_api: FakeBotApi) -> None:
    press = {
        "update_id": 5,
        "callback_query": {
            "id": "cbq-1",
            "data": "/affirm",
            "from": {"id": CHAT, "is_bot": False, "first_name": "Ada"},
            "message": {"message_id": 9, "date": 1764000000, "chat": {"id": CHAT, "type": "private"}, "text": "Sure?"},
        },
    }

    assert webhook.post(press).status_code == 200

    assert [(m.text, m.sender_id) for m in webhook.received] == [("/affirm", f"telegram:{CHAT}")]
    assert bot_api.calls("answerCallbackQuery") == [{"callback_query_id": "cbq-1"}]


def test_an_update_without_text_is_accepted_and_ignored(webhook: Webhook) -> None:
    sticker = {
        "update_id": 6,
        "message": {
            "message_id": 6,
            "date": 1764000000,
            "chat": {"id": CHAT, "type": "private"},
            "sticker": {"file_id": "x"},
        },
    }

    assert webhook.post(sticker).status_code == 200
    assert webhook.post({"message": {"text": "no update id"}}).status_code == 400
    assert webhook.received == []


@pytest.mark.parametrize(
    "body, error",
    [
        ({"update_id": "7", "message": {"chat": {"id": CHAT}, "text": "hi"}}, "update_id (an integer)"),
        ({"update_id": True, "message": {"chat": {"id": CHAT}, "text": "hi"}}, "update_id (an integer)"),
        ({"update_id": 7, "message": "hi"}, "message must be a JSON object, not a string"),
        (
            {"update_id": 7, "message": {"chat": {"id": CHAT}, "text": 42}},
            "message.text must be a string, not a number",
        ),
        (
            {"update_id": 7, "message": {"chat": [CHAT], "text": "hi"}},
            "message.chat must be a JSON object, not an array",
        ),
        ({"update_id": 7, "message": {"chat": {"id": 1.5}, "text": "hi"}}, "message.chat.id must be a string"),
        ({"update_id": 7, "message": {"chat": {"id": CHAT}, "text": "\u0000"}}, "contains NUL"),
        (
            {"update_id": 7, "message": {"chat": {"id": CHAT}, "location": {"longitude": "east", "latitude": 1}}},
            "longitude must be a number",
        ),
        (
            {"update_id": 7, "callback_query": {"id": "q", "data": {"x": 1}, "message": {"chat": {"id": CHAT}}}},
            "callback_query.data must be a string, not an object",
        ),
    ],
)
def test_a_wrongly_typed_update_gets_400_and_does_not_use_up_its_update_id(
    webhook: Webhook, body: Dict[str, Any], error: str
) -> None:
    refused = webhook.post(body)
    corrected = webhook.post(update(7, "hello"))

    assert refused.status_code == 400 and error in refused.json()["error"]
    assert corrected.status_code == 200
    assert [m.text for m in webhook.received] == ["hello"]


def test_bodies_that_are_not_json_or_too_large_are_refused_after_the_secret(webhook: Webhook) -> None:
    url = f"{webhook.live.url}/webhooks/telegram/webhook"
    big = json.dumps({**update(8, "hi"), "padding": "x" * MAX_BODY_BYTES}).encode()

    def send(data: bytes, secret: str = SECRET) -> requests.Response:
        return requests.post(url, data=data, headers={SECRET_HEADER: secret}, timeout=30)

    assert [send(data).status_code for data in (b"", b"{", b"[" * 5000, b"\xff\xfe", big)] == [400, 400, 400, 400, 413]
    assert send(big, secret="forged").status_code == 403
    assert webhook.post(update(9, "a" * (MAX_MESSAGE_CHARS + 1))).status_code == 413
    assert webhook.received == []


def test_buttons_become_a_keyboard(webhook: Webhook, bot_api: FakeBotApi) -> None:
    out = webhook.channel.get_output_channel()
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]

    webhook.live.run(out.send_response(str(CHAT), {"text": "Shall I?", "buttons": list(buttons)}))
    webhook.live.run(
        out.send_response(str(CHAT), {"text": "Really?", "buttons": list(buttons), "button_type": "vertical"})
    )
    webhook.live.run(out.send_response(str(CHAT), {"text": "Sure?", "buttons": list(buttons), "button_type": "reply"}))

    inline, vertical, reply = bot_api.calls("sendMessage")
    assert inline == {
        "chat_id": str(CHAT),
        "text": "Shall I?",
        "reply_markup": {
            "inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}, {"text": "No", "callback_data": "/deny"}]]
        },
    }
    assert vertical["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}], [{"text": "No", "callback_data": "/deny"}]]
    }
    assert reply["reply_markup"] == {"keyboard": [[{"text": "Yes"}], [{"text": "No"}]], "one_time_keyboard": True}


def test_a_message_from_a_person_is_signed_with_their_name_once(webhook: Webhook, bot_api: FakeBotApi) -> None:
    out = webhook.channel.get_output_channel()

    webhook.live.run(out.send_response(str(CHAT), {"text": "I've refunded the order.", "sender_name": "Mara"}))
    webhook.live.run(out.send_response(str(CHAT), {"text": "Mara: Anything else?", "sender_name": "Mara"}))

    assert [m["text"] for m in bot_api.calls("sendMessage")] == [
        "Mara: I've refunded the order.",
        "Mara: Anything else?",
    ]


def test_images_and_custom_payloads_are_bot_api_calls(webhook: Webhook, bot_api: FakeBotApi) -> None:
    out = webhook.channel.get_output_channel()

    webhook.live.run(out.send_response(str(CHAT), {"image": "https://cdn.example/label.png"}))
    custom = {"method": "sendPhoto", "photo": "https://cdn.example/x.png"}
    webhook.live.run(out.send_response(str(CHAT), {"custom": custom}))

    assert bot_api.calls("sendPhoto") == [
        {"chat_id": str(CHAT), "photo": "https://cdn.example/label.png"},
        {"chat_id": str(CHAT), "photo": "https://cdn.example/x.png"},
    ]


def test_a_token_of_another_bot_is_not_registered(bot_api: FakeBotApi) -> None:
    channel = TelegramInput(TOKEN, verify="someone_elses_bot", webhook_url=WEBHOOK_URL, api_url=bot_api.url)

    with pytest.raises(TelegramError, match="kestrel_support_bot"):
        asyncio.run(channel.register_webhook())
    assert bot_api.calls("setWebhook") == []


def test_only_channels_whose_variables_are_set_are_enabled() -> None:
    template = (
        "# Customer channels\nrest:\n\nbackline.rasa.channels.telegram.TelegramInput:\n"
        "  access_token: ${TG_TOKEN}\n  # set ${NOT_REQUIRED} in comments\n  api_url: ${TG_API}\n\n"
        "socketio:\n  session_persistence: true\n"
    )

    without = enabled_credentials(template, {"TG_API": "https://api.telegram.org", "TG_TOKEN": ""})
    with_token = enabled_credentials(template, {"TG_API": "https://api.telegram.org", "TG_TOKEN": "1:x"})

    assert without == "# Customer channels\nrest:\n\nsocketio:\n  session_persistence: true\n"
    assert with_token == template


# --- trigger_intent through a real Rasa server -------------------------------------------------

MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
API_TOKEN = "channel-test-token"


def expert_update(record: Recorded) -> Answer:
    """An action server whose action_expert_update says the expert's answer as Mara."""
    return 200, {"events": [], "responses": [{"text": "Your refund is approved.", "sender_name": "Mara"}]}, {}


@pytest.fixture(scope="module")
def rasa_with_telegram(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """`rasa run` with only the Telegram channel, a FakeBotApi and a scripted action server;
    yields (base URL, bot API, action server)."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train`")
    tmp = tmp_path_factory.mktemp("rasa-telegram")
    api = FakeBotApi(TOKEN).start()
    actions = RecordingApi(expert_update).start()
    credentials = tmp / "credentials.yml"
    credentials.write_text(
        "backline.rasa.channels.telegram.TelegramInput:\n  access_token: ${TG_TOKEN}\n  verify: kestrel_support_bot\n"
        "  secret_token: ${TG_SECRET}\n  api_url: ${TG_API_URL}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "TG_TOKEN": TOKEN,
        "TG_SECRET": SECRET,
        "TG_API_URL": api.url,
        "RASA_TELEMETRY_ENABLED": "false",
        "BACKLINE_TRACKER_DB": str(tmp / "tracker.db"),
        "BACKLINE_ACTION_ENDPOINT": f"{actions.url}/webhook",
        "BACKLINE_ACTION_TOKEN": "test-action-token",
    }
    log_path = tmp / "rasa.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rasa"),
                "run",
                "--model",
                str(MODEL),
                "--port",
                str(port),
                "--enable-api",
                "--auth-token",
                API_TOKEN,
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                str(credentials),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rasa run did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base_url}/status", params={"token": API_TOKEN}, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        yield base_url, api, actions
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        api.stop()
        actions.stop()


def test_trigger_intent_with_the_latest_channel_reaches_telegram(rasa_with_telegram: tuple) -> None:
    base_url, api, actions = rasa_with_telegram
    hook = f"{base_url}/webhooks/telegram/webhook"
    forged = requests.post(hook, json=update(10, "/greet"), headers={SECRET_HEADER: "forged"}, timeout=60)
    genuine = requests.post(hook, json=update(11, "/greet"), headers={SECRET_HEADER: SECRET}, timeout=60)
    assert (forged.status_code, genuine.status_code) == (403, 200)
    greeting = [m["text"] for m in api.calls("sendMessage")]
    assert len(greeting) == 1 and "support assistant" in greeting[0]

    triggered = requests.post(
        f"{base_url}/conversations/telegram:{CHAT}/trigger_intent",
        params={"output_channel": "latest", "token": API_TOKEN},
        json={"name": "EXTERNAL_expert_reply"},
        timeout=60,
    )

    assert triggered.status_code == 200, triggered.text
    assert [r.payload["next_action"] for r in actions.requests] == ["action_expert_update"]
    assert api.calls("sendMessage")[1:] == [{"chat_id": str(CHAT), "text": "Mara: Your refund is approved."}]


def test_the_rasa_server_refuses_bad_bodies_and_caps_every_request(rasa_with_telegram: tuple) -> None:
    base_url, _, _ = rasa_with_telegram
    hook, secret = f"{base_url}/webhooks/telegram/webhook", {SECRET_HEADER: SECRET}

    def user_events() -> int:
        tracker = requests.get(
            f"{base_url}/conversations/telegram:{CHAT}/tracker", params={"token": API_TOKEN}, timeout=60
        )
        return sum(1 for event in tracker.json()["events"] if event["event"] == "user")

    before = user_events()
    wrong = requests.post(
        hook, json={"update_id": 20, "message": {"chat": {"id": CHAT}, "text": 42}}, headers=secret, timeout=60
    )
    not_json = requests.post(hook, data=b"[" * 10_000, headers=secret, timeout=60)
    too_big = requests.post(hook, data=b"x" * (MAX_BODY_BYTES + 1), headers=secret, timeout=60)
    api_too_big = requests.post(
        f"{base_url}/model/parse", params={"token": API_TOKEN}, data=b"x" * (SERVER_MAX_BYTES + 1), timeout=60
    )

    assert (wrong.status_code, not_json.status_code, too_big.status_code) == (400, 400, 413)
    assert wrong.json() == {"error": "message.text must be a string, not a number"}
    assert api_too_big.status_code == 413
    assert user_events() == before
