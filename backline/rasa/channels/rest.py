"""REST customer channel with an outbox: Rasa's REST channel cannot push, so pushed messages wait here.

`POST /webhooks/outbox/webhook` works like Rasa's REST webhook (the replies come in the response).
Messages sent to the conversation later, by `trigger_intent?output_channel=latest` (or `=outbox`),
are stored, and the client reads them with `GET /webhooks/outbox/messages?sender=<id>&after=<id>`:
`[{"id": 7, "recipient_id": "...", "text": "..."}, ...]`, oldest first, at most 100; `after` is the
last `id` the client has seen.

The store is SQL: `db_url` in the credentials, or BACKLINE_OUTBOX_DB_URL; the default, in-memory
SQLite, suits one instance; several Rasa instances share one database. Like the REST webhook, the
outbox trusts the caller with the conversation id: put both behind the same authentication.
"""
from __future__ import annotations

import json
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import sqlalchemy as sa
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.pool import StaticPool

ENV_DB_URL = "BACKLINE_OUTBOX_DB_URL"
PAGE = 100


class Outbox:
    """Pushed messages per conversation, numbered in the order they were stored."""

    def __init__(self, url: Text = "sqlite://") -> None:
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}} if in_memory else {}
        self.engine = sa.create_engine(url, future=True, **options)
        metadata = sa.MetaData()
        self.table = sa.Table(
            "backline_outbox", metadata,
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


class OutboxOutput(CollectingOutputChannel):
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


class OutboxInput(RestInput):
    """Rasa's REST channel plus `GET /webhooks/outbox/messages`."""

    @classmethod
    def name(cls) -> Text:
        return "outbox"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        url = (credentials or {}).get("db_url") or os.environ.get(ENV_DB_URL) or "sqlite://"
        return cls(Outbox(url))

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def get_output_channel(self) -> OutboxOutput:
        return OutboxOutput(self.outbox)

    def _extract_input_channel(self, request: Request) -> Text:
        """Always this channel: a client must not point later pushes at another channel."""
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.route("/messages", methods=["GET"])
        async def messages(request: Request) -> HTTPResponse:
            sender = request.args.get("sender")
            after = request.args.get("after", "0")
            if not sender or not after.isdigit():
                return response.json({"error": "sender (required) and after (a message id) expected"}, status=400)
            return response.json(self.outbox.after(sender, int(after)))

        return webhook
