"""The scale profile, running: `backline run --profile scale` with a local PostgreSQL and Redis, two
Rasa servers, two action servers, two hubs and HAProxy, on free loopback ports.

One profile per module (it takes about a minute to start). The tests talk to the balancer and to
the instances directly: a conversation moves between Rasa servers turn by turn with its tracker
intact and in order; concurrent turns of one conversation are processed one at a time; a retried
message (same ``message_id``) is processed once whichever server gets it; a handoff opened through
one hub is answered through the other; a Rasa server killed with kill -9 is taken out by the balancer
and restarted by the supervisor while the conversation continues; and the whole profile stops cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from tests.servers import PROJECT_ROOT, free_port

pytestmark = pytest.mark.stack

MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
CHANNEL_TOKEN = "scale-channel-token"
RASA_TOKEN = "scale-api-token"
OPERATOR_TOKEN = "scale-operator-token"


@dataclass
class Profile:
    process: subprocess.Popen
    log: Path
    ports: Dict[str, int]
    instances: Dict[str, List[int]]

    def url(self, service: str, number: Optional[int] = None) -> str:
        """The balancer's URL for ``service``, or instance ``number``'s (1-based)."""
        port = self.ports[service] if number is None else self.instances[service][number - 1]
        return f"http://127.0.0.1:{port}"

    def pid(self, name: str) -> int:
        """The current pid of child ``name``, from the supervisor's log."""
        found = re.findall(rf"{re.escape(name)} started \(pid (\d+)\)", self.log.read_text(errors="replace"))
        assert found, f"{name} never started"
        return int(found[-1])


def _wait_for(text: str, profile: Profile, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if profile.process.poll() is not None:
            raise RuntimeError(f"backline run exited:\n{profile.log.read_text(errors='replace')[-4000:]}")
        if text in profile.log.read_text(errors="replace"):
            return
        time.sleep(1)
    raise RuntimeError(f"no {text!r} within {timeout:g} s:\n{profile.log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Profile]:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test trains before running pytest)")
    tmp = tmp_path_factory.mktemp("scale")
    ports = {name: free_port() for name in ("rasa", "actions", "hub", "postgres", "redis")}
    instances = {name: [free_port(), free_port()] for name in ("rasa", "actions", "hub")}
    env = {
        **os.environ,
        "BACKLINE_SCALE_DATA": str(tmp / "data"),
        "BACKLINE_RASA_PORT": str(ports["rasa"]),
        "BACKLINE_ACTIONS_PORT": str(ports["actions"]),
        "BACKLINE_HUB_PORT": str(ports["hub"]),
        "BACKLINE_POSTGRES_PORT": str(ports["postgres"]),
        "BACKLINE_REDIS_PORT": str(ports["redis"]),
        "BACKLINE_RASA_PORTS": ",".join(map(str, instances["rasa"])),
        "BACKLINE_ACTIONS_PORTS": ",".join(map(str, instances["actions"])),
        "BACKLINE_HUB_PORTS": ",".join(map(str, instances["hub"])),
        "BACKLINE_HUB_URL": f"http://127.0.0.1:{ports['hub']}",
        "BACKLINE_CHAT_ORIGIN": f"http://127.0.0.1:{ports['hub']}",
        "BACKLINE_RASA_TOKEN": RASA_TOKEN,
        "BACKLINE_CHANNEL_TOKEN": CHANNEL_TOKEN,
        "BACKLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "BACKLINE_ACTION_TOKEN": "scale-action-token",
        "BACKLINE_CHAT_SECRET": "scale-chat-secret",
        "BACKLINE_DASHBOARD_SECRET": "scale-dashboard-secret",
        "BACKLINE_POSTGRES_PASSWORD": "scale-postgres-password",
        "BACKLINE_REDIS_PASSWORD": "scale-redis-password",
        "BACKLINE_DELIVERY_INTERVAL": "0.2",
        "BACKLINE_DEMO": "1",
    }
    for variable in (
        "BACKLINE_POSTGRES_URL",
        "BACKLINE_REDIS_URL",
        "BACKLINE_CONSULT_DB_URL",
        "BACKLINE_TRACKER_DB_URL",
    ):
        env.pop(variable, None)
    for variable in ("BACKLINE_SLACK_BOT_TOKEN", "BACKLINE_TELEGRAM_BOT_TOKEN", "BACKLINE_SMTP_HOST"):
        env[variable] = ""
    log = tmp / "backline-run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backline", "run", "--profile", "scale", "--model", str(MODEL)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Profile(process, log, ports, instances)
    try:
        _wait_for("Backline is running", running, 400)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def say(base: str, sender: str, text: str, message_id: Optional[str] = None, timeout: float = 60) -> requests.Response:
    body: Dict[str, Any] = {"sender": sender, "message": text}
    if message_id is not None:
        body["message_id"] = message_id
    return requests.post(
        f"{base}/webhooks/rest/webhook",
        json=body,
        headers={"Authorization": f"Bearer {CHANNEL_TOKEN}"},
        timeout=timeout,
    )


def tracker(base: str, sender: str) -> Dict[str, Any]:
    answer = requests.get(f"{base}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=30)
    answer.raise_for_status()
    return answer.json()


def user_texts(events: List[Dict[str, Any]]) -> List[str]:
    return [e["text"] for e in events if e["event"] == "user"]


def turns_are_whole(events: List[Dict[str, Any]]) -> bool:
    """Every user event's turn ends (action_listen) before the next user event: no interleaving."""
    listening = True
    for event in events:
        if event["event"] == "user":
            if not listening:
                return False
            listening = False
        elif event["event"] == "action" and event.get("name") == "action_listen":
            listening = True
    return listening


def test_a_conversation_moves_between_rasa_servers_with_its_tracker_intact(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    sent = ["hi", "what are your opening hours?", "where is my order 10023?", "how much is Kestrel Cloud Pro?"]
    replies = []
    for turn, text in enumerate(sent):
        answer = say(profile.url("rasa", 1 + turn % 2), sender, text)
        assert answer.status_code == 200, answer.text
        replies.append(answer.json())
    assert all(replies), replies  # every turn was answered
    assert "10023" in " ".join(m.get("text", "") for m in replies[2])
    one, two = tracker(profile.url("rasa", 1), sender), tracker(profile.url("rasa", 2), sender)
    assert one["events"] == two["events"]
    assert user_texts(one["events"]) == sent
    assert turns_are_whole(one["events"])


def test_the_balancer_spreads_turns_and_names_the_server(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    served = []
    for text in ("hello", "what are your opening hours?", "thanks", "what are your opening hours?"):
        answer = say(profile.url("rasa"), sender, text)
        assert answer.status_code == 200
        served.append(answer.headers["X-Backline-Server"])
    assert set(served) == {"rasa-1", "rasa-2"}
    assert user_texts(tracker(profile.url("rasa"), sender)["events"]) == [
        "hello",
        "what are your opening hours?",
        "thanks",
        "what are your opening hours?",
    ]


def test_concurrent_turns_of_one_conversation_are_processed_one_at_a_time(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    texts = [f"what are your opening hours on day {n}?" for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: say(profile.url("rasa", 1 + n % 2), sender, texts[n]), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    events = tracker(profile.url("rasa", 1), sender)["events"]
    assert sorted(user_texts(events)) == sorted(texts)
    assert turns_are_whole(events)


def test_a_retried_message_is_processed_once_whichever_server_gets_it(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    first = say(profile.url("rasa", 1), sender, "where is my order 10023?", message_id="turn-1")
    again = say(profile.url("rasa", 2), sender, "where is my order 10023?", message_id="turn-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    events = tracker(profile.url("rasa"), sender)["events"]
    assert [e.get("message_id") for e in events if e["event"] == "user"] == ["turn-1"]


def _consultation(hub: str, sender: str, timeout: float = 30) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = requests.get(
            f"{hub}/api/consultations", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10
        )
        listing.raise_for_status()
        found = [c for c in listing.json() if c["conversation_id"] == sender]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no consultation for {sender}")


def test_a_handoff_opened_through_one_hub_is_answered_through_the_other(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    answer = say(profile.url("rasa"), sender, "I want to talk to a human")
    assert answer.status_code == 200
    case = _consultation(profile.url("hub", 1), sender)
    assert case["mode"] == "handoff"
    reply = requests.post(
        f"{profile.url('hub', 2)}/api/consultations/{case['id']}/reply",
        json={"action": "message", "text": "Hello, this is Mara from support."},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=30,
    )
    assert reply.status_code in (200, 202), reply.text
    deadline = time.monotonic() + 30
    said: List[str] = []
    while time.monotonic() < deadline:
        said = [e.get("text") for e in tracker(profile.url("rasa"), sender)["events"] if e["event"] == "bot"]
        if "Hello, this is Mara from support." in said:
            break
        time.sleep(0.5)
    assert said.count("Hello, this is Mara from support.") == 1
    seen = requests.get(
        f"{profile.url('hub', 1)}/api/consultations/{case['id']}",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=10,
    ).json()
    assert [d["status"] for d in seen["deliveries"]] == ["delivered"]


def test_the_web_chat_sticks_to_one_server_and_gets_pushes_from_any(profile: Profile) -> None:
    """Long-polling through the balancer needs the sticky cookie (every poll of one Engine.IO session
    must reach the server that opened it); an expert's reply, produced by whichever Rasa server the
    hub's delivery reaches, comes to the socket through Redis."""
    import socketio

    client = socketio.Client()  # requests' session keeps the balancer's cookie
    received: List[Dict[str, Any]] = []
    issued: List[str] = []
    client.on("session_confirm", issued.append)
    client.on("bot_uttered", received.append)
    client.connect(profile.url("rasa"), transports=["polling"], wait_timeout=30)
    try:
        assert client.eio.http is not None
        assert "BACKLINE_RASA" in client.eio.http.cookies  # the balancer's sticky cookie
        client.emit("session_request", {})
        deadline = time.monotonic() + 30
        while not issued and time.monotonic() < deadline:
            time.sleep(0.2)
        session = issued[0]
        client.emit("user_uttered", {"message": "I want to talk to a human", "session_id": session})
        case = _consultation(profile.url("hub", 2), "web:" + session.split(".")[0], timeout=60)
        before = len(received)
        for number in (1, 2, 3):  # three deliveries: round robin sends them to both Rasa servers
            reply = requests.post(
                f"{profile.url('hub', 1 + number % 2)}/api/consultations/{case['id']}/reply",
                json={"action": "message", "text": f"Mara here, note {number}."},
                headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                timeout=30,
            )
            assert reply.status_code in (200, 202), reply.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pushed = [m.get("text") for m in received[before:]]
            if len(pushed) >= 3:
                break
            time.sleep(0.2)
        time.sleep(1)  # a fourth (a copy) would have arrived by now
        assert [m.get("text") for m in received[before:]] == [
            "Mara here, note 1.",
            "Mara here, note 2.",
            "Mara here, note 3.",
        ]
    finally:
        client.disconnect()


def test_a_rasa_server_killed_mid_conversation_is_bypassed_and_restarted(profile: Profile) -> None:
    sender = f"scale-{uuid.uuid4().hex[:8]}"
    assert say(profile.url("rasa"), sender, "hi", message_id="k0").status_code == 200
    victim = profile.pid("rasa-1")
    os.kill(victim, signal.SIGKILL)
    sent = ["hi"]
    for n in range(1, 7):
        text = "what are your opening hours?" if n % 2 else "thanks"
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline:  # a client retries a turn the balancer could not serve
            try:
                answer = say(profile.url("rasa"), sender, text, message_id=f"k{n}", timeout=30)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200
        sent.append(text)
    assert user_texts(tracker(profile.url("rasa", 2), sender)["events"]) == sent
    _wait_for("rasa-1 exited with code -9 (SIGKILL); restarting", profile, 30)
    deadline = time.monotonic() + 240
    while profile.pid("rasa-1") == victim and time.monotonic() < deadline:
        time.sleep(1)
    assert profile.pid("rasa-1") != victim


def test_the_whole_profile_stops_cleanly(profile: Profile) -> None:
    pids = {name: profile.pid(name) for name in ("postgres", "redis", "balancer", "rasa-2", "hub-1", "actions-2")}
    profile.process.send_signal(signal.SIGTERM)
    assert profile.process.wait(timeout=90) == 0
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], name
    for port in [*profile.ports.values(), *(p for ports in profile.instances.values() for p in ports)]:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
