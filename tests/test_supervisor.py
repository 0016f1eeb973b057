"""The process supervisor behind `backline run` (backline/supervisor.py), with real processes: tiny
fake children (an HTTP health endpoint and one grandchild each) instead of Rasa, which takes minutes.

A driver script runs a `Supervisor` with short timings; the tests signal it, kill its children or
make them unhealthy, and read what happened from the children's records, /proc and its stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from backline.supervisor import Policy, RestartBudget, describe_exit, redacted
from tests.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# A stand-in for a Backline process. Its name comes from FAKE_NAME, else from its arguments as
# the launcher passes them (`rasa run actions`, `rasa run`, `rasa shell`, `python -m backline hub`).
# It starts a grandchild, appends a record (pid, grandchild, argv, ...) to $FAKE_STATE/<name>.jsonl,
# then serves GET on --port (else $FAKE_PORT): /status wants ?token=<--auth-token>, any other path
# answers 200, and every path answers 500 once $FAKE_STATE/unhealthy-<pid> exists.
# FAKE_<NAME>_EXIT_AFTER=<s>: exit with FAKE_<NAME>_EXIT_CODE (default 3) after s seconds of serving
# (0: before serving). FAKE_STUBBORN=1: the grandchild ignores SIGTERM. `shell` records, exits
# with FAKE_SHELL_CODE.
FAKE_CHILD = r"""
import http.server, json, os, signal, subprocess, sys, threading, time, urllib.parse
from pathlib import Path

argv = sys.argv[1:]
state = Path(os.environ["FAKE_STATE"])


def option(flag, default=None):
    return argv[argv.index(flag) + 1] if flag in argv else default


if os.environ.get("FAKE_NAME"):
    name = os.environ["FAKE_NAME"]
elif argv[:2] == ["run", "actions"] or argv[:3] == ["-m", "backline", "actions"]:
    name = "actions"
elif argv[:1] == ["run"]:
    name = "rasa"
elif argv[:1] == ["shell"]:
    name = "shell"
elif argv[:3] == ["-m", "backline", "hub"]:
    name = "hub"
else:
    name = "unknown"


def record(**fields):
    credentials = os.environ.get("BACKLINE_CREDENTIALS")
    fields.update(
        name=name, pid=os.getpid(), argv=argv, cwd=os.getcwd(), time=time.time(),
        token=os.environ.get("BACKLINE_RASA_TOKEN"), telemetry=os.environ.get("RASA_TELEMETRY_ENABLED"),
        credentials=Path(credentials).read_text() if credentials and Path(credentials).exists() else None,
    )
    with open(state / f"{name}.jsonl", "a") as out:
        out.write(json.dumps(fields) + "\n")


if name == "shell":
    record(grandchild=None)
    sys.exit(int(os.environ.get("FAKE_SHELL_CODE", "0")))

stubborn = os.environ.get("FAKE_STUBBORN") == "1"
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"],
    preexec_fn=(lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)) if stubborn else None,
)
record(grandchild=grandchild.pid)

exit_after = os.environ.get(f"FAKE_{name.upper()}_EXIT_AFTER")
exit_code = int(os.environ.get(f"FAKE_{name.upper()}_EXIT_CODE", "3"))
if exit_after is not None and float(exit_after) == 0:
    os._exit(exit_code)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if (state / f"unhealthy-{os.getpid()}").exists():
            status = 500
        elif url.path == "/status":
            given = urllib.parse.parse_qs(url.query).get("token", [None])[0]
            status = 200 if given == option("--auth-token") else 401
        else:
            status = 200
        body = json.dumps({"name": name, "pid": os.getpid()}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(option("--port", os.environ.get("FAKE_PORT")))), Health)
if exit_after is not None:
    threading.Timer(float(exit_after), lambda: os._exit(exit_code)).start()
server.serve_forever()
"""

DRIVER = r"""
import json, logging, sys
from backline.supervisor import Child, Policy, Supervisor

config = json.loads(open(sys.argv[1]).read())
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
supervisor = Supervisor([Child(**child) for child in config["children"]], Policy(**config["policy"]))
sys.exit(supervisor.run(on_ready=lambda: print("READY", flush=True)))
"""

FAST = dict(
    backoff_initial=0.2,
    backoff_max=1.0,
    stable_after=60.0,
    crash_budget=5,
    crash_window=300.0,
    health_interval=0.2,
    health_failures=3,
    health_timeout=1.0,
    start_poll=0.05,
    stop_grace=2.0,
    tick=0.05,
)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ours(pid: int, tmp_path: Path) -> bool:
    """Whether ``pid`` still runs one of this test's fakes (and not a process that reused the pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return alive(pid) and (str(tmp_path) in cmdline or "time.sleep(600)" in cmdline)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def records(state: Path, name: str) -> List[Dict]:
    path = state / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Run:
    """A driver process running a Supervisor over fake children."""

    def __init__(self, tmp_path: Path, children: List[Dict], **policy: float) -> None:
        self.tmp = tmp_path
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=True)
        fake = tmp_path / "fake_child.py"
        fake.write_text(FAKE_CHILD)
        (tmp_path / "driver.py").write_text(DRIVER)
        config = {
            "children": [
                {
                    "name": child["name"],
                    "argv": child.get("argv", [sys.executable, str(fake)]),
                    "env": {
                        **os.environ,
                        "FAKE_NAME": child["name"],
                        "FAKE_STATE": str(self.state),
                        "FAKE_PORT": str(child["port"]),
                        **child.get("env", {}),
                    },
                    "health_url": child.get("health_url", f"http://127.0.0.1:{child['port']}/health"),
                    "start_timeout": child.get("start_timeout", 10.0),
                }
                for child in children
            ],
            "policy": {**FAST, **policy},
        }
        (tmp_path / "config.json").write_text(json.dumps(config))
        self.stdout_path, self.stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "config.json")],
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                stdout=out,
                stderr=err,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def lines(self) -> List[str]:
        return self.stderr.splitlines()

    def wait_ready(self) -> None:
        wait_for(
            lambda: "READY" in self.stdout_path.read_text() or self.process.poll() is not None,
            what="the supervisor's READY",
        )
        assert self.process.poll() is None, self.stderr

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the supervisor did not exit:\n{self.stderr}")

    def records(self, name: str) -> List[Dict]:
        return records(self.state, name)

    def all_pids(self) -> List[int]:
        found = []
        for path in self.state.glob("*.jsonl"):
            for entry in records(self.state, path.stem):
                found += [entry["pid"], *([entry["grandchild"]] if entry["grandchild"] else [])]
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.all_pids():  # never leave a fake behind, whatever a test asserted
            if ours(pid, self.tmp):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run(tmp_path: Path):
    started: List[Run] = []

    def start(children: List[Dict], **policy: float) -> Run:
        started.append(Run(tmp_path, children, **policy))
        return started[-1]

    yield start
    for each in started:
        each.close()


# -- restart bookkeeping, no processes -------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_the_budget_runs_out_within_the_window() -> None:
    budget = RestartBudget(Policy(backoff_initial=1, backoff_max=30, crash_budget=9, crash_window=300))
    delays = [budget.crashed(now=float(second), uptime=0.5) for second in range(9)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, None]
    assert len(budget.crashes) == 9


def test_a_child_up_for_a_while_starts_its_backoff_again_and_old_crashes_expire() -> None:
    budget = RestartBudget(Policy(backoff_initial=1, backoff_max=30, stable_after=60, crash_budget=5, crash_window=300))
    assert [budget.crashed(now=float(t), uptime=1) for t in (0, 2)] == [1, 2]
    assert budget.crashed(now=100.0, uptime=61) == 1  # it had been up 61 s: backoff from the start
    assert budget.crashed(now=101.0, uptime=1) == 2
    assert budget.crashed(now=500.0, uptime=1) == 4  # the four crashes before are older than 300 s
    assert list(budget.crashes) == [500.0]
    assert budget.crashed(now=501.0, uptime=1) == 8
    assert len(budget.crashes) == 2


def test_logs_name_the_exit_and_never_the_health_query() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "exited with code -9 (SIGKILL)"
    assert describe_exit(-15) == "exited with code -15 (SIGTERM)"
    assert redacted("http://localhost:5005/status?token=s3cret") == "http://localhost:5005/status?…"
    assert redacted("http://localhost:5055/health") == "http://localhost:5055/health"


# -- real processes --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_child_and_grandchild_and_exits_0(run, signum: int) -> None:
    supervised = run([{"name": "first", "port": free_port()}, {"name": "second", "port": free_port()}])
    supervised.wait_ready()
    first, second = supervised.records("first"), supervised.records("second")
    assert len(first) == 1 and len(second) == 1
    assert first[0]["time"] < second[0]["time"]  # started in order
    pids = supervised.all_pids()
    assert len(pids) == 4 and all(alive(pid) for pid in pids)

    supervised.process.send_signal(signum)
    assert supervised.wait_exit() == 0
    assert [pid for pid in pids if alive(pid)] == []
    assert f"{signal.Signals(signum).name}: stopping second, first" in supervised.lines()


def test_a_grandchild_ignoring_sigterm_is_killed_after_the_grace_period(run) -> None:
    supervised = run([{"name": "worker", "port": free_port(), "env": {"FAKE_STUBBORN": "1"}}], stop_grace=1.0)
    supervised.wait_ready()
    grandchild = supervised.records("worker")[0]["grandchild"]
    started = time.monotonic()
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.wait_exit() == 0
    assert time.monotonic() - started >= 1.0
    assert not alive(grandchild)
    assert "worker did not stop within 1 s; killing it" in supervised.lines()


def test_a_killed_child_is_restarted_with_a_new_pid_and_the_crash_is_logged(run) -> None:
    supervised = run([{"name": "worker", "port": free_port()}, {"name": "steady", "port": free_port()}])
    supervised.wait_ready()
    old = supervised.records("worker")[0]
    os.kill(old["pid"], signal.SIGKILL)

    wait_for(lambda: len(supervised.records("worker")) == 2, what="the restart")
    new = supervised.records("worker")[1]
    assert new["pid"] != old["pid"]
    wait_for(lambda: f"worker is up (pid {new['pid']})" in supervised.lines(), what="the restarted worker up")
    assert alive(new["pid"]) and alive(new["grandchild"])
    assert not alive(old["grandchild"])  # what the killed child left behind went with it
    assert "worker exited with code -9 (SIGKILL); restarting in 0.2 s (crash 1 of 5 within 300 s)" in supervised.lines()
    assert len(supervised.records("steady")) == 1  # the others are left alone

    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.wait_exit() == 0
    assert [pid for pid in supervised.all_pids() if alive(pid)] == []


def test_a_child_that_keeps_crashing_spends_its_budget_and_everything_stops_with_3(run) -> None:
    supervised = run(
        [
            {"name": "steady", "port": free_port()},
            {
                "name": "flaky",
                "port": free_port(),
                "env": {"FAKE_FLAKY_EXIT_AFTER": "0.5", "FAKE_FLAKY_EXIT_CODE": "3"},
            },
        ],
        backoff_initial=0.1,
        crash_budget=3,
    )
    assert supervised.wait_exit() == 3
    lines = supervised.lines()
    assert [line for line in lines if line.startswith("flaky exited")] == [
        "flaky exited with code 3; restarting in 0.1 s (crash 1 of 3 within 300 s)",
        "flaky exited with code 3; restarting in 0.2 s (crash 2 of 3 within 300 s)",
        "flaky exited with code 3: 3 crashes within 300 s, giving up; stopping everything",
    ]
    assert len(supervised.records("flaky")) == 3
    assert len(supervised.records("steady")) == 1
    assert [pid for pid in supervised.all_pids() if alive(pid)] == []


def test_a_child_failing_its_health_check_3_times_in_a_row_is_restarted(run) -> None:
    supervised = run([{"name": "worker", "port": free_port()}])
    supervised.wait_ready()
    old = supervised.records("worker")[0]
    (supervised.state / f"unhealthy-{old['pid']}").touch()  # its /health now answers 500

    wait_for(lambda: len(supervised.records("worker")) == 2, what="the restart")
    new = supervised.records("worker")[1]
    wait_for(lambda: f"worker is up (pid {new['pid']})" in supervised.lines(), what="the restarted worker up")
    lines = supervised.lines()
    failures = [line for line in lines if line.startswith("worker") and "health check" in line]
    assert failures == [
        "worker health check failed (HTTP 500): 1 of 3 before a restart",
        "worker health check failed (HTTP 500): 2 of 3 before a restart",
        "worker failed 3 health checks in a row (HTTP 500); stopping it for a restart",
        "worker failed 3 health checks in a row (HTTP 500); restarting in 0.2 s (crash 1 of 5 within 300 s)",
    ]
    assert new["pid"] != old["pid"]
    assert not alive(old["pid"]) and not alive(old["grandchild"])
    assert alive(new["pid"])

    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.wait_exit() == 0


def test_a_child_exiting_during_start_up_stops_the_ones_started_before_and_exits_1(run) -> None:
    supervised = run(
        [
            {"name": "first", "port": free_port()},
            {
                "name": "second",
                "port": free_port(),
                "env": {"FAKE_SECOND_EXIT_AFTER": "0", "FAKE_SECOND_EXIT_CODE": "2"},
            },
            {"name": "third", "port": free_port()},
        ]
    )
    assert supervised.wait_exit() == 1
    assert "second exited with code 2 during start-up" in supervised.lines()
    assert "READY" not in supervised.stdout_path.read_text()
    assert supervised.records("third") == []
    assert [pid for pid in supervised.all_pids() if alive(pid)] == []


def test_a_child_silent_past_its_start_timeout_is_a_start_up_failure_without_its_token_in_the_log(run) -> None:
    port = free_port()
    supervised = run(
        [
            {
                "name": "silent",
                "port": free_port(),
                "start_timeout": 1.0,
                "health_url": f"http://127.0.0.1:{port}/status?token=s3cret",
            }
        ]
    )
    assert supervised.wait_exit() == 1
    assert f"silent did not answer http://127.0.0.1:{port}/status?… within 1 s of its start" in supervised.lines()
    assert "s3cret" not in supervised.stderr
    assert [pid for pid in supervised.all_pids() if alive(pid)] == []


def test_a_child_that_cannot_be_executed_is_a_start_up_failure(run, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-program"
    supervised = run(
        [{"name": "first", "port": free_port()}, {"name": "ghost", "port": free_port(), "argv": [str(missing)]}]
    )
    assert supervised.wait_exit() == 1
    assert f"ghost could not be started: [Errno 2] No such file or directory: '{missing}'" in supervised.lines()
    assert [pid for pid in supervised.all_pids() if alive(pid)] == []
