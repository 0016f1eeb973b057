"""A fault-injection harness: Backline's three processes started one by one on loopback (the same
commands as `backline run`, from `backline.launcher.process_specs`), each of which a test can kill
with SIGKILL, freeze with SIGSTOP / SIGCONT and start again, plus the client calls and checks the
fault suite needs (a customer over REST, an operator over the hub's API, the tracker)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import requests

from backline.launcher import BIN, PROJECT_ROOT, _write_channels, child, environment, process_specs
from tests.servers import Stack


class Process:
    """One Backline process in a session (and process group) of its own, logging to ``log``."""

    def __init__(
        self, name: str, argv: List[str], env: Dict[str, str], health_url: str, log: Path, start_timeout: float
    ) -> None:
        self.name, self.argv, self.env, self.health_url = name, argv, env, health_url
        self.log, self.start_timeout = log, start_timeout
        self.popen: Optional[subprocess.Popen] = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log.read_text()[-3000:]}")
            if healthy(self.health_url):
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer its health check:\n{self.log.read_text()[-3000:]}")

    def signal(self, signum: int) -> None:
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def kill9(self) -> None:
        """SIGKILL to the process and everything it started; returns once it is gone."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def freeze(self) -> None:
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def processes(model: Path, env: Dict[str, str], logs: Path) -> Dict[str, Process]:
    """The action server, the Rasa server and the hub, as `backline run` would start them."""
    credentials = logs / "credentials.yml"
    _write_channels(env, credentials)
    env = {**environment(env), "BACKLINE_CREDENTIALS": str(credentials)}
    found = {}
    for spec in process_specs(str(model)):
        spec_child = child(spec, env)
        found[spec.name] = Process(
            spec.name,
            list(spec_child.argv),
            dict(spec_child.env),
            spec_child.health_url,
            logs / f"{spec.name}.log",
            spec.start_timeout,
        )
    assert Path(found["actions"].argv[0]).parent == BIN
    return found


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@dataclass
class Customer:
    """The client side of the suite: a REST customer, an operator with the API token."""

    stack: Stack
    said: Dict[str, List[str]] = field(default_factory=dict)

    def say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        response = requests.post(
            f"{self.stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            headers=self.stack.channel_auth,
            timeout=120,
        )
        response.raise_for_status()
        self.said.setdefault(sender, []).append(text)
        return response.json()

    def hub(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.stack.operator_token}"}
        return requests.request(method, f"{self.stack.hub_url}{path}", headers=headers, timeout=120, **kwargs)

    def case(self, sender: str) -> Dict[str, Any]:
        response = self.hub("GET", "/api/consultations", params={"conversation_id": sender})
        response.raise_for_status()
        return response.json()[-1]

    def detail(self, consultation_id: str) -> Dict[str, Any]:
        response = self.hub("GET", f"/api/consultations/{consultation_id}")
        response.raise_for_status()
        return response.json()

    def reply(self, consultation_id: str, **body: Any) -> requests.Response:
        return self.hub("POST", f"/api/consultations/{consultation_id}/reply", json=body)

    def events(self, sender: str) -> List[Dict[str, Any]]:
        response = requests.get(
            f"{self.stack.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.stack.rasa_token, "include_events": "ALL"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["events"]

    def shown(self, sender: str) -> Dict[str, int]:
        """How many bot messages of the conversation carry each delivery id."""
        counts: Dict[str, int] = {}
        for event in self.events(sender):
            delivery_id = (event.get("metadata") or {}).get("delivery_id") if event.get("event") == "bot" else None
            if delivery_id:
                counts[delivery_id] = counts.get(delivery_id, 0) + 1
        return counts


class LossyProxy:
    """An HTTP proxy between the hub and Rasa that can lose answers: with ``lose_next`` > 0 it
    forwards the request, lets Rasa finish it, and then hangs up on the hub without the answer (what
    a dropped connection or a proxy timeout does). ``forwarded`` counts requests that reached Rasa."""

    def __init__(self, upstream: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream.rstrip("/")
        self.lose_next = 0
        self.lost = 0
        self.forwarded = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    answer = requests.request(
                        self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=120
                    )
                except requests.RequestException:
                    self.close_connection = True
                    self.send_error(502)
                    return
                with proxy.lock:
                    proxy.forwarded += 1
                    lose = proxy.lose_next > 0
                    proxy.lose_next -= lose
                    proxy.lost += lose
                if lose:  # Rasa has applied it; the hub never hears back
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward  # noqa: N815 (http.server's naming)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
