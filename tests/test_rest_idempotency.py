"""Idempotent REST messages: a retry with the same sender and ``message_id`` is answered from the
tracker instead of being processed again. A real Sanic app with the channel's blueprint and a small
agent made of Rasa's InMemoryLockStore and InMemoryTrackerStore and a counting processor."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic

from backline.rasa.channels.rest import Outbox, OutboxInput, RestInput, answers_to, deliver_once
from tests.channel_servers import LiveApp

TOKEN = "idempotency-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class CountingProcessor:
    """Stands in for Rasa's MessageProcessor: logs the user event (with the message's id), says three
    things (plain, from a person, with buttons), saves the tracker, and counts its calls."""

    def __init__(self, tracker_store: InMemoryTrackerStore) -> None:
        self.tracker_store = tracker_store
        self.handled: List[Optional[str]] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.handled.append(message.message_id)
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
        await asyncio.sleep(0.2)  # a turn takes a while: a concurrent retry arrives during it
        tracker.update(UserUttered(message.text, message_id=message.message_id, input_channel=message.input_channel))
        for said in (
            BotUttered(f"echo: {message.text}", metadata={"utter_action": "utter_echo"}),
            BotUttered("I have checked with billing.", metadata={"sender_name": "Mara Klein"}),
            BotUttered("Anything else?", data={"buttons": [{"title": "No", "payload": "/deny"}]}),
        ):
            tracker.update(said)
            await message.output_channel.send_response(message.sender_id, said.message())
        await self.tracker_store.save(tracker)


class FakeAgent:
    """What the channel uses of `rasa.core.agent.Agent`."""

    def __init__(self) -> None:
        self.lock_store = InMemoryLockStore()
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.processor = CountingProcessor(self.tracker_store)

    def is_ready(self) -> bool:
        return True

    async def handle_message(self, message: UserMessage) -> None:
        """As `Agent.handle_message`: the processor under the conversation's lock."""
        async with self.lock_store.lock(message.sender_id):
            await self.processor.handle_message(message)


class Server:
    """A RestInput (or OutboxInput) in a Sanic app whose ``ctx.agent`` is a FakeAgent, wired as
    `rasa.core.channels.channel.register` wires it (the handler calls ``app.ctx.agent.handle_message``)."""

    def __init__(self, channel: RestInput, path: str = "rest") -> None:
        self.agent = FakeAgent()
        self.via_handler: List[UserMessage] = []
        app = Sanic(f"idempotent-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.ctx.agent = self.agent

        async def handler(message: UserMessage) -> None:
            self.via_handler.append(message)
            await app.ctx.agent.handle_message(message)

        app.blueprint(channel.blueprint(handler), url_prefix=f"/webhooks/{path}")
        self.live = LiveApp(app).start()
        self.url = f"{self.live.url}/webhooks/{path}/webhook"

    def say(self, sender: str, text: str, stream: bool = False, **extra: Any) -> requests.Response:
        return requests.post(
            self.url,
            params={"stream": "true"} if stream else {},
            json={"sender": sender, "message": text, **extra},
            headers=AUTH,
            timeout=30,
        )

    def user_events(self, sender: str) -> List[UserUttered]:
        tracker = self.live.run(self.agent.tracker_store.retrieve_full_tracker(sender))
        return [e for e in tracker.events if isinstance(e, UserUttered)] if tracker else []


@pytest.fixture
def server() -> Iterator[Server]:
    started = Server(RestInput(token=TOKEN))
    yield started
    started.live.stop()


def expected_answer(sender: str, text: str) -> List[Dict[str, Any]]:
    return [
        {"recipient_id": sender, "text": f"echo: {text}"},
        {"recipient_id": sender, "text": "Mara Klein: I have checked with billing.", "sender_name": "Mara Klein"},
        {"recipient_id": sender, "text": "Anything else?", "buttons": [{"title": "No", "payload": "/deny"}]},
    ]


def test_a_retry_with_the_same_message_id_is_answered_from_the_tracker(server: Server) -> None:
    first = server.say("ada", "where is my order?", message_id="m-0001")
    retry = server.say("ada", "where is my order?", message_id="m-0001")

    assert (first.status_code, retry.status_code) == (200, 200)
    assert first.json() == expected_answer("ada", "where is my order?")
    assert retry.json() == first.json()
    assert server.agent.processor.handled == ["m-0001"]
    assert [(e.text, e.message_id) for e in server.user_events("ada")] == [("where is my order?", "m-0001")]
    assert server.via_handler == []  # processed by the channel under the lock, not through the handler


def test_different_message_ids_are_two_messages(server: Server) -> None:
    assert server.say("ada", "hi", message_id="m-1").json() == expected_answer("ada", "hi")
    assert server.say("ada", "hi", message_id="m-2").json() == expected_answer("ada", "hi")

    assert server.agent.processor.handled == ["m-1", "m-2"]
    assert [e.message_id for e in server.user_events("ada")] == ["m-1", "m-2"]


def test_the_same_message_id_from_another_sender_is_another_message(server: Server) -> None:
    server.say("ada", "hi", message_id="shared-id")
    assert server.say("bob", "hi", message_id="shared-id").json() == expected_answer("bob", "hi")
    assert server.agent.processor.handled == ["shared-id", "shared-id"]


def test_a_late_retry_gets_the_answer_to_its_own_message_only(server: Server) -> None:
    server.say("ada", "first", message_id="m-a")
    server.say("ada", "second", message_id="m-b")

    assert server.say("ada", "first", message_id="m-a").json() == expected_answer("ada", "first")
    assert server.agent.processor.handled == ["m-a", "m-b"]


def test_without_a_message_id_nothing_changes(server: Server) -> None:
    answers = [server.say("ada", "hi").json(), server.say("ada", "hi").json()]

    assert answers == [expected_answer("ada", "hi")] * 2
    assert len(server.via_handler) == 2  # through Rasa's handler, as before
    ids = [e.message_id for e in server.user_events("ada")]
    assert len(ids) == 2 and ids[0] != ids[1] and all(re.fullmatch(r"[0-9a-f]{32}", i or "") for i in ids)


@pytest.mark.parametrize(
    "message_id",
    ["", "x" * 65, "has space", "semi;colon", "slash/id", "ümlaut", 42, True, ["m-1"], {"id": "m-1"}],
)
def test_a_bad_message_id_is_refused_and_nothing_is_processed(server: Server, message_id: Any) -> None:
    answer = server.say("ada", "hi", message_id=message_id)

    assert answer.status_code == 400
    assert answer.json() == {"error": "message_id must be a string of 1 to 64 characters of A-Z a-z 0-9 _ . : -"}
    assert (server.agent.processor.handled, server.via_handler, server.user_events("ada")) == ([], [], [])


def test_the_longest_and_every_allowed_character_are_accepted(server: Server) -> None:
    longest = "Az09_.:-" * 8
    assert server.say("ada", "hi", message_id=longest).status_code == 200
    assert server.say("ada", "hi", message_id=None).status_code == 200  # null: as if left out
    assert server.agent.processor.handled[0] == longest
    assert [len(server.agent.processor.handled), len(server.via_handler)] == [2, 1]  # the null one: the handler


def test_two_concurrent_requests_with_the_same_id_are_processed_once(server: Server) -> None:
    answers: List[requests.Response] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        answers.append(server.say("ada", "refund please", message_id="m-race"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json() for a in answers] == [expected_answer("ada", "refund please")] * 2
    assert server.agent.processor.handled == ["m-race"]
    assert [e.message_id for e in server.user_events("ada")] == ["m-race"]


def test_a_streamed_retry_is_answered_from_the_tracker_too(server: Server) -> None:
    def lines(answer: requests.Response) -> List[Dict[str, Any]]:
        return [json.loads(line) for line in answer.text.splitlines() if line]

    first = lines(server.say("ada", "hi", stream=True, message_id="m-s"))
    retry = lines(server.say("ada", "hi", stream=True, message_id="m-s"))
    plain_retry = server.say("ada", "hi", message_id="m-s").json()

    # Rasa's streaming collector does not sign a person's message; the retry streams what the first did
    assert [m["text"] for m in first] == ["echo: hi", "I have checked with billing.", "Anything else?"]
    assert retry == first
    assert plain_retry == expected_answer("ada", "hi")
    assert server.agent.processor.handled == ["m-s"]


def test_the_outbox_webhook_is_idempotent_as_well() -> None:
    outbox = Server(OutboxInput(Outbox(), token=TOKEN), path="outbox")
    try:
        answers = [outbox.say("ada", "hi", message_id="o-1").json() for _ in range(2)]
        assert answers == [expected_answer("ada", "hi")] * 2
        assert outbox.agent.processor.handled == ["o-1"]
        assert [e.input_channel for e in outbox.user_events("ada")] == ["outbox"]
    finally:
        outbox.live.stop()


def test_without_an_agent_the_message_goes_to_the_handler_with_its_id() -> None:
    received: List[UserMessage] = []

    async def handler(message: UserMessage) -> None:
        received.append(message)

    message = UserMessage("hi", sender_id="ada", message_id="m-9")
    asyncio.run(deliver_once(None, message, handler))
    assert [(m.text, m.message_id) for m in received] == [("hi", "m-9")]


def test_answers_to_reads_the_bot_messages_between_the_user_events() -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events(
        "ada",
        [
            UserUttered("one", message_id="a"),
            BotUttered("1a"),
            BotUttered("1b"),
            UserUttered("two", message_id="b"),
            BotUttered("2a"),
        ],
    )
    assert [m["text"] for m in answers_to(tracker, "a") or []] == ["1a", "1b"]
    assert [m["text"] for m in answers_to(tracker, "b") or []] == ["2a"]
    assert answers_to(tracker, "c") is None
