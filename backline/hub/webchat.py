"""The customer web chat served by the hub: a page on Rasa's socket.io channel.

``/chat`` is the page; it reads ``/chat/config.json`` (where the Rasa server's socket.io
endpoint is, as the browser reaches it) and, after every bot message, ``/chat/state/<session>``:
whether a specialist is checking or a named person has taken the conversation over
(`backline.consult.board.chat_state`). The socket.io session id is issued and signed by the Rasa
server's channel (`backline.rasa.channels.socketio`); ``/chat/state/<session>`` answers only for a
validly signed one (its conversation ``web:<id>``) and 403 ``{"error": ...}`` for anything else, so
it tells nothing about another customer's conversation.

Who speaks comes with each message (issue 15): a person's message carries ``metadata.sender_name``
(`backline.rasa.channels.socketio.SocketIOOutput`) and the page shows that name as its author, the
text as it came. When the Rasa server cannot be reached the page says so (``role="alert"``) with a
Retry button, and keeps what the customer writes meanwhile, sending it once the session is back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, file, json

from backline.consult import board
from backline.consult.service import ConsultationService
from backline.rasa.channels import chat_secret, web_conversation

STATIC = Path(__file__).resolve().parent / "static" / "chat"
SOCKET_PATH = "/socket.io"
ENV_SOCKET_URL = "BACKLINE_CHAT_SOCKET_URL"


def socket_url(rasa_url: str, public_url: Optional[str], host: str, scheme: str) -> str:
    """``public_url`` when set, else the Rasa server's port on the host the browser used for the hub."""
    if public_url:
        return public_url.rstrip("/")
    hostname = urlsplit(f"//{host}").hostname or "localhost"
    hostname = f"[{hostname}]" if ":" in hostname else hostname
    return f"{scheme}://{hostname}:{urlsplit(rasa_url).port or 5005}"


def webchat_blueprint(
    service: ConsultationService, rasa_url: str, public_url: Optional[str] = None, secret: Optional[str] = None
) -> Blueprint:
    """The chat page for the Rasa server at ``rasa_url``; ``public_url`` (BACKLINE_CHAT_SOCKET_URL):
    its address for browsers when that is not the hub's host on Rasa's port."""
    bp = Blueprint("webchat")
    store, directory = service.store, service.directory
    secret = secret or chat_secret()
    bp.static("/chat/static", str(STATIC), name="chat_static")

    @bp.get("/chat")
    async def page(_: Request) -> HTTPResponse:
        return await file(STATIC / "chat.html")

    @bp.get("/chat/config.json")
    async def config(request: Request) -> HTTPResponse:
        return json(
            {"socket_url": socket_url(rasa_url, public_url, request.host, request.scheme), "socket_path": SOCKET_PATH}
        )

    @bp.get("/chat/state/<session_id>")
    async def state(_: Request, session_id: str) -> HTTPResponse:
        conversation_id = web_conversation(session_id, secret)
        if conversation_id is None:
            return json({"error": "not your conversation: a session id issued by the chat is required"}, status=403)
        cases = await asyncio.to_thread(store.list, conversation_id)
        latest = cases[-1] if cases else None
        messages = await asyncio.to_thread(store.messages, latest.id) if latest else []
        return json(board.chat_state(latest, messages, directory))

    return bp
