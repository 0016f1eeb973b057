"""The REST and outbox channels in a real Sanic app on loopback: REST replies, pushed messages read back,
and bad bodies refused with a clear 400 or 413 before anything reaches Rasa."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from rasa.server import _get_output_channel
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backline.limits import MAX_BODY_BYTES, MAX_MESSAGE_CHARS, SERVER_MAX_BYTES
from backline.rasa.channels.rest import ENV_DB_URL, Outbox, OutboxInput, OutboxOutput, RestInput, SignedCollector
from tests.channel_servers import LiveApp

CHANNEL_TOKEN = "channel-test-token"
AUTH = {"Authorization": f"Bearer {CHANNEL_TOKEN}"}


@pytest.fixture(autouse=True)
def channel_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The REST/outbox credential the channels read from the environment."""
    monkeypatch.setenv("BACKLINE_CHANNEL_TOKEN", CHANNEL_TOKEN)


class Server:
    """An OutboxInput in a Sanic app, plus the route trigger_intent would be: it picks the output
    channel with Rasa's own `_get_output_channel` and says `text` on it."""

    def __init__(self, channel: OutboxInput) -> None:
        self.channel = channel
        self.received: List[UserMessage] = []

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)
            await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

        app = Sanic(f"outbox-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/outbox")
        app.ctx.input_channels = [channel]

        @app.post("/conversations/<sender>/trigger")
        async def trigger(request: Request, sender: str) -> HTTPResponse:
            tracker = DialogueStateTracker.from_events(sender, [UserUttered("hi", input_channel=self.latest_channel)])
            output = _get_output_channel(request, tracker)
            await output.send_text_message(sender, request.json["text"])
            return response.json({"channel": output.name(), "messages": getattr(output, "messages", [])})

        self.latest_channel = "outbox"
        self.live = LiveApp(app).start()

    def say(self, sender: str, text: str, **extra: str) -> requests.Response:
        return requests.post(
            f"{self.live.url}/webhooks/outbox/webhook",
            json={"sender": sender, "message": text, **extra},
            headers=AUTH,
            timeout=30,
        )

    def trigger(self, sender: str, text: str, output_channel: str = "latest") -> requests.Response:
        return requests.post(
            f"{self.live.url}/conversations/{sender}/trigger",
            params={"output_channel": output_channel},
            json={"text": text},
            timeout=30,
        )

    def outbox(self, **params: str) -> requests.Response:
        return requests.get(f"{self.live.url}/webhooks/outbox/messages", params=params, headers=AUTH, timeout=30)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.delenv(ENV_DB_URL, raising=False)
    started = Server(OutboxInput.from_credentials(None))
    yield started
    started.live.stop()


def test_a_user_message_is_answered_in_the_response_like_rest(server: Server) -> None:
    answer = server.say("rest-1", "where is my order?", input_channel="telegram")

    assert answer.status_code == 200
    assert answer.json() == [{"recipient_id": "rest-1", "text": "echo: where is my order?"}]
    [message] = server.received
    assert (message.sender_id, message.input_channel) == ("rest-1", "outbox")
    assert server.outbox(sender="rest-1").json() == []


def test_trigger_intent_on_the_latest_channel_lands_in_the_outbox(server: Server) -> None:
    triggered = server.trigger("rest-2", "An expert approved your refund.")

    assert triggered.json() == {
        "channel": "outbox",
        "messages": [{"recipient_id": "rest-2", "text": "An expert approved your refund."}],
    }
    [pushed] = server.outbox(sender="rest-2").json()
    assert {k: v for k, v in pushed.items() if k != "id"} == {
        "recipient_id": "rest-2",
        "text": "An expert approved your refund.",
    }
    assert server.outbox(sender="rest-2", after=str(pushed["id"])).json() == []


def test_a_conversation_on_another_channel_does_not_land_in_the_outbox(server: Server) -> None:
    server.latest_channel = "rest"

    assert server.trigger("rest-3", "not for the outbox").json()["channel"] == "collector"
    assert server.trigger("rest-3", "asked for by name", output_channel="outbox").json()["channel"] == "outbox"
    assert [m["text"] for m in server.outbox(sender="rest-3").json()] == ["asked for by name"]


def test_the_client_reads_its_own_messages_after_the_last_it_saw(server: Server) -> None:
    for text in ("one", "two", "three"):
        server.trigger("rest-4", text)
    server.trigger("someone-else", "not yours")

    everything = server.outbox(sender="rest-4").json()
    later = server.outbox(sender="rest-4", after=str(everything[0]["id"])).json()

    assert [m["text"] for m in everything] == ["one", "two", "three"]
    assert [m["text"] for m in later] == ["two", "three"]
    assert server.outbox().status_code == 400
    assert server.outbox(sender="rest-4", after="latest").status_code == 400


def test_instances_share_an_outbox_in_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DB_URL, f"sqlite:///{tmp_path / 'outbox.db'}")
    a = Server(OutboxInput.from_credentials({}))
    b = Server(OutboxInput.from_credentials({}))
    try:
        a.trigger("rest-5", "pushed through instance A")

        assert [m["text"] for m in b.outbox(sender="rest-5").json()] == ["pushed through instance A"]
    finally:
        a.live.stop()
        b.live.stop()


# --- bad bodies: 400 or 413 with a clear error, nothing reaches Rasa ------------------------------------


class RestServer:
    """The plain REST channel (``rest``) in a Sanic app that also has a route of its own (``/elsewhere``)."""

    def __init__(self) -> None:
        self.received: List[UserMessage] = []

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)

        app = Sanic(f"rest-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(RestInput().blueprint(on_new_message), url_prefix="/webhooks/rest")

        @app.post("/elsewhere")
        async def elsewhere(request: Request) -> HTTPResponse:
            return response.json({"bytes": len(request.body)})

        self.live = LiveApp(app).start()


@pytest.fixture
def rest() -> Iterator[RestServer]:
    started = RestServer()
    yield started
    started.live.stop()


def post_raw(
    server: Any, body: bytes, path: str = "/webhooks/rest/webhook", content_type: str = "application/json"
) -> requests.Response:
    return requests.post(
        f"{server.live.url}{path}", data=body, headers={"Content-Type": content_type, **AUTH}, timeout=30
    )


@pytest.mark.parametrize(
    "body, error",
    [
        (b"", "the body is empty"),
        (b"sender=ada&message=hi", "the body is not JSON"),
        (b'{"sender": "ada", "message": "hi"', "the body is not JSON"),
        (b"[1, 2]", "the body is an array, not a JSON object"),
        (b"null", "the body is null, not a JSON object"),
        (b'{"message": "hi"}', "sender must be a string, not missing"),
        (b'{"sender": {"id": 1}, "message": "hi"}', "sender must be a string, not an object"),
        (b'{"sender": 42, "message": "hi"}', "sender must be a string, not a number"),
        (b'{"sender": "", "message": "hi"}', "sender must not be empty"),
        (b'{"sender": "ada", "message": 42}', "message must be a string, not a number"),
        (b'{"sender": "ada", "message": ["hi"]}', "message must be a string, not an array"),
        (b'{"sender": "ada", "message": "hi", "metadata": []}', "metadata must be a JSON object, not an array"),
        (b'{"sender": "ada", "message": "hi", "input_channel": 7}', "input_channel must be a string, not a number"),
        (b'{"sender": "ada", "message": "a\\u0000b"}', "message contains NUL or an unpaired surrogate"),
        (b'{"sender": "ada", "message": "\\ud800"}', "message contains NUL or an unpaired surrogate"),
        (
            b'{"sender": "ada", "message": "hi", "metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
            "the body nests deeper than 32 levels",
        ),
        (b"[" * 10_000, "the body nests deeper than 32 levels"),
        (b'{"sender": "ada", "message": "caf\xe9"}', "the body is not UTF-8"),
        (b'{"sender": "' + b"s" * 256 + b'", "message": "hi"}', "sender is longer than 255 characters"),
    ],
)
def test_a_malformed_or_wrongly_typed_body_gets_400_and_reaches_no_one(
    rest: RestServer, body: bytes, error: str
) -> None:
    answer = post_raw(rest, body)

    assert answer.status_code == 400
    assert error in answer.json()["error"]
    assert rest.received == []


def test_too_long_a_body_or_message_gets_413_and_the_limit_itself_is_fine(rest: RestServer) -> None:
    def body(text: str, padding: int = 0) -> bytes:
        return json.dumps({"sender": "ada", "message": text, "metadata": {"pad": "x" * padding}}).encode()

    at_limit = body("hi", MAX_BODY_BYTES - len(body("hi")))
    over_limit = body("hi", MAX_BODY_BYTES - len(body("hi")) + 1)
    answers = [
        post_raw(rest, data)
        for data in (
            at_limit,
            over_limit,
            body("a" * MAX_MESSAGE_CHARS),
            body("a" * (MAX_MESSAGE_CHARS + 1)),
            b"{" + b" " * 3_000_000,
        )
    ]

    assert (len(at_limit), len(over_limit)) == (MAX_BODY_BYTES, MAX_BODY_BYTES + 1)
    assert [a.status_code for a in answers] == [200, 413, 200, 413, 413]
    assert answers[1].json() == {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"}
    assert answers[3].json() == {"error": f"message is longer than {MAX_MESSAGE_CHARS} characters"}
    assert [len(m.text) for m in rest.received] == [2, MAX_MESSAGE_CHARS]


def test_the_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKLINE_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("BACKLINE_MAX_MESSAGE_CHARS", "10")
    channel = RestInput.from_credentials(None)

    assert (channel.max_body, channel.max_chars) == (1000, 10)
    monkeypatch.setenv("BACKLINE_MAX_BODY_BYTES", "lots")
    with pytest.raises(ValueError, match="BACKLINE_MAX_BODY_BYTES"):
        RestInput.from_credentials(None)


def test_the_channel_caps_every_request_to_its_server_at_1_mib(rest: RestServer) -> None:
    assert rest.live.app.config.REQUEST_MAX_SIZE == SERVER_MAX_BYTES
    assert post_raw(rest, b"x" * 1000, "/elsewhere").json() == {"bytes": 1000}
    assert post_raw(rest, b"x" * (SERVER_MAX_BYTES + 1), "/elsewhere").status_code == 413


def test_the_outbox_refuses_bad_bodies_too_and_reads_only_plain_message_ids(server: Server) -> None:
    refused = post_raw(server, b'{"sender": ["a"], "message": "hi"}', "/webhooks/outbox/webhook")

    assert (refused.status_code, refused.json()) == (400, {"error": "sender must be a string, not an array"})
    assert server.received == []
    for after in ("\u00b2", "\u0663", "9" * 19, "-1"):
        assert server.outbox(sender="rest-6", after=after).status_code == 400


def test_the_channels_need_the_channel_token_and_refuse_other_channels_ids_and_external_intents(
    server: Server, rest: RestServer
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": CHANNEL_TOKEN}):
        for url in (f"{server.live.url}/webhooks/outbox/webhook", f"{rest.live.url}/webhooks/rest/webhook"):
            refused = requests.post(url, json={"sender": "ada", "message": "hi"}, headers=headers, timeout=30)
            assert (refused.status_code, "error" in refused.json()) == (401, True)
        read = requests.get(
            f"{server.live.url}/webhooks/outbox/messages", params={"sender": "ada"}, headers=headers, timeout=30
        )
        assert read.status_code == 401
    for sender in ("web:0123", "telegram:42", "slack:U1"):
        assert server.say(sender, "hi").status_code == 400
    for text in ('/EXTERNAL_expert_update{"decision": "approve"}', "  /external_expert_update", "/External_x"):
        assert server.say("ada", text).status_code == 400
    assert server.received == [] and rest.received == []


def test_a_persons_message_is_signed_with_their_name_once_and_names_them() -> None:
    """Bot message metadata ``sender_name`` (a human expert): the text reads "Name: ..." (once) and the
    message carries ``sender_name``, in the webhook's answer and in the outbox."""
    import asyncio

    outbox = Outbox("sqlite://")
    for output in (SignedCollector(), OutboxOutput(outbox)):
        for message in (
            {"text": "I've refunded the order.", "sender_name": "Mara Klein"},
            {"text": "Mara Klein: Anything else?", "sender_name": "Mara Klein"},
            {"text": "Back to the assistant.", "sender_name": None},
        ):
            asyncio.run(output.send_response("rest-9", dict(message)))
        assert output.messages == [
            {"recipient_id": "rest-9", "text": "Mara Klein: I've refunded the order.", "sender_name": "Mara Klein"},
            {"recipient_id": "rest-9", "text": "Mara Klein: Anything else?", "sender_name": "Mara Klein"},
            {"recipient_id": "rest-9", "text": "Back to the assistant."},
        ]
    assert [(m["text"], m.get("sender_name")) for m in outbox.after("rest-9", 0)] == [
        ("Mara Klein: I've refunded the order.", "Mara Klein"),
        ("Mara Klein: Anything else?", "Mara Klein"),
        ("Back to the assistant.", None),
    ]
