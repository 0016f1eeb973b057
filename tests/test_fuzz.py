"""Fuzzing every HTTP endpoint that takes a body: at least 1,000 generated bodies each (tests/fuzz_bodies.py:
random bytes, truncated and deeply nested JSON, huge and unicode strings, wrong types, other content
types, empty bodies), over real HTTP on loopback, once without credentials and once with them.

Servers: the customer channels exactly as Rasa mounts them (`rasa.core.channels.channel.register`
on a Sanic app whose agent records every user message instead of running a model: a recorded
message is what would have been written to the tracker), and the hub as a real process
(`python -m backline hub`) over a SQLite consultation store, its Rasa answered by a loopback stub.

What must hold, per endpoint: no answer is 500 or more; a request without valid credentials changes
nothing (no user message reaches Rasa, the consultation store's SQLite ``data_version`` does not move);
a body over the limit gets 413; a body that is not the endpoint's format at all gets a 4xx and changes
nothing; where the endpoint checks its fields, a wrongly typed one gets a 4xx too; and every server
answers its health check afterwards. Run whole (no -k or -m), the suite writes what it measured to
docs/reliability.md (section "fuzz").
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from backline import reports
from backline.consult.store import ConsultationStore
from backline.hub.operators import csrf_token, sign_session
from backline.limits import MAX_BODY_BYTES, MAX_MESSAGE_CHARS, SERVER_MAX_BYTES
from backline.rasa.channels import new_session
from backline.rasa.channels.rest import Outbox, OutboxInput, RestInput
from backline.rasa.channels.slack import SlackInput
from backline.rasa.channels.socketio import SocketIOInput
from backline.rasa.channels.telegram import SECRET_HEADER, TelegramInput
from tests.channel_servers import LiveApp
from tests.expert_apis import RecordingApi
from tests.fuzz_bodies import FAMILIES, Body, Shape, generate
from tests.servers import PROJECT_ROOT, free_port, interrupt

SEED = 20261124
CUSTOMER_TELEGRAM_SECRET = "fuzz-customer-telegram-secret"
CUSTOMER_SLACK_SECRET = "fuzz-customer-slack-secret"
HUB_SLACK_SECRET = "fuzz-hub-slack-secret"
HUB_TELEGRAM_SECRET = "fuzz-hub-telegram-secret"
OPERATOR_TOKEN = "fuzz-operator-token"
CHANNEL_TOKEN = "fuzz-channel-token"
CHAT_SECRET = "fuzz-chat-secret"
DASHBOARD_SECRET = "fuzz-dashboard-secret"
MARA_SLACK, JONAS_TELEGRAM = "U07KESTR02", 5100000001
EXPERT_THREAD = ("C0EXPERTS", "1764000000.000100")
TELEGRAM_MESSAGE = "77"
NOWHERE = f"http://127.0.0.1:{free_port()}"  # nothing listens: calls out (Bot API, response_url) fail fast


# --- sending ---------------------------------------------------------------------------------------


def post(url: str, data: bytes, content_type: Optional[str], headers: Dict[str, str]) -> int:
    """POSTs ``data`` on a fresh connection; the answer's status, or 0 when none came."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.putrequest("POST", path, skip_accept_encoding=True)
        sent = {"Content-Length": str(len(data)), "Connection": "close", **headers}
        if content_type is not None:
            sent["Content-Type"] = content_type
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            connection.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413) and closed; its answer is still there to read
        answer = connection.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def get(url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def slack_signature(secret: str, body: bytes, timestamp: Optional[int] = None) -> Dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


# --- the servers -----------------------------------------------------------------------------------


class Recorder:
    """Stands in for Rasa's agent: every user message a channel hands over is counted and kept."""

    def __init__(self) -> None:
        self.messages: List[UserMessage] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)


class RasaChannels:
    """The customer channels of credentials.yml, mounted by Rasa's own `register` on /webhooks/..."""

    def __init__(self, tmp: Path) -> None:
        self.recorder = Recorder()
        app = Sanic(f"fuzz-rasa-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.ctx.agent = self.recorder
        channels = [
            RestInput(token=CHANNEL_TOKEN),
            OutboxInput(Outbox(f"sqlite:///{tmp / 'outbox.db'}"), token=CHANNEL_TOKEN),
            TelegramInput("123456:fuzz", secret_token=CUSTOMER_TELEGRAM_SECRET, api_url=NOWHERE),
            SlackInput.from_credentials(
                {
                    "slack_token": "xoxb-fuzz",
                    "slack_signing_secret": CUSTOMER_SLACK_SECRET,
                    "api_url": f"{NOWHERE}/api/",
                }
            ),
            SocketIOInput(
                user_message_evt="user_uttered",
                bot_message_evt="bot_uttered",
                session_persistence=True,
                secret=CHAT_SECRET,
            ),
        ]
        register(channels, app, "/webhooks/")
        self.app = app
        self.live = LiveApp(app).start()
        self.url = self.live.url

    def writes(self) -> int:
        return len(self.recorder.messages)

    def settle(self) -> None:
        """Lets the server's loop run what a request scheduled (Slack and socket.io hand over in a task)."""

        async def turns() -> None:
            for _ in range(20):
                await asyncio.sleep(0)

        self.live.run(turns())

    def healthy(self) -> bool:
        """Every channel's health route answers, and a good REST message still reaches Rasa."""
        before = self.writes()
        routes = ("rest", "outbox", "telegram", "slack", "socketio")
        ok = all(get(f"{self.url}/webhooks/{name}/")[0] == 200 for name in routes)
        said = post(
            f"{self.url}/webhooks/rest/webhook",
            b'{"sender": "after-fuzz", "message": "hello"}',
            "application/json",
            {"Authorization": f"Bearer {CHANNEL_TOKEN}"},
        )
        return ok and said == 200 and self.writes() == before + 1

    def stop(self) -> None:
        self.live.stop()


def confirm_delivery(record: Any) -> Tuple[int, Dict[str, Any], Dict[str, str]]:
    """Rasa's trigger_intent answer when the action server said the expert's reply: a bot event
    carrying the delivery id (what the hub waits for before it counts a reply as delivered)."""
    delivery_id = ((record.payload or {}).get("entities") or {}).get("delivery_id")
    said = {"event": "bot", "text": "An expert answered.", "metadata": {"delivery_id": delivery_id}}
    return 200, {"tracker": {"events": [said]}, "messages": [{"recipient_id": "c", "text": said["text"]}]}, {}


class Hub:
    """`python -m backline hub` on a free port over its own SQLite store; Rasa is a loopback stub."""

    def __init__(self, tmp: Path) -> None:
        self.db = tmp / "consultations.db"
        url = f"sqlite:///{self.db}"
        store = ConsultationStore(url)
        self.case = store.create(
            conversation_id="fuzz-customer-1",
            mode="consult",
            queue="billing",
            reasons=("refund_over_limit",),
            ai_draft="Your refund is on its way.",
        ).id
        store.assign(self.case, "mara", "slack")
        store.link_thread(self.case, "slack", *EXPERT_THREAD)
        self.telegram_case = store.create(conversation_id="fuzz-customer-2", mode="consult", queue="support").id
        store.assign(self.telegram_case, "jonas", "telegram")
        store.link_thread(self.telegram_case, "telegram", str(JONAS_TELEGRAM), TELEGRAM_MESSAGE)
        store.dispose()
        self.rasa = RecordingApi(confirm_delivery).start()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "BACKLINE_CONSULT_DB_URL": url,
            "BACKLINE_EXPERTS": str(PROJECT_ROOT / "experts.yml"),
            "BACKLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "BACKLINE_DASHBOARD_SECRET": DASHBOARD_SECRET,
            "BACKLINE_RASA_URL": self.rasa.url,
            "BACKLINE_RASA_TOKEN": "fuzz-rasa-token",
            "BACKLINE_SLACK_SIGNING_SECRET": HUB_SLACK_SECRET,
            "BACKLINE_TELEGRAM_WEBHOOK_SECRET": HUB_TELEGRAM_SECRET,
            "BACKLINE_SLA_INTERVAL": "0",
            "BACKLINE_HUB_URL": self.url,
            "BACKLINE_SLACK_BOT_TOKEN": "",
            "BACKLINE_TELEGRAM_BOT_TOKEN": "",
            "BACKLINE_SMTP_HOST": "",
        }
        self.log_path = tmp / "hub.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backline", "hub", "--port", str(port), "--host", "127.0.0.1"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while get(f"{self.url}/health")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the hub did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        self.probe = sqlite3.connect(str(self.db))

    def version(self) -> int:
        """SQLite's data_version: changes whenever another connection commits a change to the store."""
        return self.probe.execute("PRAGMA data_version").fetchone()[0]

    def settle(self, status: int) -> None:
        """After an accepted request, waits until background work (applying a reply) stopped writing."""
        if not 200 <= status < 300:
            return
        last, quiet_since, deadline = self.version(), time.monotonic(), time.monotonic() + 2
        while time.monotonic() - quiet_since < 0.025 and time.monotonic() < deadline:
            time.sleep(0.005)
            if self.version() != last:
                last, quiet_since = self.version(), time.monotonic()

    def healthy(self) -> bool:
        status, _ = get(f"{self.url}/health")
        listed, _ = get(f"{self.url}/api/consultations", {"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        return self.process.poll() is None and status == 200 and listed == 200

    def stop(self) -> None:
        interrupt(self.process)
        if hasattr(self, "probe"):
            self.probe.close()
        self.rasa.stop()


# --- the endpoints ---------------------------------------------------------------------------------

Headers = Callable[[Body], Dict[str, str]]


@dataclass
class Target:
    """One endpoint: where it is, what it takes, how to (fail to) authenticate, what it must refuse.

    ``strict``: it checks its fields, so ``refuse`` bodies get a 4xx; ``reads_body``: it reads its body
    at all (a sign-out does not); ``max_body``: bodies over it get 413 (1 MiB, the server's own cap, where
    the endpoint reads no body or takes Slack's interaction payloads, which carry a whole message); ``statuses``:
    whether its HTTP statuses say anything about the body (socket.io's polling transport answers
    "ok" to every packet it delivered: refusals travel as socket.io events)."""

    name: str
    server: str
    path: str
    shape: Shape
    auth: Optional[Headers] = None
    forged: Tuple[Headers, ...] = ()
    strict: bool = True
    reads_body: bool = True
    max_body: int = MAX_BODY_BYTES
    statuses: bool = True


def _none(_: Body) -> Dict[str, str]:
    return {}


def _header(name: str, value: str) -> Headers:
    return lambda _: {name: value}


def _bearer(token: str) -> Headers:
    return _header("Authorization", f"Bearer {token}")


def _forged_bearer(token: str) -> Tuple[Headers, ...]:
    """No credential, a wrong one, and the right token without the ``Bearer`` scheme."""
    return (_none, _bearer("forged"), _header("Authorization", token))


def _slack(secret: str, skew: int = 0) -> Headers:
    return lambda body: slack_signature(secret, body.data, int(time.time()) + skew)


def _cookie(secret: str, origin: str, person: str = "mara", age: int = 0) -> Headers:
    """A dashboard session as the page sends it: the cookie, the page's Origin and the session's CSRF token."""

    def headers(_: Body) -> Dict[str, str]:
        session = sign_session(secret.encode(), person, time.time() - age)
        return {
            "Cookie": f"backline_session={session}",
            "Origin": origin,
            "X-CSRF-Token": csrf_token(secret.encode(), session),
        }

    return headers


REPLY = Shape(
    examples=(
        {"action": "need_info", "text": "Which order do you mean?", "allowed_followups": ["informational"]},
        {"action": "need_info", "text": "Is it the Hub X2 you ordered on Monday?"},
    ),
    checked={
        "action": ("string",),
        "text": ("string", "null"),
        "allowed_followups": ("array", "null"),
        "allowed_followups.0": ("string",),
    },
    required=("action",),
    stored=("text", "allowed_followups.0"),
)
API_REPLY = Shape(
    examples=tuple({**e, "actor": None} for e in REPLY.examples),  # the shared token names no actor
    checked={**REPLY.checked, "actor": ("string", "null")},
    required=REPLY.required,
    stored=REPLY.stored,
)
SIGN_IN = Shape(
    examples=({"username": "fuzz-operator", "password": "not-the-password", "next": "/dashboard"},),
    encoding="form",
    required=("username", "password"),
)
SIGN_OUT = Shape(examples=({"confirm": True},))
REST = Shape(
    examples=(
        {"sender": "fuzz-1", "message": "hello", "metadata": {"locale": "en"}, "input_channel": "web"},
        {"sender": "fuzz-2", "message": "where is my order 10023?"},
    ),
    checked={
        "sender": ("string",),
        "message": ("string",),
        "metadata": ("object", "null"),
        "input_channel": ("string", "null"),
    },
    required=("sender", "message"),
    texts=("message",),
    ids=("sender",),
    stored=("sender", "message", "input_channel"),
    pad="metadata.pad",
)
OUTBOX = Shape(
    examples=REST.examples,
    checked={k: v for k, v in REST.checked.items() if k != "input_channel"},
    required=REST.required,
    texts=REST.texts,
    ids=REST.ids,
    stored=("sender", "message"),
    pad=REST.pad,
)
CUSTOMER_TELEGRAM = Shape(
    examples=(
        {
            "update_id": 1,
            "message": {
                "message_id": 5,
                "from": {"id": 42, "is_bot": False, "first_name": "Kim"},
                "chat": {"id": 42, "type": "private"},
                "date": 1764000000,
                "text": "hello",
            },
        },
        {"update_id": 1, "edited_message": {"message_id": 6, "chat": {"id": 42}, "text": "hello again"}},
        {
            "update_id": 1,
            "message": {"message_id": 7, "chat": {"id": 42}, "location": {"longitude": 13.4, "latitude": 52.5}},
        },
        {
            "update_id": 1,
            "callback_query": {"id": "4242", "data": "/affirm", "message": {"message_id": 8, "chat": {"id": 42}}},
        },
    ),
    checked={
        "update_id": ("integer",),
        "message": ("object", "null"),
        "message.chat": ("object",),
        "message.chat.id": ("integer", "string"),
        "message.text": ("string",),
        "edited_message.text": ("string",),
        "message.location": ("object",),
        "message.location.longitude": ("number",),
        "callback_query": ("object", "null"),
        "callback_query.data": ("string",),
        "callback_query.id": ("integer", "string"),
        "callback_query.message": ("object",),
    },
    required=("update_id",),
    texts=("message.text", "callback_query.data"),
    ids=("message.chat.id",),
    stored=("message.text", "edited_message.text", "callback_query.data", "message.chat.id"),
    serial=("update_id", "int"),
)
CUSTOMER_SLACK_EVENT = Shape(
    examples=(
        {
            "type": "event_callback",
            "event_id": "Ev1",
            "authed_users": ["U0BOT"],
            "event": {
                "type": "message",
                "channel": "D0CUST0001",
                "channel_type": "im",
                "user": "U0CUST0001",
                "text": "where is my order?",
                "ts": "1764000000.000100",
            },
        },
    ),
    checked={
        "event": ("object", "null"),
        "event.text": ("string", "null"),
        "event.user": ("string",),
        "event.channel": ("string", "null"),
        "event.ts": ("string", "null"),
        "event_id": ("string", "null"),
        "authed_users": ("array", "null"),
        "authed_users.0": ("string",),
    },
    texts=("event.text",),
    ids=("event.user",),
    stored=("event.text", "event.user", "event.channel"),
    serial=("event_id", "str"),
)
CUSTOMER_SLACK_CLICK = Shape(
    examples=(
        {
            "type": "block_actions",
            "user": {"id": "U0CUST0001"},
            "channel": {"id": "D0CUST0001"},
            "message": {"ts": "1764000000.000100"},
            "actions": [{"type": "button", "value": "/affirm", "action_ts": "1764000000.1"}],
        },
    ),
    encoding="form_payload",
    checked={
        "user": ("object",),
        "user.id": ("string",),
        "actions": ("array", "null"),
        "actions.0": ("object",),
        "actions.0.value": ("string", "null"),
        "actions.0.action_ts": ("string", "null"),
        "channel": ("object", "null"),
        "channel.id": ("string", "null"),
        "message": ("object", "null"),
        "message.ts": ("string", "null"),
    },
    texts=("actions.0.value",),
    ids=("user.id",),
    stored=("actions.0.value", "user.id"),
    serial=("actions.0.action_ts", "str"),
)
SOCKETIO = Shape(
    examples=(
        {"message": "hello", "session_id": new_session(CHAT_SECRET), "metadata": {"locale": "en"}},
        {"message": "where is my order 10023?", "session_id": new_session(CHAT_SECRET)},
    ),
    encoding="socketio",
    checked={"message": ("string",), "session_id": ("string",), "metadata": ("object", "string", "null")},
    texts=("message",),
    ids=("session_id",),
    stored=("message", "session_id"),
    pad="metadata.pad",
)


def hub_shapes(case: str, telegram_case: str) -> Dict[str, Shape]:
    """The expert-side webhooks' bodies: Mara's click and thread reply on Slack, Jonas's on Telegram."""
    click = Shape(
        examples=tuple(
            {
                "type": "block_actions",
                "user": {"id": MARA_SLACK},
                "trigger_id": "t1",
                "response_url": f"{NOWHERE}/response",
                "container": {"channel_id": EXPERT_THREAD[0], "message_ts": EXPERT_THREAD[1]},
                "actions": [
                    {"action_id": f"consult_{action}", "value": case, "action_ts": "1764000000.2", "type": "button"}
                ],
            }
            for action in ("answer", "approve")
        ),
        encoding="form_payload",
        checked={
            "type": ("string",),
            "user": ("object",),
            "user.id": ("string",),
            "actions": ("array",),
            "actions.0": ("object",),
            "actions.0.value": ("string",),
            "actions.0.action_ts": ("string",),
            "actions.0.action_id": ("string",),
            "container": ("object", "null"),
            "response_url": ("string", "null"),
        },
        required=("type", "user", "actions"),
        stored=("actions.0.value",),
        serial=("actions.0.action_ts", "str"),
    )
    thread_reply = Shape(
        examples=(
            {
                "type": "event_callback",
                "event_id": "Ev1",
                "event": {
                    "type": "message",
                    "channel": EXPERT_THREAD[0],
                    "user": MARA_SLACK,
                    "text": "answer: the refund is approved",
                    "ts": "1764000001.000100",
                    "thread_ts": EXPERT_THREAD[1],
                },
            },
            {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"},
        ),
        checked={
            "type": ("string",),
            "event": ("object",),
            "event.type": ("string",),
            "event.text": ("string",),
            "event.user": ("string",),
            "event.channel": ("string",),
            "event.thread_ts": ("string",),
            "event_id": ("string",),
            "challenge": ("string",),
        },
        required=("type",),
        stored=("event.text",),
        serial=("event_id", "str"),
    )
    update = Shape(
        examples=(
            {
                "update_id": 1,
                "message": {
                    "message_id": 90,
                    "from": {"id": JONAS_TELEGRAM, "is_bot": False},
                    "chat": {"id": JONAS_TELEGRAM, "type": "private"},
                    "text": "answer: the reset link is sent",
                    "reply_to_message": {"message_id": int(TELEGRAM_MESSAGE)},
                },
            },
            {
                "update_id": 1,
                "callback_query": {
                    "id": "cb1",
                    "from": {"id": JONAS_TELEGRAM},
                    "data": f"approve:{telegram_case}",
                    "message": {"message_id": int(TELEGRAM_MESSAGE), "chat": {"id": JONAS_TELEGRAM}},
                },
            },
        ),
        checked={
            "update_id": ("integer",),
            "message": ("object",),
            "message.from": ("object",),
            "message.from.id": ("integer",),
            "message.chat": ("object",),
            "message.chat.id": ("integer",),
            "message.text": ("string",),
            "message.reply_to_message": ("object",),
            "callback_query": ("object",),
            "callback_query.from": ("object",),
            "callback_query.data": ("string",),
            "callback_query.id": ("string",),
            "callback_query.message": ("object",),
        },
        required=("update_id",),
        stored=("message.text", "callback_query.data"),
        serial=("update_id", "int"),
    )
    return {"click": click, "thread_reply": thread_reply, "update": update}


def targets(hub: Hub) -> List[Target]:
    expert = hub_shapes(hub.case, hub.telegram_case)
    return [
        Target(
            "POST /webhooks/rest/webhook",
            "rasa",
            "/webhooks/rest/webhook",
            REST,
            auth=_bearer(CHANNEL_TOKEN),
            forged=_forged_bearer(CHANNEL_TOKEN),
        ),
        Target(
            "POST /webhooks/outbox/webhook",
            "rasa",
            "/webhooks/outbox/webhook",
            OUTBOX,
            auth=_bearer(CHANNEL_TOKEN),
            forged=_forged_bearer(CHANNEL_TOKEN),
        ),
        Target(
            "POST /webhooks/telegram/webhook",
            "rasa",
            "/webhooks/telegram/webhook",
            CUSTOMER_TELEGRAM,
            auth=_header(SECRET_HEADER, CUSTOMER_TELEGRAM_SECRET),
            forged=(_none, _header(SECRET_HEADER, "forged"), _header(SECRET_HEADER, "")),
        ),
        Target(
            "POST /webhooks/slack/webhook (events)",
            "rasa",
            "/webhooks/slack/webhook",
            CUSTOMER_SLACK_EVENT,
            auth=_slack(CUSTOMER_SLACK_SECRET),
            forged=(_none, _slack("forged"), _slack(CUSTOMER_SLACK_SECRET, skew=-600)),
        ),
        Target(
            "POST /webhooks/slack/webhook (interactivity)",
            "rasa",
            "/webhooks/slack/webhook",
            CUSTOMER_SLACK_CLICK,
            auth=_slack(CUSTOMER_SLACK_SECRET),
            forged=(_none, _slack("forged"), _slack(CUSTOMER_SLACK_SECRET, skew=900)),
        ),
        Target("POST /socket.io/ (polling: user_uttered)", "rasa", "/socket.io/", SOCKETIO, statuses=False),
        Target(
            "POST /api/consultations/<id>/reply",
            "hub",
            f"/api/consultations/{hub.case}/reply",
            API_REPLY,
            auth=_bearer(OPERATOR_TOKEN),
            forged=_forged_bearer(OPERATOR_TOKEN),
        ),
        Target(
            "POST /dashboard/api/consultations/<id>/reply",
            "hub",
            f"/dashboard/api/consultations/{hub.case}/reply",
            REPLY,
            auth=_cookie(DASHBOARD_SECRET, hub.url),
            forged=(_none, _cookie("forged-secret", hub.url), _cookie(DASHBOARD_SECRET, hub.url, age=13 * 3600)),
        ),
        # no credential to sign in and out: every body carries what the page sends, its Origin
        Target("POST /dashboard/login", "hub", "/dashboard/login", SIGN_IN, forged=(_header("Origin", hub.url),)),
        Target(
            "POST /dashboard/logout",
            "hub",
            "/dashboard/logout",
            SIGN_OUT,
            forged=(_header("Origin", hub.url),),
            strict=False,
            reads_body=False,
            max_body=SERVER_MAX_BYTES,
        ),
        Target(
            "POST /slack/interactivity",
            "hub",
            "/slack/interactivity",
            expert["click"],
            strict=False,
            auth=_slack(HUB_SLACK_SECRET),
            forged=(_none, _slack("forged"), _slack(HUB_SLACK_SECRET, skew=-600)),
            max_body=SERVER_MAX_BYTES,
        ),
        Target(
            "POST /slack/events",
            "hub",
            "/slack/events",
            expert["thread_reply"],
            strict=False,
            auth=_slack(HUB_SLACK_SECRET),
            forged=(_none, _slack("forged"), _slack(HUB_SLACK_SECRET, skew=600)),
            max_body=SERVER_MAX_BYTES,
        ),
        Target(
            "POST /telegram/webhook",
            "hub",
            "/telegram/webhook",
            expert["update"],
            strict=False,
            auth=_header("X-Telegram-Bot-Api-Secret-Token", HUB_TELEGRAM_SECRET),
            forged=(_none, _header("X-Telegram-Bot-Api-Secret-Token", "forged")),
            max_body=SERVER_MAX_BYTES,
        ),
    ]


# --- running the campaign --------------------------------------------------------------------------


@dataclass
class Sent:
    body: Body
    authenticated: bool
    status: int
    wrote: int


@dataclass
class Result:
    target: Target
    bodies: List[Body]
    sent: List[Sent] = field(default_factory=list)
    seconds: float = 0.0

    def where(self, predicate: Callable[[Sent], bool]) -> List[Sent]:
        return [s for s in self.sent if predicate(s)]


def _expect_413(target: Target, body: Body) -> bool:
    return body.expect == "413" and len(body.data) > target.max_body


def run_target(target: Target, rasa: RasaChannels, hub: Hub) -> Result:
    bodies = generate(
        target.shape, SEED + sum(map(ord, target.name)), limit=MAX_BODY_BYTES, max_chars=MAX_MESSAGE_CHARS
    )
    result = Result(target, bodies)
    started = time.monotonic()
    server = rasa if target.server == "rasa" else hub
    writes: Callable[[], int] = rasa.writes if target.server == "rasa" else hub.version
    passes: List[Tuple[bool, Optional[Headers]]] = []
    if target.auth is not None:
        passes.append((False, None))
    passes.append((target.auth is not None, target.auth))
    for authenticated, auth in passes:
        for i, body in enumerate(bodies):
            if auth is not None:
                headers = auth(body)
            elif target.forged:
                headers = target.forged[i % len(target.forged)](body)
            else:
                headers = {}
            before = writes()
            if target.path == "/socket.io/":
                status = _socketio_post(rasa.url, body)
            else:
                status = post(server.url + target.path, body.data, body.content_type, headers)
            if target.server == "rasa":
                rasa.settle()
            else:
                hub.settle(status)
            result.sent.append(Sent(body, authenticated, status, writes() - before))
    result.seconds = time.monotonic() - started
    return result


def _socketio_post(url: str, body: Body) -> int:
    """Opens an Engine.IO polling session, connects Socket.IO's namespace, then POSTs ``body`` on it."""
    status, answer = get(f"{url}/socket.io/?EIO=4&transport=polling")
    if status != 200 or not answer.startswith(b"0"):
        return 0
    session = f"{url}/socket.io/?EIO=4&transport=polling&sid={json.loads(answer[1:])['sid']}"
    if post(session, b"40", "text/plain;charset=UTF-8", {}) != 200:
        return 0
    return post(session, body.data, body.content_type, {})


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator["Campaign"]:
    tmp = tmp_path_factory.mktemp("fuzz")
    rasa = RasaChannels(tmp)
    try:
        hub = Hub(tmp)
    except Exception:
        rasa.stop()
        raise
    found = Campaign(rasa, hub)
    try:
        yield found
        selected = request.config.getoption("keyword") or request.config.getoption("markexpr")
        complete = not selected and len(found.results) == len(found.targets)
        if complete:
            found.healthy()  # measured while the servers still run, reported once they stopped
    finally:
        rasa.stop()
        hub.stop()
    if complete:
        found.report(request.config)


class Campaign:
    """The servers, the endpoints, and each endpoint's results (fuzzed on first use)."""

    def __init__(self, rasa: RasaChannels, hub: Hub) -> None:
        self.rasa, self.hub = rasa, hub
        self.targets = {t.name: t for t in targets(hub)}
        self.results: Dict[str, Result] = {}
        self.health: Dict[str, bool] = {}

    def result(self, name: str) -> Result:
        if name not in self.results:
            self.results[name] = run_target(self.targets[name], self.rasa, self.hub)
        return self.results[name]

    def everything(self) -> Dict[str, Result]:
        for name in self.targets:
            self.result(name)
        return self.results

    def healthy(self) -> Dict[str, bool]:
        self.everything()
        if not self.health:
            self.health = {"Rasa server (customer channels)": self.rasa.healthy(), "hub": self.hub.healthy()}
        return self.health

    def report(self, config: pytest.Config) -> None:
        command = "pytest " + " ".join(config.invocation_params.args or ("tests/test_fuzz.py",))
        reports.write_section("fuzz", "Fuzzing every endpoint", command, report_markdown(self))


def _classes(sent: List[Sent]) -> Dict[str, int]:
    counts = collections.Counter("no answer" if s.status == 0 else f"{s.status // 100}xx" for s in sent)
    counts["413"] = sum(1 for s in sent if s.status == 413)
    return counts


def report_markdown(found: Campaign) -> str:
    """The fuzz section of docs/reliability.md: per endpoint, what was sent and what came back."""
    rows = [
        "| endpoint | bodies | requests without / with credentials | 2xx | 3xx | 4xx (of which 413) | ≥ 500 | "
        "no answer | writes without credentials | writes from bodies that must be refused | healthy after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    results = [found.results[name] for name in found.targets if name in found.results]
    for result in results:
        target = result.target
        counts = _classes(result.sent)
        unauth = result.where(lambda s: not s.authenticated)
        auth = result.where(lambda s: s.authenticated)
        server = "Rasa server (customer channels)" if target.server == "rasa" else "hub"
        if target.auth is not None or target.server == "hub":
            unauth_writes = str(sum(1 for s in unauth if s.wrote))
        else:
            unauth_writes = "— (open channel)"
        refused_writes = sum(1 for s in result.sent if _must_refuse(target, s.body) and s.wrote)
        rows.append(
            f"| `{target.name}` | {len(result.bodies):,} | {len(unauth):,} / {len(auth):,} | {counts['2xx']:,} | "
            f"{counts['3xx']:,} | {counts['4xx']:,} ({counts['413']:,}) | {counts['5xx']:,} | "
            f"{counts['no answer']:,} | "
            f"{unauth_writes} | {refused_writes} | {'yes' if found.health.get(server) else 'NO'} |"
        )
    family_rows = ["| endpoint | " + " | ".join(FAMILIES) + " |", "|---|" + "---:|" * len(FAMILIES)]
    for result in results:
        per = collections.Counter(b.family for b in result.bodies)
        family_rows.append(f"| `{result.target.name}` | " + " | ".join(str(per[f]) for f in FAMILIES) + " |")
    open_problems = sorted({(name, reason) for (_, name), reason in LEAD.items()})
    seconds = sum(r.seconds for r in results)
    return "\n".join(
        [
            f"Every HTTP endpoint that takes a body, sent the bodies `tests/fuzz_bodies.py` generates (seed {SEED}; "
            "families below) over loopback: once without valid credentials and once with them (endpoints without "
            "credentials: once). The customer channels run as Rasa mounts them, with an agent that records user "
            "messages instead of running a model; the hub runs as its own process on a SQLite store. A write is a "
            "user message handed to Rasa or any commit to the consultation store (SQLite `data_version`). Limits "
            f"(`backline/limits.py`): bodies over {MAX_BODY_BYTES:,} bytes get 413 on the customer "
            "channels, the dashboard and the JSON API (`BACKLINE_MAX_BODY_BYTES`); the hub's expert webhooks and "
            f"sign-out only over its server-wide cap (every body over {SERVER_MAX_BYTES:,} bytes is checked there, as "
            f"on the Rasa server); customer messages over {MAX_MESSAGE_CHARS:,} characters get 413 "
            "(`BACKLINE_MAX_MESSAGE_CHARS`); JSON nested deeper than 32 levels, NUL, unpaired surrogates and wrongly "
            "typed fields 400. Socket.IO refuses a message with a `message_refused` event (its polling POST answers "
            f"200 to every packet it delivered). {sum(len(r.sent) for r in results):,} requests in {seconds:.0f} s.",
            "",
            *rows,
            "",
            "Bodies per family:",
            "",
            *family_rows,
            "",
            "Known problems, each a strict xfail in `tests/test_fuzz.py` until fixed:"
            if open_problems
            else "No known problems.",
            "",
            *[f"- `{name}`: {reason.removeprefix('lead fixing: ')}" for name, reason in open_problems],
        ]
    )


def _must_refuse(target: Target, body: Body) -> bool:
    """Whether a correct endpoint refuses this body outright (and so writes nothing for it)."""
    return (
        _expect_413(target, body)
        or (target.reads_body and body.expect == "4xx")
        or (target.strict and body.expect == "refuse")
    )


# --- the tests -------------------------------------------------------------------------------------

NAMES = [
    "POST /webhooks/rest/webhook",
    "POST /webhooks/outbox/webhook",
    "POST /webhooks/telegram/webhook",
    "POST /webhooks/slack/webhook (events)",
    "POST /webhooks/slack/webhook (interactivity)",
    "POST /socket.io/ (polling: user_uttered)",
    "POST /api/consultations/<id>/reply",
    "POST /dashboard/api/consultations/<id>/reply",
    "POST /dashboard/login",
    "POST /dashboard/logout",
    "POST /slack/interactivity",
    "POST /slack/events",
    "POST /telegram/webhook",
]
OPEN = ("POST /socket.io/ (polling: user_uttered)", "POST /dashboard/login", "POST /dashboard/logout")
SOCKETIO_NAME = "POST /socket.io/ (polling: user_uttered)"
STRICT = [
    n
    for n in NAMES
    if n
    not in (
        "POST /dashboard/logout",
        "POST /slack/interactivity",
        "POST /slack/events",
        "POST /telegram/webhook",
        SOCKETIO_NAME,
    )
]

_NO_LIMIT = (
    "lead fixing: the JSON API takes bodies up to the hub's REQUEST_MAX_SIZE (1,000,000 bytes), not "
    "64 KiB (its middleware can answer backline.limits.refuse_oversized)"
)
_SLACK_500 = (
    "lead fixing: slack_inbound answers 500 to bodies that are not UTF-8 (slack_sdk's SignatureVerifier "
    "decodes the body before comparing, even unsigned), to JSON nested too deep (RecursionError) and to "
    "payload/event fields that are not objects (.get on a list, str, number)"
)
_TELEGRAM_500 = (
    "lead fixing: telegram_inbound answers 500 to JSON nested too deep (RecursionError is not a "
    "ValueError) and to message/from/chat/callback_query fields that are not objects"
)
LEAD = {}
"""Failures in the hub's app.py, slack_inbound.py and telegram_inbound.py, which the lead is rewriting:
strict xfails, so that each one fails the suite the moment it is fixed (then remove its line)."""


def params(check: str, names: List[str]) -> List[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=LEAD[(check, name)]))
        if (check, name) in LEAD
        else name
        for name in names
    ]


def _show(sent: List[Sent], limit: int = 8) -> List[Tuple[str, str, int, int]]:
    return [(s.body.family, s.body.note, s.status, s.wrote) for s in sent[:limit]]


@pytest.mark.parametrize("name", NAMES)
def test_every_endpoint_gets_over_1000_bodies_of_every_family(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    families = collections.Counter(body.family for body in result.bodies)

    assert len(result.bodies) >= 1000
    assert set(families) == set(FAMILIES)
    assert all(not s.authenticated for s in result.sent[: len(result.bodies)])


@pytest.mark.parametrize("name", params("no_5xx", NAMES))
def test_no_answer_is_a_server_error(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)

    assert _show(result.where(lambda s: s.status >= 500)) == []


@pytest.mark.parametrize("name", NAMES)
def test_every_body_gets_an_answer(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)

    assert _show(result.where(lambda s: s.status == 0)) == []


@pytest.mark.parametrize("name", params("unauthenticated", [n for n in NAMES if n not in OPEN]))
def test_without_credentials_nothing_is_written_and_the_answer_is_401_or_403(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    unauthenticated = result.where(lambda s: not s.authenticated)

    assert len(unauthenticated) == len(result.bodies)
    assert _show([s for s in unauthenticated if s.wrote]) == []
    assert _show([s for s in unauthenticated if s.status not in (401, 403, 413)]) == []


@pytest.mark.parametrize("name", ["POST /dashboard/login", "POST /dashboard/logout"])
def test_signing_in_and_out_with_bad_bodies_writes_nothing(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    counted = result.where(
        lambda s: s.status == 401 and s.wrote == 1
    )  # a wrong password: one row set, sign_in_attempts

    assert _show(result.where(lambda s: s.wrote != 0 and s not in counted)) == []
    assert len(counted) <= 20  # then the address waits (429) and nothing more is written


@pytest.mark.parametrize("name", params("413", NAMES))
def test_bodies_over_the_limit_get_413(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    oversized = result.where(
        lambda s: s.authenticated == (result.target.auth is not None) and _expect_413(result.target, s.body)
    )
    expected = {413} if result.target.statuses else {400, 413}  # Engine.IO refuses an oversized packet with 400

    assert len(oversized) >= (8 if result.target.max_body == MAX_BODY_BYTES else 3)
    assert _show([s for s in oversized if s.status not in expected]) == []


@pytest.mark.parametrize(
    "name", params("unreadable", [n for n in NAMES if n not in (SOCKETIO_NAME, "POST /dashboard/logout")])
)
def test_bodies_an_endpoint_cannot_read_get_a_4xx(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    unreadable = result.where(lambda s: s.authenticated == (result.target.auth is not None) and s.body.expect == "4xx")

    assert len(unreadable) >= 100 or result.target.shape.encoding == "form"
    assert _show([s for s in unreadable if not 400 <= s.status < 500]) == []


@pytest.mark.parametrize("name", params("wrong_types", STRICT))
def test_wrongly_typed_or_unstorable_fields_get_a_4xx(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)
    refused = result.where(lambda s: s.authenticated == (result.target.auth is not None) and s.body.expect == "refuse")

    assert len(refused) >= 100
    assert _show([s for s in refused if not 400 <= s.status < 500]) == []


@pytest.mark.parametrize("name", params("refused_change_nothing", NAMES))
def test_bodies_that_must_be_refused_change_nothing(campaign: Campaign, name: str) -> None:
    result = campaign.result(name)

    assert _show(result.where(lambda s: _must_refuse(result.target, s.body) and s.wrote != 0)) == []


def test_every_server_is_healthy_after_the_fuzzing(campaign: Campaign) -> None:
    assert campaign.healthy() == {"Rasa server (customer channels)": True, "hub": True}
