"""REST customer channel with an outbox: Rasa's REST channel cannot push, so pushed messages wait here.

`POST /webhooks/outbox/webhook` works like Rasa's REST webhook (the replies come in the response).
Messages sent to the conversation later, by `trigger_intent?output_channel=latest` (or `=outbox`),
are stored, and the client reads them with `GET /webhooks/outbox/messages?sender=<id>&after=<id>`:
`[{"id": 7, "recipient_id": "...", "text": "..."}, ...]`, oldest first, at most 100; `after` is the
last `id` the client has seen.

The store is SQL: `db_url` in the credentials, or BACKLINE_OUTBOX_DB_URL; the default, in-memory
SQLite, suits one instance; several Rasa instances share one database. Like the REST webhook, the
outbox trusts the caller with the conversation id: put both behind the same authentication.

Both webhooks are `RestInput`, Rasa's REST channel with its bodies checked (credentials.yml names
it instead of Rasa's `rest`): a JSON object whose ``sender`` is a non-empty string (at most 255
characters), ``message`` a string (at most BACKLINE_MAX_MESSAGE_CHARS, 4,096), ``metadata`` an
object and ``input_channel`` a string when present, the body at most BACKLINE_MAX_BODY_BYTES
(65,536). Anything else is answered 400 (413 when too long) with ``{"error": "..."}`` and never
reaches Rasa, where Rasa's own channel answered 500 to a body that is not a JSON object and
passed wrongly typed fields on to the tracker (`backline.limits`).

Both are for an integrating backend, not for browsers (issue 13): every request needs
``Authorization: Bearer <BACKLINE_CHANNEL_TOKEN>`` (else var/channel_token, generated once; 401
``{"error": ...}`` otherwise, compared in constant time), a ``sender`` starting with another
channel's prefix (``web:``, ``telegram:``, ``slack:``) is refused 400, and so is a message naming
an ``EXTERNAL_*`` intent (only the hub triggers those).

A message from a person (bot message metadata ``sender_name``, issue 15) has the name in front of its
text, "Mara Klein: ..." (once), and as ``sender_name`` next to it, in the webhook's answer and the outbox.

Idempotent retries: a client that got no answer (the Rasa server was killed mid-turn, the balancer
timed out) may send the same message again with the same optional ``message_id`` (a string of 1 to
64 characters of ``A-Z a-z 0-9 _ . : -``; any other value is refused 400 and nothing is processed;
``null`` is the same as leaving it out). It becomes the ``message_id`` of the tracker's ``user``
event. Under the conversation's ticket lock (the agent's lock store: across Rasa instances with a
shared lock store) the channel looks the id up in the conversation's tracker, all sessions: when a
``user`` event carries it, the message is not processed again and the answer is the bot messages
that followed that event (up to the next ``user`` event), in the webhook's usual shape; otherwise it
is processed normally inside that same lock (the agent's processor, as `Agent.handle_message` does,
without taking the lock twice). A turn that died before Rasa saved its tracker left nothing behind,
so its retry is processed. The same holds for ``?stream=true`` and for the outbox webhook. Without a
``message_id`` nothing changes (Rasa gives the event a random id), and where no agent is loaded the
message goes to Rasa's handler as before.
"""

from __future__ import annotations

import json
import logging
import os
import re
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

import rasa.utils.endpoints
import sqlalchemy as sa
from rasa.core.channels import rest as rasa_rest
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.pool import StaticPool

from backline.limits import (
    Refused,
    guarded,
    id_field,
    json_object,
    max_body_bytes,
    max_message_chars,
    object_field,
    read_body,
    text_field,
)
from backline.rasa.channels import (
    RESERVED_PREFIXES,
    SENDER_NAME,
    bearer_ok,
    channel_token,
    external_intent,
    sender_name,
    signed,
    webhook_blueprint,
)

logger = logging.getLogger(__name__)

ENV_DB_URL = "BACKLINE_OUTBOX_DB_URL"
PAGE = 100
_MESSAGE_ID = re.compile(r"[0-9]{1,18}")
CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""A client's ``message_id``: what makes a retried REST message idempotent."""
SHAPE = '{"sender": "<conversation id>", "message": "<text>"}'


class Outbox:
    """Pushed messages per conversation, numbered in the order they were stored."""

    def __init__(self, url: Text = "sqlite://") -> None:
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}} if in_memory else {}
        self.engine = sa.create_engine(url, future=True, **options)
        metadata = sa.MetaData()
        self.table = sa.Table(
            "backline_outbox",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("sender_id", sa.String(255), nullable=False, index=True),
            sa.Column("message", sa.Text, nullable=False),
        )
        metadata.create_all(self.engine)

    def put(self, sender_id: Text, message: Dict[Text, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.table.insert().values(sender_id=sender_id, message=json.dumps(message)))

    def after(self, sender_id: Text, after: int = 0) -> List[Dict[Text, Any]]:
        """The conversation's messages stored after the one numbered `after`, oldest first."""
        query = (
            sa.select(self.table.c.id, self.table.c.message)
            .where(self.table.c.sender_id == sender_id, self.table.c.id > after)
            .order_by(self.table.c.id)
            .limit(PAGE)
        )
        with self.engine.connect() as connection:
            return [{"id": row.id, **json.loads(row.message)} for row in connection.execute(query)]


class SignedCollector(CollectingOutputChannel):
    """Rasa's collector; a message from a person reads "Name: text" and carries ``sender_name``."""

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        name = sender_name(kwargs)
        for part in signed(text.strip(), name).split("\n\n"):
            await self._persist_message(_named(self._message(recipient_id, text=part), name))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        name = sender_name(kwargs)
        await self._persist_message(_named(self._message(recipient_id, text=signed(text, name), buttons=buttons), name))


def _named(message: Dict[Text, Any], name: Optional[Text]) -> Dict[Text, Any]:
    return {**message, SENDER_NAME: name} if name else message


class OutboxOutput(SignedCollector):
    """Collects like Rasa's collector (the trigger_intent response shows them) and stores in the outbox."""

    @classmethod
    def name(cls) -> Text:
        return "outbox"

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    async def _persist_message(self, message: Dict[Text, Any]) -> None:
        await super()._persist_message(message)
        self.outbox.put(message["recipient_id"], message)


class RestInput(rasa_rest.RestInput):
    """Rasa's REST channel (``rest``, /webhooks/rest/webhook, ``?stream=true`` too) that answers a
    malformed, oversized or wrongly typed body with 400 or 413 and passes nothing on to Rasa."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def __init__(
        self, max_body: Optional[int] = None, max_chars: Optional[int] = None, token: Optional[Text] = None
    ) -> None:
        self.max_body = max_body or max_body_bytes()
        self.max_chars = max_chars or max_message_chars()
        self._token = token

    @property
    def token(self) -> Text:
        """The credential callers must present (BACKLINE_CHANNEL_TOKEN, else var/channel_token)."""
        if self._token is None:
            self._token = channel_token()
        return self._token

    def check_caller(self, request: Request) -> None:
        """`Refused` 401 unless the request carries ``Authorization: Bearer <channel token>``."""
        if not bearer_ok(request.headers.get("authorization"), self.token):
            raise Refused(401, "Authorization: Bearer <BACKLINE_CHANNEL_TOKEN> required")

    def _input_channel(self, payload: Dict[Text, Any]) -> Text:
        """The payload's ``input_channel`` (Rasa's REST channel lets the client name one), else ``rest``."""
        return text_field("input_channel", payload.get("input_channel"), required=False, empty=False) or self.name()

    def parse(self, body: bytes) -> Tuple[Text, Text, Text, Optional[Dict[Text, Any]], Optional[Text]]:
        """(sender, text, input channel, metadata, message id) of a webhook body; `Refused` when it is not one."""
        payload = json_object(body, SHAPE)
        sender = id_field("sender", payload.get("sender"))
        if sender.startswith(RESERVED_PREFIXES):  # type: ignore[union-attr]
            raise Refused(
                400, f"sender may not start with {', '.join(RESERVED_PREFIXES)}: another channel's conversation"
            )
        text = text_field("message", payload.get("message"), max_chars=self.max_chars)
        if external_intent(text):
            logger.warning("REST message naming an EXTERNAL_ intent refused")
            raise Refused(400, "EXTERNAL_ intents are not accepted from customers")
        metadata = object_field("metadata", payload.get("metadata"))
        message_id = client_message_id(payload.get("message_id"))
        return sender, text, self._input_channel(payload), metadata, message_id  # type: ignore[return-value]

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = webhook_blueprint(f"custom_webhook_{type(self).__name__}")

        @webhook.route("/webhook", methods=["POST"], stream=True)
        @guarded
        async def receive(request: Request) -> Any:
            self.check_caller(request)
            sender, text, input_channel, metadata, message_id = self.parse(await read_body(request, self.max_body))
            handle = self.once(request, on_new_message, message_id)
            if rasa.utils.endpoints.bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(handle, text, sender, input_channel, metadata),
                    content_type="text/event-stream",
                )
            collector = SignedCollector()
            try:
                await handle(UserMessage(text, collector, sender, input_channel=input_channel, metadata=metadata))
            except CancelledError:
                logger.error("REST message from %s timed out", sender)
            except Exception:  # as Rasa's channel: the customer gets what was said before the failure
                logger.exception("REST message from %s failed", sender)
            return response.json(collector.messages)

        return webhook

    def once(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]], message_id: Optional[Text]
    ) -> Callable[[UserMessage], Awaitable[Any]]:
        """`on_new_message` itself without a message id; with one, a handler that processes the message
        only if its conversation has no ``user`` event with that id yet (see the module docstring)."""
        if message_id is None:
            return on_new_message

        async def handle(message: UserMessage) -> None:
            message.message_id = message_id
            await deliver_once(getattr(request.app.ctx, "agent", None), message, on_new_message)

        return handle


async def deliver_once(
    agent: Any, message: UserMessage, on_new_message: Callable[[UserMessage], Awaitable[Any]]
) -> None:
    """Processes `message` unless its conversation already has a ``user`` event with its message id,
    whose bot answers are then sent to the message's output channel again; under the conversation's lock."""
    if agent is None or not agent.is_ready():
        await on_new_message(message)  # no agent to ask: Rasa's handler decides, as without an id
        return
    async with agent.lock_store.lock(message.sender_id):
        tracker = await agent.tracker_store.retrieve_full_tracker(message.sender_id)
        replies = answers_to(tracker, message.message_id) if tracker is not None else None
        if replies is None:
            await agent.processor.handle_message(message)
            return
        logger.info(
            "REST message %s of %s was processed before: answered from the tracker",
            message.message_id,
            message.sender_id,
        )
        for reply in replies:
            await message.output_channel.send_response(message.sender_id, reply)


def answers_to(tracker: DialogueStateTracker, message_id: Optional[Text]) -> Optional[List[Dict[Text, Any]]]:
    """The bot messages that followed the ``user`` event with `message_id` (up to the next ``user``
    event), as the processor sent them to the output channel; None when no ``user`` event has that id."""
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            answers = []
            for later in events[index + 1 :]:
                if isinstance(later, UserUttered):
                    break
                if isinstance(later, BotUttered):
                    answers.append(later.message())
            return answers
    return None


def client_message_id(value: Any) -> Optional[Text]:
    """The body's ``message_id`` (None when absent or null); `Refused` 400 when it is anything else than
    1 to 64 characters of ``A-Z a-z 0-9 _ . : -``."""
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_MESSAGE_ID.fullmatch(value):
        raise Refused(400, "message_id must be a string of 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    return value


class OutboxInput(RestInput):
    """`RestInput` plus `GET /webhooks/outbox/messages`."""

    @classmethod
    def name(cls) -> Text:
        return "outbox"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        url = (credentials or {}).get("db_url") or os.environ.get(ENV_DB_URL) or "sqlite://"
        return cls(Outbox(url))

    def __init__(
        self,
        outbox: Outbox,
        max_body: Optional[int] = None,
        max_chars: Optional[int] = None,
        token: Optional[Text] = None,
    ) -> None:
        super().__init__(max_body, max_chars, token)
        self.outbox = outbox

    def get_output_channel(self) -> OutboxOutput:
        return OutboxOutput(self.outbox)

    def _input_channel(self, payload: Dict[Text, Any]) -> Text:
        """Always this channel: a client must not point later pushes at another channel."""
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.route("/messages", methods=["GET"])
        @guarded
        async def messages(request: Request) -> HTTPResponse:
            self.check_caller(request)
            sender = request.args.get("sender")
            after = request.args.get("after", "0")
            if not sender or not _MESSAGE_ID.fullmatch(after):
                raise Refused(400, "sender (required) and after (a message id) expected")
            return response.json(self.outbox.after(id_field("sender", sender) or "", int(after)))

        return webhook
