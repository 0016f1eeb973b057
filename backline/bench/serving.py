"""Serving speed over REST on loopback: the project's stack against a vanilla Rasa config,
and the time an expert's reply takes from the hub to the customer.

One action server and, one after the other, the project's and the vanilla Rasa server,
each on a free port with its own fresh tracker database; every conversation is a fixed
script of messages, every request has a timeout, and each load level sends a fixed
number of messages, so a run always stops by itself. The hub measurement starts the
whole assistant (`python -m backline run`) and answers a fixed number of consultations.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from backline.bench.metrics import LatencySummary, latency_summary
from backline.launcher import wait_until_up
from backline.paths import PROJECT_ROOT
from backline.rasa.channels import enabled_credentials

RASA = str(Path(sys.executable).parent / "rasa")
SCRIPT = [
    "hi there",
    "where is my order 10023?",
    "what are your opening hours?",
    "how much is Kestrel Cloud Pro?",
    "thanks a lot",
    "bye",
]
LEVELS = {1: 8, 8: 4}  # concurrent conversations -> conversations each worker runs
REQUEST_TIMEOUT = 60.0
START_TIMEOUT = 300.0
CONSULTATIONS = 20
POLL = 0.01
CHANNEL_TOKEN = secrets.token_urlsafe(24)
"""This run's REST/outbox channel credential (BACKLINE_CHANNEL_TOKEN of the servers it starts)."""
ESCALATING = "I want a refund of €780 for my Hub X1, order 10023"
EXPERT_ANSWER = "The refund of 780 EUR is approved; expect it within 5 days."


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_sigint() -> None:
    """A shell's background job ignores SIGINT, and so would the command: give it Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def process(command: List[str], env: Dict[str, str], log: Path, health_url: str) -> Iterator[None]:
    """Starts `command` in a process group of its own with its output in `log`, waits for
    `health_url`, and on exit stops it with SIGINT, then kills whatever is left of the group."""
    with open(log, "wb") as output:
        started = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        try:
            wait_until_up(health_url, started, START_TIMEOUT)
            yield
        finally:
            started.send_signal(signal.SIGINT)
            try:
                started.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(started.pid, signal.SIGKILL)
            except ProcessLookupError:  # the whole group has exited
                pass
            started.wait()


def call(method: str, url: str, body: Optional[Dict[str, Any]] = None, token: str = "") -> Any:
    """One JSON request with a timeout; returns the decoded answer."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
        return json.loads(response.read() or b"null")


def say(base_url: str, sender: str, text: str) -> float:
    """Sends one message to the REST channel; returns the seconds until the bot's answer arrived."""
    request = urllib.request.Request(
        f"{base_url}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {CHANNEL_TOKEN}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
        response.read()
    return time.perf_counter() - started


def load(base_url: str, tag: str, concurrency: int, conversations: int) -> LatencySummary:
    """`concurrency` workers each run `conversations` scripted conversations back to back."""

    def worker(index: int) -> List[float]:
        return [
            say(base_url, f"{tag}-c{concurrency}-w{index}-{number}", text)
            for number in range(conversations)
            for text in SCRIPT
        ]

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [latency for batch in pool.map(worker, range(concurrency)) for latency in batch]
    return latency_summary(latencies, time.perf_counter() - started)


def train_vanilla(config: Path, workdir: Path, env: Dict[str, str]) -> Path:
    """Trains the vanilla config on the project's domain and data (`rasa train`); returns the model."""
    subprocess.run(
        [
            RASA,
            "train",
            "--config",
            str(config),
            "--domain",
            "domain.yml",
            "--data",
            "data",
            "--out",
            str(workdir),
            "--fixed-model-name",
            "vanilla",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
    )
    return workdir / "vanilla.tar.gz"


def environment(workdir: Path) -> Dict[str, str]:
    """Scratch stores under `workdir`, an action server on a free port, no training cache."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        BACKLINE_BUSINESS_DB_URL=f"sqlite:///{workdir / 'business.db'}",
        BACKLINE_CONSULT_DB_URL=f"sqlite:///{workdir / 'consultations.db'}",
        BACKLINE_ACTIONS_PORT=str(free_port()),
        RASA_MAX_CACHE_SIZE="0",  # train cold, and leave the shared .rasa/cache alone
        # no channel that would reach outside loopback: customers on REST and the outbox only,
        # experts on the dashboard only
        BACKLINE_CUSTOMER_TELEGRAM_TOKEN="",
        BACKLINE_CUSTOMER_SLACK_TOKEN="",
        BACKLINE_SLACK_BOT_TOKEN="",
        BACKLINE_TELEGRAM_BOT_TOKEN="",
        BACKLINE_SMTP_HOST="",
        # the credentials of a run of its own (the REST/outbox channels, the action server, the chat)
        BACKLINE_CHANNEL_TOKEN=CHANNEL_TOKEN,
        BACKLINE_ACTION_TOKEN=secrets.token_urlsafe(24),
        BACKLINE_CHAT_SECRET=secrets.token_urlsafe(24),
        BACKLINE_DEMO="1",
    )
    env["BACKLINE_ACTION_ENDPOINT"] = f"http://127.0.0.1:{env['BACKLINE_ACTIONS_PORT']}/webhook"
    return env


def measure(
    models: Dict[str, Path],
    workdir: Path,
    env: Dict[str, str],
    log: Callable[[str], None] = print,
    levels: Dict[int, int] = LEVELS,
) -> Dict[str, Dict[int, LatencySummary]]:
    """For each named model: its Rasa server (with the shared action server), warmed up with one
    conversation, then each load level; returns {model name: {concurrency: summary}}."""
    actions_port = env["BACKLINE_ACTIONS_PORT"]
    credentials = workdir / "credentials.yml"
    credentials.write_text(enabled_credentials((PROJECT_ROOT / "credentials.yml").read_text(), env))
    results: Dict[str, Dict[int, LatencySummary]] = {}
    with process(
        [sys.executable, "-m", "backline", "actions", "--actions", "actions", "--port", actions_port],
        env,
        workdir / "actions.log",
        f"http://127.0.0.1:{actions_port}/health",
    ):
        for name, model in models.items():
            port = str(free_port())
            server_env = {**env, "BACKLINE_TRACKER_DB": str(workdir / f"tracker-{name}.db")}
            Path(server_env["BACKLINE_TRACKER_DB"]).unlink(missing_ok=True)
            log(f"  starting the {name} Rasa server on port {port}")
            with process(
                [
                    RASA,
                    "run",
                    "--model",
                    str(model),
                    "-i",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--endpoints",
                    "endpoints.yml",
                    "--credentials",
                    str(credentials),
                ],
                server_env,
                workdir / f"rasa-{name}.log",
                f"http://127.0.0.1:{port}/",
            ):
                base_url = f"http://127.0.0.1:{port}"
                load(base_url, f"{name}-warmup", 1, 1)
                results[name] = {}
                for concurrency, conversations in levels.items():
                    log(
                        f"  {name}: {concurrency} concurrent conversation(s), "
                        f"{concurrency * conversations * len(SCRIPT)} messages"
                    )
                    results[name][concurrency] = load(base_url, name, concurrency, conversations)
                    log(f"    {results[name][concurrency]}")
    return results


def measure_hub_reply(
    model: Path,
    workdir: Path,
    env: Dict[str, str],
    consultations: int = CONSULTATIONS,
    log: Callable[[str], None] = print,
) -> Dict[str, LatencySummary]:
    """`python -m backline run` (actions, Rasa, hub) on free ports with scratch stores and no expert
    channel. Per consultation, one after the other: a customer on the outbox channel asks for a
    refund over the limit (a handoff to billing); the operator answers with POST
    /api/consultations/{id}/reply while the customer polls the outbox every POLL seconds. Returns
    the times from sending the reply until the answer is in the customer's outbox ("visible") and
    until the hub's response ("hub response"); the hub's response must carry the answer too."""
    ports = {name: str(free_port()) for name in ("rasa", "actions", "hub")}
    run_env = {
        **env,
        "BACKLINE_RASA_PORT": ports["rasa"],
        "BACKLINE_ACTIONS_PORT": ports["actions"],
        "BACKLINE_HUB_PORT": ports["hub"],
        "BACKLINE_HUB_URL": f"http://127.0.0.1:{ports['hub']}",
        "BACKLINE_ACTION_ENDPOINT": f"http://127.0.0.1:{ports['actions']}/webhook",
        "BACKLINE_TRACKER_DB": str(workdir / "tracker-hub.db"),
        "BACKLINE_CONSULT_DB_URL": f"sqlite:///{workdir / 'consultations-hub.db'}",
        "BACKLINE_RASA_TOKEN": "bench-rasa-token",
        "BACKLINE_OPERATOR_TOKEN": "bench-operator-token",
        "BACKLINE_SLA_INTERVAL": "0",
    }
    for path in (workdir / "tracker-hub.db", workdir / "consultations-hub.db"):
        path.unlink(missing_ok=True)
    rasa_url, hub_url = f"http://127.0.0.1:{ports['rasa']}", run_env["BACKLINE_HUB_URL"]
    token = run_env["BACKLINE_OPERATOR_TOKEN"]
    visible: List[float] = []
    responded: List[float] = []
    log(f"  starting `backline run` (hub on port {ports['hub']}); {consultations} consultations")
    with (
        process(
            [sys.executable, "-m", "backline", "run", "--model", str(model)],
            run_env,
            workdir / "backline-run.log",
            f"{hub_url}/health",
        ),
        ThreadPoolExecutor(1) as pool,
    ):
        for number in range(consultations):
            sender = f"hub-reply-{number}"
            call(
                "POST", f"{rasa_url}/webhooks/outbox/webhook", {"sender": sender, "message": ESCALATING}, CHANNEL_TOKEN
            )
            cases = call("GET", f"{hub_url}/api/consultations?conversation_id={sender}", token=token)
            if not cases:
                raise RuntimeError(f"{ESCALATING!r} opened no consultation for {sender}")
            started = time.perf_counter()
            reply = pool.submit(
                call,
                "POST",
                f"{hub_url}/api/consultations/{cases[-1]['id']}/reply",
                {"action": "answer", "text": EXPERT_ANSWER},
                token,
            )
            visible.append(_until_in_outbox(rasa_url, sender, started))
            answer = reply.result(timeout=REQUEST_TIMEOUT)
            responded.append(time.perf_counter() - started)
            if not any(EXPERT_ANSWER in (m.get("text") or "") for m in answer["customer_messages"]):
                raise RuntimeError(f"the hub's response lacks the answer for {sender}: {answer['customer_messages']}")
    return {
        "visible": latency_summary(visible, sum(visible)),
        "hub response": latency_summary(responded, sum(responded)),
    }


def _until_in_outbox(rasa_url: str, sender: str, started: float) -> float:
    """Polls the customer's outbox until the expert's answer is there; the seconds since `started`."""
    while time.perf_counter() - started < REQUEST_TIMEOUT:
        pushed = call("GET", f"{rasa_url}/webhooks/outbox/messages?sender={sender}", token=CHANNEL_TOKEN)
        if any(EXPERT_ANSWER in (m.get("text") or "") for m in pushed):
            return time.perf_counter() - started
        time.sleep(POLL)
    raise RuntimeError(f"the expert's answer did not reach {sender}'s outbox in {REQUEST_TIMEOUT:.0f} s")
