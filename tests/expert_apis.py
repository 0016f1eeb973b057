"""Loopback servers that speak Slack's Web API, Telegram's Bot API and SMTP, and record what they receive.

Each checks what the real service checks where it matters to us (token, Block Kit limits, HTML
entities, callback_data size, message length) and answers like it; `fail_next` scripts failures.
"""

from __future__ import annotations

import collections
import html.parser
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.servers import free_port

Answer = Tuple[int, Any, Dict[str, str]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    payload: Dict[str, Any]


@dataclass
class Scripted:
    status: int
    body: Any
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class RecordingApi:
    """A ThreadingHTTPServer on 127.0.0.1 answering POSTs through ``respond(Recorded) -> Answer``."""

    def __init__(self, respond: Callable[[Recorded], Answer]) -> None:
        self.respond = respond
        self.requests: List[Recorded] = []
        self.script: Deque[Scripted] = collections.deque()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record = Recorded("POST", self.path, dict(self.headers.items()), body, _payload(self.headers, body))
                with api.lock:
                    api.requests.append(record)
                    scripted = api.script.popleft() if api.script else None
                if scripted is not None:
                    time.sleep(scripted.delay)
                    status, answer, headers = scripted.status, scripted.body, scripted.headers
                else:
                    status, answer, headers = api.respond(record)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def fail_next(
        self, status: int, body: Any, headers: Optional[Dict[str, str]] = None, delay: float = 0.0, times: int = 1
    ) -> None:
        for _ in range(times):
            self.script.append(Scripted(status, body, headers or {}, delay))

    def start(self) -> "RecordingApi":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _payload(headers: Any, body: bytes) -> Dict[str, Any]:
    kind = (headers.get("Content-Type") or "").split(";")[0].strip()
    if kind == "application/json":
        return json.loads(body or b"{}")
    if kind == "application/x-www-form-urlencoded":
        form = dict(urllib.parse.parse_qsl(body.decode()))
        for key in ("blocks", "attachments", "metadata", "reply_markup"):
            if key in form:
                form[key] = json.loads(form[key])
        return form
    return {}


# --- Slack Web API ------------------------------------------------------------------------------


class FakeSlack(RecordingApi):
    """POST /api/chat.postMessage (and chat.postEphemeral) with a Bearer token; DMs to a user id land in
    channel 'D' + id[1:]."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.counter = 0
        super().__init__(self._answer)

    def _answer(self, record: Recorded) -> Answer:
        if record.path not in ("/api/chat.postMessage", "/api/chat.postEphemeral"):
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if record.headers.get("Authorization") != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        p = record.payload
        channel = str(p.get("channel", ""))
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if not p.get("text") and not p.get("blocks"):
            return 200, {"ok": False, "error": "no_text"}, {}
        problem = _block_kit_problem(p.get("blocks") or [])
        if problem:
            return 200, {"ok": False, "error": "invalid_blocks", "errors": [problem]}, {}
        with self.lock:
            self.counter += 1
            ts = f"1764000000.{self.counter:06d}"
        dm = "D" + channel[1:] if channel.startswith("U") else channel
        if record.path.endswith("postEphemeral"):
            return (
                (200, {"ok": True, "message_ts": ts}, {})
                if p.get("user")
                else (200, {"ok": False, "error": "user_not_in_channel"}, {})
            )
        return 200, {"ok": True, "channel": dm, "ts": ts, "message": {"text": p.get("text"), "ts": ts}}, {}

    def posts(self) -> List[Dict[str, Any]]:
        return [r.payload for r in self.requests]


def _block_kit_problem(blocks: List[Dict[str, Any]]) -> Optional[str]:
    """The first Block Kit rule broken (the limits Slack enforces), or None."""
    if len(blocks) > 50:
        return "more than 50 blocks"
    action_ids = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and (block["text"]["type"] != "plain_text" or len(block["text"]["text"]) > 150):
            return "header must be plain_text of at most 150 characters"
        if kind == "section":
            if "text" not in block and "fields" not in block:
                return "section needs text or fields"
            if len(block.get("text", {}).get("text", "")) > 3000:
                return "section text longer than 3000"
            fields = block.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                return "section fields: at most 10, each at most 2000 characters"
        if kind == "context" and len(block.get("elements", [])) > 10:
            return "context: at most 10 elements"
        if kind == "actions":
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    if len(element["text"]["text"]) > 75 or len(element.get("value", "")) > 2000:
                        return "button text or value too long"
                    action_ids.append(element["action_id"])
    if len(action_ids) != len(set(action_ids)):
        return "duplicate action_id"
    return None


# --- Telegram Bot API ---------------------------------------------------------------------------

_TELEGRAM_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-spoiler",
    "span",
}


class _EntityChecker(html.parser.HTMLParser):
    """Fails like Telegram's 'can't parse entities' on unknown or unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: List[str] = []
        self.problem: Optional[str] = None
        self.plain: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problem = self.problem or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problem = self.problem or f'Unmatched end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def telegram_plain_text(text: str) -> str:
    """The message as the user sees it (entities parsed)."""
    checker = _EntityChecker()
    checker.feed(text)
    checker.close()
    return "".join(checker.plain)


class FakeTelegram(RecordingApi):
    """POST /bot<token>/sendMessage (JSON); answers {"ok": true, "result": {"message_id": ...}}."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.counter = 100
        super().__init__(self._answer)

    def _answer(self, record: Recorded) -> Answer:
        prefix = f"/bot{self.token}/"
        if not record.path.startswith("/bot"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, {}
        if not record.path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}
        if record.path[len(prefix) :] != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, {}
        p = record.payload
        text = str(p.get("text", ""))
        if p.get("parse_mode") == "HTML":
            checker = _EntityChecker()
            checker.feed(text)
            checker.close()
            if checker.problem or checker.stack:
                return 400, _bad(f"can't parse entities: {checker.problem or 'unclosed tag'}"), {}
            text = "".join(checker.plain)
        if not text.strip():
            return 400, _bad("message text is empty"), {}
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return 400, _bad("message is too long"), {}
        for row in (p.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if not 1 <= len(button.get("callback_data", "").encode()) <= 64:
                    return 400, _bad("BUTTON_DATA_INVALID"), {}
        with self.lock:
            self.counter += 1
            message_id = self.counter
        chat = p.get("chat_id")
        return (
            200,
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "chat": {"id": chat, "type": "private"},
                    "date": 1764000000,
                    "text": text,
                },
            },
            {},
        )

    def messages(self) -> List[Dict[str, Any]]:
        return [r.payload for r in self.requests]


def _bad(description: str) -> Dict[str, Any]:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: List[str]
    content: bytes


class RecordingSmtp:
    """An aiosmtpd handler that keeps each message; ``rcpt_replies`` scripts answers to RCPT TO."""

    def __init__(self) -> None:
        self.messages: List[ReceivedMail] = []
        self.rcpt_replies: Deque[str] = collections.deque()
        self.logins: List[Tuple[str, str]] = []

    async def handle_RCPT(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,  # noqa: N802
        rcpt_options: Any,
    ) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        if (login, password) == ("backline", "s3cret"):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535


class SmtpServer:
    """aiosmtpd's Controller on 127.0.0.1 (AUTH offered without TLS, as on a local relay)."""

    def __init__(self) -> None:
        self.handler = RecordingSmtp()
        self.port = free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.handler.authenticate,
            auth_require_tls=False,
        )

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
