"""`backline run` (backline/launcher.py) as a real process, with fake `rasa` and `python -m backline hub`
programs (tests/test_supervisor.py's FAKE_CHILD) in place of the virtualenv's: the commands it runs, the
start order, the banner, stopping on SIGTERM and SIGINT, the exit status of a failed start and --shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List

import pytest

from backline import launcher
from tests.servers import free_port
from tests.test_supervisor import FAKE_CHILD, alive, ours, records, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "launcher-test-token"
RUN_WITH_FAKE_BIN = (
    "import sys; from pathlib import Path; from backline import launcher; "
    "launcher.BIN = Path(sys.argv[1]); sys.exit(launcher.main(sys.argv[2:]))"
)


class Launched:
    """`python -m backline run` with the programs of ``bin`` instead of the virtualenv's."""

    def __init__(self, tmp_path: Path, args: List[str], **env: str) -> None:
        self.state = tmp_path / "state"
        self.state.mkdir()
        folder = tmp_path / "bin"
        folder.mkdir()
        for program in ("rasa", "python"):
            (folder / program).write_text(f"#!{sys.executable}\n{FAKE_CHILD}")
            (folder / program).chmod(0o755)
        self.ports = {name: str(free_port()) for name in ("actions", "rasa", "hub")}
        self.stdout_path, self.stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        full_env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "FAKE_STATE": str(self.state),
            "BACKLINE_ACTIONS_PORT": self.ports["actions"],
            "BACKLINE_RASA_PORT": self.ports["rasa"],
            "BACKLINE_HUB_PORT": self.ports["hub"],
            "BACKLINE_RASA_TOKEN": TOKEN,
            "BACKLINE_CUSTOMER_TELEGRAM_TOKEN": "",
            "BACKLINE_CUSTOMER_SLACK_TOKEN": "",
            **env,
        }
        full_env.pop("FAKE_NAME", None)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", RUN_WITH_FAKE_BIN, str(folder), *args],
                cwd=tmp_path,
                env=full_env,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def messages(self) -> List[str]:
        """The supervisor's lines without their timestamp."""
        return [line.split(" backline run: ", 1)[1] for line in self.stderr.splitlines() if " backline run: " in line]

    def records(self, name: str) -> List[Dict]:
        return records(self.state, name)

    def pids(self) -> List[int]:
        found = []
        for name in ("actions", "rasa", "hub", "shell"):
            for entry in self.records(name):
                found += [entry["pid"], *([entry["grandchild"]] if entry["grandchild"] else [])]
        return found

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"backline run did not exit:\n{self.stderr}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.pids():
            if ours(pid, self.state.parent):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launch(tmp_path: Path):
    started: List[Launched] = []

    def start(args: List[str], **env: str) -> Launched:
        started.append(Launched(tmp_path, args, **env))
        return started[-1]

    yield start
    for each in started:
        each.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_starts_actions_rasa_hub_in_order_and_a_stop_signal_stops_them_all_with_0(launch, signum: int) -> None:
    run = launch(["--model", "models/test.tar.gz"])
    wait_for(
        lambda: "Backline is running" in run.stdout or run.process.poll() is not None, timeout=20, what="the banner"
    )
    assert run.process.poll() is None, run.stderr
    actions, rasa, hub = run.records("actions"), run.records("rasa"), run.records("hub")
    assert (len(actions), len(rasa), len(hub)) == (1, 1, 1)
    assert actions[0]["time"] < rasa[0]["time"] < hub[0]["time"]
    ports = run.ports
    assert actions[0]["argv"] == [
        "-m",
        "backline",
        "actions",
        "--actions",
        "actions",
        "--host",
        "127.0.0.1",
        "--port",
        ports["actions"],
    ]
    credentials = rasa[0]["argv"][-1]
    assert rasa[0]["argv"] == [
        "run",
        "--model",
        "models/test.tar.gz",
        "-i",
        "127.0.0.1",
        "--port",
        ports["rasa"],
        "--enable-api",
        "--auth-token",
        TOKEN,
        "--endpoints",
        "endpoints.yml",
        "--credentials",
        credentials,
    ]
    assert "backline.rasa.channels.socketio.SocketIOInput:" in rasa[0]["credentials"]
    assert "TelegramInput" not in rasa[0]["credentials"]  # its token is empty
    assert hub[0]["argv"] == ["-m", "backline", "hub", "--port", ports["hub"]]
    assert [entry[0]["cwd"] for entry in (actions, rasa, hub)] == [str(PROJECT_ROOT)] * 3
    assert [entry[0]["token"] for entry in (actions, rasa, hub)] == [TOKEN] * 3
    assert [entry[0]["telemetry"] for entry in (actions, rasa, hub)] == ["false"] * 3
    assert f"Rasa server   http://localhost:{ports['rasa']}" in run.stdout
    pids = run.pids()
    assert len(pids) == 6 and all(alive(pid) for pid in pids)

    run.process.send_signal(signum)
    assert run.wait_exit() == 0
    assert [pid for pid in pids if alive(pid)] == []
    assert not Path(credentials).exists()
    assert f"{signal.Signals(signum).name}: stopping hub, rasa, actions" in run.messages()
    assert TOKEN not in run.stderr and TOKEN not in run.stdout  # neither the supervisor nor the banner prints it
    assert "token=$BACKLINE_RASA_TOKEN" in run.stdout
    assert "demo operators: password kestrel-demo (BACKLINE_DEMO=1)" in run.stdout
    assert (
        "Authorization: Bearer $(cat var/channel_token)" in run.stdout
        or "Authorization: Bearer $BACKLINE_CHANNEL_TOKEN" in run.stdout
    )


def test_run_exits_1_and_says_why_when_a_process_fails_to_start(launch) -> None:
    run = launch([], FAKE_RASA_EXIT_AFTER="0", FAKE_RASA_EXIT_CODE="1")
    assert run.wait_exit() == 1
    assert "rasa exited with code 1 during start-up" in run.messages()
    assert "Backline is running" not in run.stdout
    assert len(run.records("actions")) == 1 and len(run.records("rasa")) == 1
    assert run.records("hub") == []
    assert [pid for pid in run.pids() if alive(pid)] == []


def test_shell_starts_the_action_server_then_rasa_shell_and_exits_with_its_status(launch) -> None:
    run = launch(["--shell", "--debug", "--model", "models/test.tar.gz"], FAKE_SHELL_CODE="5")
    assert run.wait_exit() == 5
    actions, shell = run.records("actions"), run.records("shell")
    assert (len(actions), len(shell)) == (1, 1)
    assert actions[0]["time"] < shell[0]["time"]
    assert shell[0]["argv"] == ["shell", "--model", "models/test.tar.gz", "--endpoints", "endpoints.yml", "--debug"]
    assert run.records("rasa") == [] and run.records("hub") == []
    assert [pid for pid in run.pids() if alive(pid)] == []


def test_each_process_spec_becomes_a_child_with_the_environment_expanded() -> None:
    env = {
        "BACKLINE_ACTIONS_PORT": "6055",
        "BACKLINE_RASA_PORT": "6005",
        "BACKLINE_HUB_PORT": "6006",
        "BACKLINE_RASA_TOKEN": "tok",
        "BACKLINE_CREDENTIALS": "/tmp/channels.yml",
        "BACKLINE_RASA_HOST": "127.0.0.1",
        "BACKLINE_ACTIONS_HOST": "127.0.0.1",
        "BACKLINE_CHAT_ORIGIN": "http://localhost:6006",
    }
    children = [launcher.child(spec, env) for spec in launcher.process_specs("m.tar.gz", debug=True)]
    assert [child.name for child in children] == ["actions", "rasa", "hub"]
    assert [child.argv for child in children] == [
        [
            str(launcher.BIN / "python"),
            "-m",
            "backline",
            "actions",
            "--actions",
            "actions",
            "--host",
            "127.0.0.1",
            "--port",
            "6055",
        ],
        [
            str(launcher.BIN / "rasa"),
            "run",
            "--model",
            "m.tar.gz",
            "-i",
            "127.0.0.1",
            "--port",
            "6005",
            "--enable-api",
            "--auth-token",
            "tok",
            "--endpoints",
            "endpoints.yml",
            "--credentials",
            "/tmp/channels.yml",
            "--debug",
        ],
        [str(launcher.BIN / "python"), "-m", "backline", "hub", "--port", "6006"],
    ]
    assert [child.health_url for child in children] == [
        "http://localhost:6055/health",
        "http://localhost:6005/status?token=tok",
        "http://localhost:6006/health",
    ]
    assert [child.start_timeout for child in children] == [120, 300, 60]
    assert {child.cwd for child in children} == {str(launcher.PROJECT_ROOT)}
    with pytest.raises(KeyError):
        launcher.child(launcher.process_specs()[0], {})


def test_prepare_rasa_refuses_without_a_token_and_writes_the_channels_the_environment_enables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "credentials.yml"
    monkeypatch.setenv("BACKLINE_RASA_TOKEN", "")
    monkeypatch.setenv("BACKLINE_CUSTOMER_TELEGRAM_TOKEN", "")
    monkeypatch.setenv("BACKLINE_CUSTOMER_SLACK_TOKEN", "")
    assert launcher.main(["--prepare-rasa", str(target)]) == 1
    assert "BACKLINE_RASA_TOKEN is not set" in capsys.readouterr().err
    assert not target.exists()

    monkeypatch.setenv("BACKLINE_RASA_TOKEN", "tok")
    assert launcher.main(["--prepare-rasa", str(target)]) == 0
    channels = [
        line for line in target.read_text().splitlines() if line and not line[0].isspace() and not line.startswith("#")
    ]
    assert "backline.rasa.channels.socketio.SocketIOInput:" in channels
    assert "backline.rasa.channels.rest.OutboxInput:" in channels
    assert [line for line in channels if "Telegram" in line or "Slack" in line] == []  # their tokens are empty


def test_wait_healthy_returns_0_once_the_process_answers_and_1_past_its_start_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("BACKLINE_HUB_PORT", str(server.server_address[1]))
        assert launcher.main(["--wait-healthy", "hub"]) == 0
    finally:
        server.shutdown()
        server.server_close()

    port = free_port()
    monkeypatch.setenv("BACKLINE_RASA_PORT", str(port))
    monkeypatch.setenv("BACKLINE_RASA_TOKEN", "s3cret")
    specs = [replace(spec, start_timeout=0.5) for spec in launcher.process_specs()]
    monkeypatch.setattr(launcher, "process_specs", lambda *args, **kwargs: specs)
    assert launcher.main(["--wait-healthy", "rasa"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"backline run: rasa did not answer http://localhost:{port}/status?… within 0.5 s (Connection refused)\n"
    )
