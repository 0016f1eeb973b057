"""A real hub process for the dashboard's attack suite (tests/test_security_dashboard.py): `python -m
backline hub` on a free loopback port over its own SQLite store, without BACKLINE_DEMO; requests from
chosen loopback source addresses (the client's address as the hub sees it); a page of another origin."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from backline.consult.replies import Reply, record_reply
from backline.consult.store import ConsultationStore
from backline.hub.operators import hash_password
from tests.servers import PROJECT_ROOT, free_port, interrupt

JONAS_PASSWORD = "jonas-own-passphrase-7"
"""Jonas's own password in the hub's copy of experts.yml; every other operator keeps the demo password."""


@dataclass
class Answer:
    status: int
    headers: Dict[str, str]
    text: str
    seconds: float

    @property
    def session(self) -> Optional[str]:
        found = re.search(r"backline_session=([^;]*)", self.headers.get("set-cookie", ""))
        return found.group(1) if found and found.group(1) else None


def call(
    url: str,
    method: str = "GET",
    *,
    source: str = "127.0.0.1",
    headers: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    form: Optional[Dict[str, str]] = None,
    timeout: float = 30,
) -> Answer:
    """One request on a fresh connection from ``source`` (a loopback address: the client's address)."""
    parts = urllib.parse.urlsplit(url)
    sent = dict(headers or {})
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    started = time.monotonic()
    try:
        connection.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body or None, headers=sent
        )
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, text, time.monotonic() - started
        )
    finally:
        connection.close()


HERMETIC = {
    "RASA_TELEMETRY_ENABLED": "false",
    "BACKLINE_SLA_INTERVAL": "0",
    "BACKLINE_DELIVERY_INTERVAL": "0",
    "BACKLINE_QA_INTERVAL": "0",
    "BACKLINE_DEMO": "",
    "BACKLINE_TRUSTED_PROXIES": "",
    "BACKLINE_DASHBOARD_ORIGIN": "",
    "BACKLINE_COOKIE_SECURE": "",
    "BACKLINE_CHAT_SOCKET_URL": "",
    "BACKLINE_SLACK_SIGNING_SECRET": "",
    "BACKLINE_TELEGRAM_WEBHOOK_SECRET": "",
    "BACKLINE_SLACK_BOT_TOKEN": "",
    "BACKLINE_TELEGRAM_BOT_TOKEN": "",
    "BACKLINE_SMTP_HOST": "",
}
"""What a test hub starts with unless told otherwise: no timers, no demo, no expert channel, no proxy."""


def start_hub(tmp: Path, env: Dict[str, str]) -> Tuple[subprocess.Popen, str, Path]:
    """`python -m backline hub` on a free loopback port with `HERMETIC` and ``env`` over the environment,
    once it answers /health: (the process, its URL, its log file). `interrupt` stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "hub.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backline", "hub", "--port", str(port), "--host", "127.0.0.1"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **HERMETIC, "BACKLINE_HUB_URL": url, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(f"{url}/health", timeout=2).status == 200:
                return process, url, log_path
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            interrupt(process)
            raise RuntimeError(f"the hub did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


class Hub:
    """`python -m backline hub` on a free loopback port over its own SQLite store, without BACKLINE_DEMO."""

    def __init__(self, tmp: Path) -> None:
        experts = (PROJECT_ROOT / "experts.yml").read_text()
        jonas = re.search(r"(  jonas:\n(?:    .*\n|      .*\n)*?.*type: dashboard, password_hash: \")([^\"]+)", experts)
        assert jonas is not None, "experts.yml: jonas's dashboard channel"
        (tmp / "experts.yml").write_text(experts.replace(jonas.group(2), hash_password(JONAS_PASSWORD), 1))
        self.db = tmp / "consultations.db"
        store = ConsultationStore(f"sqlite:///{self.db}")
        self.case = store.create(
            conversation_id="web:0123456789abcdef0123456789abcdef",
            mode="handoff",
            queue="billing",
            reasons=["sensitive_topic"],
        ).id
        store.assign(self.case, "jonas", "dashboard")
        record_reply(store, self.case, "jonas", "dashboard", Reply("take_over"))  # human mode: he writes himself
        store.dispose()
        self.rasa_port = free_port()  # nothing listens on Rasa's port
        self.process, self.url, self.log_path = start_hub(
            tmp,
            {
                "BACKLINE_CONSULT_DB_URL": f"sqlite:///{self.db}",
                "BACKLINE_EXPERTS": str(tmp / "experts.yml"),
                "BACKLINE_OPERATOR_TOKEN": "security-operator-token",
                "BACKLINE_DASHBOARD_SECRET": "security-secret",
                "BACKLINE_RASA_URL": f"http://127.0.0.1:{self.rasa_port}",
                "BACKLINE_RASA_TOKEN": "security-rasa",
                "BACKLINE_CHAT_SECRET": "security-chat-secret",
            },
        )

    def sign_in(self, username: str, password: str, source: str, **headers: str) -> Answer:
        """The sign-in form as the hub's own page posts it (its Origin), unless ``headers`` say otherwise."""
        return call(
            f"{self.url}/dashboard/login",
            "POST",
            source=source,
            headers={"Origin": self.url, **headers},
            form={"username": username, "password": password, "next": "/dashboard"},
        )

    def session(self, source: str) -> Tuple[Dict[str, str], str]:
        """Jonas signed in from ``source``: the cookie header and the session's CSRF token."""
        answer = self.sign_in("jonas", JONAS_PASSWORD, source)
        assert answer.status == 303 and answer.session, answer.text[:300]
        cookie = {"Cookie": f"backline_session={answer.session}"}
        token = json.loads(call(f"{self.url}/dashboard/api/session", source=source, headers=cookie).text)["csrf_token"]
        return cookie, token

    def rows(self) -> List[Tuple[str, str]]:
        with sqlite3.connect(str(self.db)) as connection:
            return connection.execute("SELECT scope, key FROM sign_in_attempts").fetchall()

    def case_state(self) -> Tuple[str, int, int]:
        """The case's status, how many messages and audit events it has."""
        store = ConsultationStore(f"sqlite:///{self.db}")
        try:
            return (store.require(self.case).status, len(store.messages(self.case)), len(store.audit_trail(self.case)))
        finally:
            store.dispose()

    def stop(self) -> None:
        interrupt(self.process)


class AttackerSite:
    """A page of another origin on the same host (same site: SameSite=Lax lets the cookie through)."""

    def __init__(self, hub: Hub) -> None:
        reply = f"{hub.url}/dashboard/api/consultations/{hub.case}/reply"
        page = (
            f'<html><body><form id="f" method="post" enctype="text/plain" action="{reply}">'
            '<input name=\'{"action": "message", "text": "forged", "x": "\' value=\'"}\'></form>'
            f'<iframe id="frame" src="{hub.url}/dashboard"></iframe></body></html>'
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
