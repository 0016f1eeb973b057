"""Throwaway real servers for tests: a PostgreSQL cluster, the whole assistant, free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from backline import services

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: List[str]) -> List[str]:
    """initdb refuses to run as root: drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh PostgreSQL cluster in a temporary folder; yield its SQLAlchemy URL; stop it."""
    pg_bin = services.pg_bin()
    base_dir = Path(tempfile.mkdtemp(prefix="backline-pg-"))
    data_dir, socket_dir = base_dir / "pgdata", base_dir / "pgsock"
    socket_dir.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base_dir, "postgres")
        shutil.chown(socket_dir, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data_dir), "-U", "backline", "-A", "trust", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                options,
                "-w",
                "-l",
                str(base_dir / "postgres.log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"postgresql://backline@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base_dir, ignore_errors=True)


def interrupt(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a server process as Ctrl-C would (SIGINT), killing it if it has not exited in ``timeout`` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True)
class Stack:
    """A running `backline run`: where each part answers and its tokens."""

    rasa_url: str
    hub_url: str
    consult_url: str
    rasa_token: str
    operator_token: str
    channel_token: str = "test-channel-token"
    chat_secret: str = "test-chat-secret"

    @property
    def channel_auth(self) -> Dict[str, str]:
        """The REST/outbox channels' credential, as the integrating backend sends it."""
        return {"Authorization": f"Bearer {self.channel_token}"}


def assistant_env(tmp: Path, business_url: str, **extra: str) -> Tuple[Stack, Dict[str, str]]:
    """Free loopback ports, stores under ``tmp`` and tokens for `running_assistant`; no expert or
    customer channel beyond the defaults unless ``extra`` sets their variables."""
    ports = {name: str(free_port()) for name in ("rasa", "actions", "hub")}
    stack = Stack(
        rasa_url=f"http://127.0.0.1:{ports['rasa']}",
        hub_url=f"http://127.0.0.1:{ports['hub']}",
        consult_url=f"sqlite:///{tmp / 'consultations.db'}",
        rasa_token="test-api-token",
        operator_token="test-operator-token",
    )
    env = {
        "BACKLINE_RASA_PORT": ports["rasa"],
        "BACKLINE_ACTIONS_PORT": ports["actions"],
        "BACKLINE_HUB_PORT": ports["hub"],
        "BACKLINE_HUB_URL": stack.hub_url,
        "BACKLINE_ACTION_ENDPOINT": f"http://127.0.0.1:{ports['actions']}/webhook",
        "BACKLINE_TRACKER_DB": str(tmp / "tracker.db"),
        "BACKLINE_BUSINESS_DB_URL": business_url,
        "BACKLINE_CONSULT_DB_URL": stack.consult_url,
        "BACKLINE_RASA_TOKEN": stack.rasa_token,
        "BACKLINE_OPERATOR_TOKEN": stack.operator_token,
        "BACKLINE_DASHBOARD_SECRET": "test-dashboard-secret",
        "BACKLINE_CHANNEL_TOKEN": stack.channel_token,
        "BACKLINE_CHAT_SECRET": stack.chat_secret,
        "BACKLINE_CHAT_ORIGIN": stack.hub_url,
        "BACKLINE_ACTION_TOKEN": "test-action-token",
        "BACKLINE_DEMO": "1",
        "BACKLINE_SLACK_BOT_TOKEN": "",
        "BACKLINE_TELEGRAM_BOT_TOKEN": "",
        "BACKLINE_SMTP_HOST": "",
        "BACKLINE_SLACK_SIGNING_SECRET": "",
        "BACKLINE_TELEGRAM_WEBHOOK_SECRET": "",
        "BACKLINE_CUSTOMER_TELEGRAM_TOKEN": "",
        "BACKLINE_CUSTOMER_SLACK_TOKEN": "",
        **extra,
    }
    return stack, env


@contextmanager
def running_assistant(model: Path, env: Dict[str, str], log_path: Path) -> Iterator[str]:
    """Start `python -m backline run` (Rasa server, action server, hub); yield the Rasa base URL."""
    port = env["BACKLINE_RASA_PORT"]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backline", "run", "--model", str(model)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"backline run exited:\n{log_path.read_text()[-3000:]}")
                if b"Backline is running" in log_path.read_bytes():
                    break
                time.sleep(1)
            else:
                raise RuntimeError(f"backline run did not start:\n{log_path.read_text()[-3000:]}")
            yield base_url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
