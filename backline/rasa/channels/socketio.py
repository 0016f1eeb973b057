"""socket.io customer channel: Rasa 3.6's, with Redis fan-out across instances.

With `redis_url` in its credentials, or BACKLINE_SOCKETIO_REDIS_URL in the environment, or else
BACKLINE_REDIS_URL (the deployment's one Redis, shared with the lock store and the channels'
de-duplication), the server uses python-socketio's AsyncRedisManager: an emit on any Rasa instance reaches the client
wherever it is connected, so proactive messages (`trigger_intent`) work behind a load balancer,
and `get_output_channel()` returns a Redis-backed output channel even where no socket.io server
runs. Without Redis it behaves like Rasa's.

It also fixes session persistence under python-socketio 5.x, whose `enter_room` is a coroutine
that Rasa 3.6 never awaits: the client never joined its session's room and got no replies.

User messages are checked before they reach Rasa (`backline.limits`), where Rasa's
handler failed on data of the wrong shape: the event's data must be an object whose ``message``
is a string (at most BACKLINE_MAX_MESSAGE_CHARS), ``session_id`` a string of at most 255
characters and ``metadata`` an object (or a string holding one), all at most 32 levels deep. A refused
message (or session request) is answered on the client's own socket with the event
``message_refused``: ``{"error": "...", "status": 400}`` (413 when too long). A socket.io packet
larger than BACKLINE_MAX_BODY_BYTES closes the connection (Engine.IO's ``max_http_buffer_size``).

A long-polling POST that python-engineio refuses (an unknown packet type, a payload over the limit)
is answered 400 at once: the library closed the session and then waited for the client to read
the CLOSE packet, which the client could no longer do (its GET finds the session gone), so the
POST hung until Sanic's response timeout (an hour under ``rasa run``).

Session ids are the server's (issue 13): ``session_request`` accepts the client's session id only
when it is validly signed with the chat secret (BACKLINE_CHAT_SECRET, else var/chat_secret; the hub
shares it), else issues a fresh ``<random 128-bit hex>.<hmac>``. The conversation (Rasa's sender
id, and the socket.io room) is ``web:<random part>``; the signature never reaches the tracker. A
``user_uttered`` whose session id is not validly signed, or whose text names an ``EXTERNAL_*``
intent, is refused (``message_refused``, 403) and never reaches Rasa. Each message's metadata gets
``backline_client``: a keyed hash of the client's address (replacing whatever the client sent), which
the per-address escalation limit counts (`backline.consult.quotas`).

Who is speaking (issue 15): a bot message whose metadata names its sender (``sender_name``, a human
expert) reaches the client as ``{"text": "...", "metadata": {"sender_name": "Mara Klein"}}``, the
text as the person wrote it (a "Mara Klein: " prefix an action put in front is taken off here, where
the name is known, not guessed back by the page). Messages of the AI carry no ``metadata``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels import socketio as rasa_socketio
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint
from socketio import AsyncRedisManager

from backline.consult.quotas import CLIENT_KEY, client_key
from backline.limits import (
    MAX_DEPTH,
    Refused,
    cap_server_requests,
    depth,
    id_field,
    json_object,
    max_body_bytes,
    max_message_chars,
    object_field,
    text_field,
)
from backline.rasa.channels import (
    ENV_REDIS_URL as ENV_SHARED_REDIS_URL,
)
from backline.rasa.channels import (
    SENDER_NAME,
    chat_secret,
    external_intent,
    new_session,
    sender_name,
    unsigned,
    web_conversation,
)

logger = logging.getLogger(__name__)

ENV_REDIS_URL = "BACKLINE_SOCKETIO_REDIS_URL"
ENV_CHAT_ORIGIN = "BACKLINE_CHAT_ORIGIN"
"""The web chat's origin(s), comma-separated: socket.io refuses (400) a request from any other
``Origin`` (python-engineio's ``cors_allowed_origins``; Rasa 3.6 leaves it open)."""
REFUSED_EVENT = "message_refused"


def chat_origins(configured: str) -> List[str]:
    """The origins of BACKLINE_CHAT_ORIGIN (comma-separated), each loopback one also under its other
    name (``http://localhost:5006`` and ``http://127.0.0.1:5006`` are the same page to a user)."""
    origins: List[str] = []
    for origin in (o.strip().rstrip("/") for o in configured.split(",")):
        if not origin:
            continue
        twins = [origin]
        for one, other in (("//localhost", "//127.0.0.1"), ("//127.0.0.1", "//localhost")):
            if one + ":" in origin or origin.endswith(one):
                twins.append(origin.replace(one, other, 1))
        origins.extend(o for o in twins if o not in origins)
    return origins


class SocketIOOutput(rasa_socketio.SocketIOOutput):
    """Rasa's socket.io output; a message naming its sender carries the name as ``metadata.sender_name``."""

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        name = sender_name(kwargs)
        if name is None:
            await super().send_text_message(recipient_id, text, **kwargs)
            return
        for part in unsigned(text.strip(), name).split("\n\n"):
            await self._send_message(recipient_id, {"text": part, "metadata": {SENDER_NAME: name}})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        name = sender_name(kwargs)
        if name is None:
            await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
            return
        parts = unsigned(text.strip(), name).split("\n\n")
        messages: List[Dict[Text, Any]] = [{"text": part, "metadata": {SENDER_NAME: name}} for part in parts]
        messages[-1]["quick_replies"] = [
            {"content_type": "text", "title": button["title"], "payload": button["payload"]} for button in buttons
        ]
        for message in messages:
            await self._send_message(recipient_id, message)


class SocketIOInput(rasa_socketio.SocketIOInput):
    """Rasa's socket.io channel; `redis_url` shares rooms and emits between instances."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        redis_url = (
            credentials.pop("redis_url", None)
            or os.environ.get(ENV_REDIS_URL)
            or os.environ.get(ENV_SHARED_REDIS_URL)
            or None
        )
        channel = super().from_credentials(credentials)
        channel.redis_url = redis_url
        return channel

    def __init__(
        self,
        *args: Any,
        redis_url: Optional[Text] = None,
        max_body: Optional[int] = None,
        max_chars: Optional[int] = None,
        secret: Optional[Text] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.redis_url = redis_url
        self._redis_writer: Optional[AsyncRedisManager] = None
        self.max_body = max_body or max_body_bytes()
        self.max_chars = max_chars or max_message_chars()
        self._secret: Optional[Text] = secret

    @property
    def secret(self) -> Text:
        """The chat secret, read (or generated) on first use."""
        if self._secret is None:
            self._secret = chat_secret()
        return self._secret

    def user_message(self, sid: Text, data: Any, output: OutputChannel) -> Optional[UserMessage]:
        """The user message in a ``user_uttered`` event; None for one without a session id (ignored,
        as Rasa does); `Refused` when the data has the wrong shape."""
        data = object_field("the event's data", data, required=True)
        if depth(data) > MAX_DEPTH:
            raise Refused(400, f"the event's data nests deeper than {MAX_DEPTH} levels")
        if self.session_persistence:
            if not data.get("session_id"):  # type: ignore[union-attr]
                logger.warning("socket.io message without a session_id ignored: send session_request first")
                return None
            signed = id_field("session_id", data["session_id"])  # type: ignore[index]
            sender = web_conversation(signed, self.secret)
            if sender is None:
                raise Refused(403, "session_id is not one this server issued: send session_request")
        else:
            sender = f"web:{sid}"
        metadata = data.get(self.metadata_key)  # type: ignore[union-attr]
        if isinstance(metadata, str):
            metadata = json_object(metadata, "an object", name="metadata")
        metadata = object_field("metadata", metadata) or {}
        if depth(metadata) > MAX_DEPTH:  # a string holding JSON
            raise Refused(400, f"metadata nests deeper than {MAX_DEPTH} levels")
        text = text_field("message", data.get("message", ""), max_chars=self.max_chars)  # type: ignore[union-attr]
        if external_intent(text):
            logger.warning("socket.io message naming an EXTERNAL_ intent refused (%s)", sender)
            raise Refused(403, "EXTERNAL_ intents are not accepted from customers")
        metadata = {**(metadata or {}), CLIENT_KEY: self.client(sid)}
        return UserMessage(text, output, sender, input_channel=self.name(), metadata=metadata)

    def client(self, sid: Text) -> Optional[Text]:
        """The keyed hash of the client's address (Sanic's ``remote_addr`` when its proxy settings
        are configured, else the peer), for the per-address escalation limit; None when unknown."""
        try:
            request = self.sio.get_environ(sid, namespace=self.namespace)["sanic.request"] if self.sio else None  # type: ignore[index]
        except (KeyError, TypeError, AttributeError):
            request = None
        address = (getattr(request, "remote_addr", "") or getattr(request, "ip", "")) if request else ""
        return client_key(address, self.secret) if address else None

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.sio is None and self.redis_url:
            if self._redis_writer is None:
                self._redis_writer = AsyncRedisManager(self.redis_url, write_only=True)
            return SocketIOOutput(self._redis_writer, self.bot_message_evt)
        if self.sio is None:
            return super().get_output_channel()  # None, with Rasa's warning
        return SocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        cap_server_requests(webhook)
        sio = self.sio
        sio.eio.max_http_buffer_size = self.max_body
        origins = chat_origins(os.environ.get(ENV_CHAT_ORIGIN, ""))
        if origins:
            sio.eio.cors_allowed_origins = origins
        _answer_refused_polls(sio.eio)
        if self.redis_url:
            sio.manager = AsyncRedisManager(self.redis_url)
            sio.manager.set_server(sio)

        async def refuse(sid: Text, refused: Refused) -> None:
            await sio.emit(
                REFUSED_EVENT, {"error": refused.message, "status": refused.status}, room=sid, namespace=self.namespace
            )

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            try:
                asked = (object_field("the session request", data) or {}).get("session_id") or None
                asked = id_field("session_id", asked, required=False)
            except Refused as refused:
                await refuse(sid, refused)
                return
            session_id = asked if web_conversation(asked, self.secret) else new_session(self.secret)
            if self.session_persistence:
                await sio.enter_room(sid, web_conversation(session_id, self.secret), namespace=self.namespace)
            else:
                await sio.enter_room(sid, f"web:{sid}", namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Any) -> None:
            try:
                message = self.user_message(sid, data, SocketIOOutput(sio, self.bot_message_evt))
            except Refused as refused:
                await refuse(sid, refused)
                return
            if message is not None:
                await on_new_message(message)

        return webhook


def _answer_refused_polls(eio: Any) -> None:
    """Makes ``eio`` (python-engineio's AsyncServer) close a long-polling session without waiting for
    the client to fetch the CLOSE packet, so the POST that caused the close gets its 400."""
    close_and_wait = eio.disconnect

    async def disconnect(sid: Optional[Text] = None) -> None:
        socket = eio.sockets.get(sid) if sid is not None else None
        if socket is None or socket.upgraded:
            await close_and_wait(sid)
            return
        await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets.pop(sid, None)

    eio.disconnect = disconnect
