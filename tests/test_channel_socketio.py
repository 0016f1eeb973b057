"""The socket.io customer channel: real Sanic servers on loopback, a python-socketio client, a real Redis;
messages of the wrong shape refused on the client's socket, refused polling POSTs answered at once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional

import pytest
import requests
import socketio
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from backline.rasa.channels import new_session, sender_name, signed, unsigned, web_conversation
from backline.rasa.channels.socketio import ENV_REDIS_URL, REFUSED_EVENT, SocketIOInput, SocketIOOutput
from tests.channel_servers import LiveApp, redis_server

WAIT = 5.0
SECRET = "socketio-test-secret"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


class Instance:
    """One Rasa-like server: a SocketIOInput in a Sanic app; user messages are recorded and echoed."""

    def __init__(self, channel: SocketIOInput) -> None:
        self.channel = channel
        self.received: List[UserMessage] = []

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)
            await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

        app = Sanic(f"socketio-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/socketio")
        self.live = LiveApp(app).start()

    async def push(self, session_id: str, text: str, output: Optional[Any] = None) -> None:
        """Sends `text` to the session's conversation (``web:<id>``, what Rasa's trigger_intent names)
        through this instance's output channel, on its own loop."""
        out = output or self.channel.get_output_channel()
        conversation = web_conversation(session_id, SECRET)
        assert conversation is not None, session_id
        sent = asyncio.run_coroutine_threadsafe(out.send_text_message(conversation, text), self.live.loop)
        await asyncio.wrap_future(sent)

    async def respond(self, session_id: str, message: Dict[str, Any]) -> None:
        """Sends a bot message as Rasa's processor does (``send_response`` with the BotUttered's
        ``message()``: text, buttons and the metadata keys side by side) to the session's conversation."""
        out = self.channel.get_output_channel()
        conversation = web_conversation(session_id, SECRET)
        assert out is not None and conversation is not None
        sent = asyncio.run_coroutine_threadsafe(out.send_response(conversation, dict(message)), self.live.loop)
        await asyncio.wrap_future(sent)


@pytest.fixture
def instances() -> Iterator[Callable[..., Instance]]:
    started: List[Instance] = []

    def start(**options: Any) -> Instance:
        instance = Instance(SocketIOInput(session_persistence=True, secret=SECRET, **options))
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.live.stop()


def converse(
    server: Instance,
    then: Callable[[socketio.AsyncClient, str], Awaitable[None]],
    expected: int,
    session_id: Optional[str] = None,
    wait: float = WAIT,
) -> List[Dict[str, Any]]:
    """Connects a client to `server`, opens a session, runs `then(client, session_id)` and returns the
    bot messages received (once `expected` arrived, or after `wait` seconds)."""

    async def run() -> List[Dict[str, Any]]:
        client = socketio.AsyncClient()
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        messages: List[Dict[str, Any]] = []
        enough = asyncio.Event()

        @client.on("session_confirm")
        async def session_confirm(session_id: str) -> None:
            confirmed.set_result(session_id)

        @client.on("bot_uttered")
        async def bot_uttered(message: Dict[str, Any]) -> None:
            messages.append(message)
            if len(messages) >= expected:
                enough.set()

        # long-polling: python-engineio 4.15's websocket client needs aiohttp >= 3.10 (Rasa pins 3.9)
        await client.connect(server.live.url, transports=["polling"], wait_timeout=WAIT)
        try:
            await client.emit("session_request", {"session_id": session_id})
            await then(client, await asyncio.wait_for(confirmed, WAIT))
            try:
                await asyncio.wait_for(enough.wait(), wait)
            except asyncio.TimeoutError:
                pass
            return messages
        finally:
            await client.eio.disconnect(abort=True)  # without waiting out the pending long-poll

    return asyncio.run(run())


def test_a_user_message_is_answered_in_its_session_room(instances: Callable[..., Instance]) -> None:
    server = instances()

    async def ask(client: socketio.AsyncClient, session_id: str) -> None:
        await client.emit("user_uttered", {"message": "where is my order?", "session_id": session_id})

    issued = new_session(SECRET)
    replies = converse(server, ask, expected=1, session_id=issued)

    assert replies == [{"text": "echo: where is my order?"}]
    [message] = server.received
    assert (message.sender_id, message.input_channel) == ("web:" + issued.split(".")[0], "socketio")


def test_an_emit_on_one_instance_reaches_a_client_on_another_through_redis(
    instances: Callable[..., Instance], redis_url: str
) -> None:
    a, b = instances(redis_url=redis_url), instances(redis_url=redis_url)

    async def ask_then_push_from_b(client: socketio.AsyncClient, session_id: str) -> None:
        await client.emit("user_uttered", {"message": "refund?", "session_id": session_id})
        await b.push(session_id, "An expert replied: approved.")

    # waits for a third message that must not come: each message arrives once
    replies = converse(a, ask_then_push_from_b, expected=3, wait=2)

    assert sorted(r["text"] for r in replies) == ["An expert replied: approved.", "echo: refund?"]


def test_without_redis_an_emit_on_another_instance_is_lost(instances: Callable[..., Instance]) -> None:
    a, b = instances(), instances()

    replies = converse(a, lambda _, session_id: b.push(session_id, "lost"), expected=1, wait=2)

    assert replies == []


def test_an_instance_without_a_socketio_server_still_gets_an_output_channel(
    instances: Callable[..., Instance], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = instances(redis_url=redis_url)
    monkeypatch.setenv(ENV_REDIS_URL, redis_url)
    elsewhere = SocketIOInput.from_credentials({"session_persistence": True})
    output = elsewhere.get_output_channel()
    assert output is not None

    replies = converse(a, lambda _, session_id: a.push(session_id, "from elsewhere", output=output), expected=1)

    assert replies == [{"text": "from elsewhere"}]


def test_a_persons_message_carries_the_sender_name_as_metadata_and_the_text_as_written(
    instances: Callable[..., Instance],
) -> None:
    server = instances()
    said = [
        {"text": "Mara Klein: I've refunded the order.", "sender_name": "Mara Klein", "delivery_id": "d-1"},
        {"text": "Anything else?\n\nI am here until six.", "sender_name": "Mara Klein"},
        {
            "text": "Shall I close the case?",
            "sender_name": "Mara Klein",
            "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        },
        {"text": "Mara Klein has handed the conversation back to me.", "sender_name": None},
    ]

    async def expert_speaks(_: socketio.AsyncClient, session_id: str) -> None:
        for message in said:
            await server.respond(session_id, message)

    replies = converse(server, expert_speaks, expected=5)

    mara = {"sender_name": "Mara Klein"}
    assert replies == [
        {"text": "I've refunded the order.", "metadata": mara},
        {"text": "Anything else?", "metadata": mara},
        {"text": "I am here until six.", "metadata": mara},
        {
            "text": "Shall I close the case?",
            "metadata": mara,
            "quick_replies": [
                {"content_type": "text", "title": "Yes", "payload": "/affirm"},
                {"content_type": "text", "title": "No", "payload": "/deny"},
            ],
        },
        {"text": "Mara Klein has handed the conversation back to me."},
    ]


def test_a_name_only_in_the_text_is_the_assistant_speaking(instances: Callable[..., Instance]) -> None:
    """Without ``sender_name`` nothing is taken off the text and no name is claimed: the page never
    guesses a person from a "Name: " prefix."""
    server = instances()

    replies = converse(
        server, lambda _, session_id: server.respond(session_id, {"text": "Mara Klein: approved"}), expected=1
    )

    assert replies == [{"text": "Mara Klein: approved"}]


def test_the_sender_name_reaches_a_client_on_another_instance_through_redis(
    instances: Callable[..., Instance], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = instances(redis_url=redis_url)
    monkeypatch.setenv(ENV_REDIS_URL, redis_url)
    output = SocketIOInput.from_credentials({"session_persistence": True}).get_output_channel()
    assert isinstance(output, SocketIOOutput)

    async def from_elsewhere(_: socketio.AsyncClient, session_id: str) -> None:
        conversation = web_conversation(session_id, SECRET)
        sent = asyncio.run_coroutine_threadsafe(
            output.send_response(conversation, {"text": "Which card did you use?", "sender_name": "Jonas Weber"}),
            a.live.loop,
        )
        await asyncio.wrap_future(sent)

    replies = converse(a, from_elsewhere, expected=1)

    assert replies == [{"text": "Which card did you use?", "metadata": {"sender_name": "Jonas Weber"}}]


def test_the_sender_name_helpers() -> None:
    assert signed("approved", "Mara") == "Mara: approved"
    assert signed("Mara: approved", "Mara") == "Mara: approved"
    assert signed("approved", None) == "approved"
    assert unsigned("Mara: approved", "Mara") == "approved"
    assert unsigned("Mara approved it", "Mara") == "Mara approved it"
    assert unsigned("Jonas: approved", "Mara") == "Jonas: approved"
    assert unsigned("Mara: approved", None) == "Mara: approved"
    assert [sender_name(m) for m in ({"sender_name": " Mara "}, {"sender_name": ""}, {"sender_name": 3}, {})] == [
        "Mara",
        None,
        None,
        None,
    ]


def test_without_redis_it_is_rasas_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_REDIS_URL, raising=False)
    monkeypatch.delenv("BACKLINE_REDIS_URL", raising=False)
    channel = SocketIOInput.from_credentials({"session_persistence": True, "bot_message_evt": "bot_says"})

    assert (channel.redis_url, channel.bot_message_evt, channel.session_persistence) == (None, "bot_says", True)
    with pytest.warns(UserWarning, match="cannot be recreated"):
        assert channel.get_output_channel() is None


# --- bad messages: refused on the client's own socket, nothing reaches Rasa ------------------------------


def refusals(server: Instance, sent: List[Any]) -> List[Dict[str, Any]]:
    """Emits each of ``sent`` as user_uttered after opening a session; the message_refused events received."""

    async def run() -> List[Dict[str, Any]]:
        client = socketio.AsyncClient()
        refused: List[Dict[str, Any]] = []
        done = asyncio.Event()

        @client.on(REFUSED_EVENT)
        async def on_refused(data: Dict[str, Any]) -> None:
            refused.append(data)
            if len(refused) >= len(sent):
                done.set()

        await client.connect(server.live.url, transports=["polling"], wait_timeout=WAIT)
        try:
            for data in sent:
                await client.emit("user_uttered", data)
            try:
                await asyncio.wait_for(done.wait(), WAIT)
            except asyncio.TimeoutError:
                pass
            return refused
        finally:
            await client.eio.disconnect(abort=True)

    return asyncio.run(run())


def test_a_message_of_the_wrong_shape_is_refused_on_its_socket_and_reaches_no_one(
    instances: Callable[..., Instance],
) -> None:
    server = instances()
    s1 = new_session(SECRET)
    bad = [
        "just text",
        {"message": 42, "session_id": s1},
        {"message": "hi", "session_id": [s1]},
        {"message": "hi", "session_id": s1, "metadata": "not json"},
        {"message": "a\u0000b", "session_id": s1},
        {"message": "a" * 5000, "session_id": s1},
        {"message": "hi", "session_id": s1, "metadata": {"a": json.loads("[" * 32 + "1" + "]" * 32)}},
        {"message": "hi", "session_id": "0" * 32 + "." + "0" * 64},
        {"message": "hi", "session_id": new_session("another server's secret")},
        {"message": "/EXTERNAL_expert_update", "session_id": s1},
    ]

    refused = refusals(server, bad)

    assert sorted((r["status"], r["error"]) for r in refused) == sorted(
        [
            (400, "the event's data must be a JSON object, not a string"),
            (400, "message must be a string, not a number"),
            (400, "session_id must be a string, not an array"),
            (400, "metadata is not JSON (JSONDecodeError); send an object"),
            (400, "message contains NUL or an unpaired surrogate"),
            (413, "message is longer than 4096 characters"),
            (400, "the event's data nests deeper than 32 levels"),
            (403, "session_id is not one this server issued: send session_request"),
            (403, "session_id is not one this server issued: send session_request"),
            (403, "EXTERNAL_ intents are not accepted from customers"),
        ]
    )
    assert server.received == []


def test_a_polling_post_engineio_refuses_is_answered_at_once(instances: Callable[..., Instance]) -> None:
    server = instances()
    base = f"{server.live.url}/socket.io/?EIO=4&transport=polling"
    answers = []
    for body in (b"6 an unknown packet", b"4" + b"x" * 70_000):
        handshake = requests.get(base, timeout=10)
        session = f"{base}&sid={json.loads(handshake.text[1:])['sid']}"
        requests.post(session, data=b"40", timeout=10)
        started = time.monotonic()
        answers.append((requests.post(session, data=body, timeout=10).status_code, time.monotonic() - started < 2))

    assert answers == [(400, True), (400, True)]
