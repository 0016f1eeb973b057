"""The REST outbox channel in a real Sanic app on loopback: REST replies, and pushed messages read back."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from rasa.server import _get_output_channel
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backline.rasa.channels.rest import ENV_DB_URL, OutboxInput
from tests.channel_servers import LiveApp


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
        return requests.post(f"{self.live.url}/webhooks/outbox/webhook",
                             json={"sender": sender, "message": text, **extra}, timeout=30)

    def trigger(self, sender: str, text: str, output_channel: str = "latest") -> requests.Response:
        return requests.post(f"{self.live.url}/conversations/{sender}/trigger",
                             params={"output_channel": output_channel}, json={"text": text}, timeout=30)

    def outbox(self, **params: str) -> requests.Response:
        return requests.get(f"{self.live.url}/webhooks/outbox/messages", params=params, timeout=30)


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

    assert triggered.json() == {"channel": "outbox", "messages": [
        {"recipient_id": "rest-2", "text": "An expert approved your refund."}]}
    [pushed] = server.outbox(sender="rest-2").json()
    assert {k: v for k, v in pushed.items() if k != "id"} == {"recipient_id": "rest-2",
                                                              "text": "An expert approved your refund."}
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
