"""`python -m backline.bench scale`: the same conversation load on the embedded profile and on the scale
profile, then on the scale profile with a Rasa server killed (kill -9) in the middle of the run;
writes docs/scale.md.

Each run starts its profile with `backline run` on free loopback ports with stores of its own under
build/bench-scale/ (the scale profile: a local PostgreSQL and Redis there too), sends
``conversations`` × ``turns`` turns through the profile's front door (the Rasa server, or the
balancer) with a scripted operator answering every consultation through the hub's API
(`backline.bench.load`), and measures:

- throughput (answered turns per second of the run) and per-turn latency p50 / p95 / p99, from the
  first send of a turn to its answer (re-sends included);
- CPU seconds of every process of the profile (from /proc: user + system time of each process and
  everything it started), per answered turn and by process kind, so a reader can size a cluster;
- the audit: turns lost, duplicated or out of order in the trackers, operator replies lost or doubled.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import requests

from backline.bench import load, machine
from backline.bench.metrics import percentile
from backline.bench.serving import free_port
from backline.paths import PROJECT_ROOT

WORKDIR = PROJECT_ROOT / "build" / "bench-scale"
MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
RASA_TOKEN = "bench-scale-api-token"
CHANNEL_TOKEN = "bench-scale-channel-token"
OPERATOR_TOKEN = "bench-scale-operator-token"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Launched:
    """A running `backline run`: its front doors and its log (the supervisor names each child's pid)."""

    profile: str
    process: subprocess.Popen
    log: Path
    rasa_url: str
    hub_url: str

    def pids(self) -> Dict[str, int]:
        """Each child's latest pid, by name (rasa, rasa-1, postgres, ...)."""
        text = self.log.read_text(errors="replace")
        return {name: int(pid) for name, pid in re.findall(r"backline run: (\S+) started \(pid (\d+)\)", text)}


def _environment(profile: str, folder: Path) -> Dict[str, str]:
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "BACKLINE_RASA_TOKEN": RASA_TOKEN,
        "BACKLINE_CHANNEL_TOKEN": CHANNEL_TOKEN,
        "BACKLINE_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "BACKLINE_ACTION_TOKEN": "bench-scale-action-token",
        "BACKLINE_CHAT_SECRET": "bench-scale-chat-secret",
        "BACKLINE_DASHBOARD_SECRET": "bench-scale-dashboard-secret",
        "BACKLINE_DEMO": "1",
        "BACKLINE_SLACK_BOT_TOKEN": "",
        "BACKLINE_TELEGRAM_BOT_TOKEN": "",
        "BACKLINE_SMTP_HOST": "",
        "BACKLINE_CUSTOMER_TELEGRAM_TOKEN": "",
        "BACKLINE_CUSTOMER_SLACK_TOKEN": "",
        "BACKLINE_DELIVERY_INTERVAL": "0.5",
        "BACKLINE_ESCALATIONS_PER_ADDRESS": "0",
    }
    for name in ("rasa", "actions", "hub"):
        env[f"BACKLINE_{name.upper()}_PORT"] = str(free_port())
    env["BACKLINE_HUB_URL"] = env["BACKLINE_CHAT_ORIGIN"] = f"http://127.0.0.1:{env['BACKLINE_HUB_PORT']}"
    for variable in (
        "BACKLINE_POSTGRES_URL",
        "BACKLINE_REDIS_URL",
        "BACKLINE_TRACKER_DB_URL",
        "BACKLINE_OUTBOX_DB_URL",
    ):
        env.pop(variable, None)
    if profile == "embedded":
        from backline.business.seed import seed

        business = f"sqlite:///{folder / 'business.db'}"
        seed(business)
        env.update(
            BACKLINE_BUSINESS_DB_URL=business,
            BACKLINE_CONSULT_DB_URL=f"sqlite:///{folder / 'consultations.db'}",
            BACKLINE_TRACKER_DB=str(folder / "tracker.db"),
            BACKLINE_ACTION_ENDPOINT=f"http://127.0.0.1:{env['BACKLINE_ACTIONS_PORT']}/webhook",
        )
    else:
        for variable in ("BACKLINE_BUSINESS_DB_URL", "BACKLINE_CONSULT_DB_URL"):
            env.pop(variable, None)
        env.update(
            BACKLINE_SCALE_DATA=str(folder / "data"),
            BACKLINE_POSTGRES_PORT=str(free_port()),
            BACKLINE_REDIS_PORT=str(free_port()),
            BACKLINE_POSTGRES_PASSWORD="bench-scale-postgres",
            BACKLINE_REDIS_PASSWORD="bench-scale-redis",
            BACKLINE_RASA_PORTS=f"{free_port()},{free_port()}",
            BACKLINE_ACTIONS_PORTS=f"{free_port()},{free_port()}",
            BACKLINE_HUB_PORTS=f"{free_port()},{free_port()}",
        )
    return env


@contextmanager
def launched(profile: str, folder: Path, log: Callable[[str], None]) -> Iterator[Launched]:
    """`backline run --profile <profile>` until the block ends (then SIGTERM, as Ctrl-C would)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = _environment(profile, folder)
    log_path = folder / "backline-run.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backline", "run", "--profile", profile, "--model", str(MODEL)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Launched(
        profile,
        process,
        log_path,
        f"http://127.0.0.1:{env['BACKLINE_RASA_PORT']}",
        f"http://127.0.0.1:{env['BACKLINE_HUB_PORT']}",
    )
    try:
        started = time.monotonic()
        while "Backline is running" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() - started > 600:
                raise RuntimeError(f"the {profile} profile did not start; see {log_path}")
            time.sleep(1)
        log(f"  the {profile} profile is up after {time.monotonic() - started:.0f} s")
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()


def _stat(pid: int) -> Optional[List[str]]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().decode(errors="replace").rsplit(")", 1)[1].split()
    except OSError:
        return None


class CpuMeter(threading.Thread):
    """Samples the CPU time of every process under ``root`` (user + system) every ``interval`` s and
    keeps each one's last value, so a process that dies (or is killed) keeps what it used."""

    def __init__(self, root: int, names: Callable[[], Mapping[str, int]], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.names, self.interval = root, names, interval
        self.first: Dict[int, float] = {}
        self.last: Dict[int, float] = {}
        self.kind: Dict[int, str] = {}
        self._sampled = False  # processes found by the first sample count from there, later ones from 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        parents: Dict[int, int] = {}
        times: Dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat(int(entry))
                if fields is not None:
                    parents[int(entry)] = int(fields[1])
                    times[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
        tops = {pid: re.sub(r"-\d+$", "", name) for name, pid in self.names().items()}
        for pid, cpu in times.items():
            kind, walk = None, pid
            while walk in parents and walk != self.root:
                if walk in tops:
                    kind = tops[walk]
                walk = parents[walk]
            if walk != self.root or pid == self.root:
                continue
            self.first.setdefault(pid, 0.0 if self._sampled else cpu)
            self.last[pid] = cpu
            self.kind[pid] = kind or "supervisor"
        self._sampled = True

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> Dict[str, float]:
        """CPU seconds used since the first sample, by process kind."""
        self._stop_event.set()
        self.join(timeout=10)
        self.sample()
        used: Dict[str, float] = {}
        for pid, cpu in self.last.items():
            used[self.kind[pid]] = used.get(self.kind[pid], 0.0) + cpu - self.first.get(pid, 0.0)
        return used


@dataclass
class RunReport:
    """One measured run."""

    name: str
    profile: str
    conversations: int
    turns: int
    result: load.LoadResult
    audit: load.Audit
    cpu: Dict[str, float]
    operator_failures: int
    notes: List[str] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len(self.result.answered)

    @property
    def per_second(self) -> float:
        return self.answered / self.result.seconds if self.result.seconds else 0.0

    def latency(self, q: float) -> float:
        return percentile(self.result.answered, q) if self.result.answered else float("nan")

    @property
    def cpu_per_turn(self) -> float:
        return sum(self.cpu.values()) / self.answered if self.answered else float("nan")


def _events(running: Launched, sender: str) -> List[Dict[str, Any]]:
    for _ in range(5):
        try:
            answer = requests.get(
                f"{running.rasa_url}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=60
            )
            if answer.status_code == 200:
                return list(answer.json().get("events") or [])
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"could not read the tracker of {sender}")


def measure(
    name: str,
    running: Launched,
    conversations: Sequence[load.Conversation],
    log: Callable[[str], None],
    kill: Optional[str] = None,
) -> RunReport:
    """One run of ``conversations`` against ``running``; with ``kill`` (a child's name), that child gets
    SIGKILL once half of the turns are answered."""
    prefix = conversations[0].sender.rsplit("-", 1)[0]
    operator = load.Operator(running.hub_url, OPERATOR_TOKEN, prefix)
    meter = CpuMeter(running.process.pid, running.pids)
    total = sum(len(c.turns) for c in conversations)
    notes: List[str] = []
    killed = threading.Event()

    def progress(done: int) -> None:
        if done % max(1, total // 10) == 0:
            log(f"    {name}: {done}/{total} turns")
        if kill and done >= total // 2 and not killed.is_set():
            killed.set()
            pid = running.pids()[kill]
            os.kill(pid, signal.SIGKILL)
            notes.append(
                f"{kill} (pid {pid}) killed with SIGKILL after {done} of {total} turns; the supervisor restarted it "
                "(its CPU in this run includes loading the model again)"
            )
            log(f"    {name}: killed {kill} (pid {pid}) after {done} turns")

    meter.sample()
    meter.start()
    operator.start()
    result = load.run_load(running.rasa_url, CHANNEL_TOKEN, conversations, on_progress=progress)
    cpu = meter.stop()
    deadline = time.monotonic() + 180  # the operator answers the last cases; their replies are delivered
    while True:
        time.sleep(2)
        audit = load.Audit()
        load.audit_replies(dict(operator.answered), functools.partial(_events, running), audit)
        if (not audit.replies_lost and not operator.waiting) or time.monotonic() > deadline:
            break
    operator.stop()
    for conversation in conversations:
        load.audit_conversation(
            [m for m, _ in conversation.turns], _events(running, conversation.sender), audit, conversation.sender
        )
    log(
        f"    {name}: {len(result.answered)}/{total} answered in {result.seconds:.0f} s; lost {audit.lost}, "
        f"duplicated {audit.duplicated}, out of order {audit.out_of_order}; replies lost {audit.replies_lost}, "
        f"doubled {audit.replies_doubled}"
    )
    return RunReport(name, running.profile, len(conversations), total, result, audit, cpu, operator.failures, notes)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def render(runs: Sequence[RunReport], command: str, conversations: int, turns: int, share: float) -> str:
    """docs/scale.md."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Scale: the embedded profile against the scale profile, under load and under the loss of a Rasa server",
        "",
        f"Generated by `{command}` on {now}; do not edit by hand. Machine: {machine.describe()}.",
        "",
        f"Load: {conversations} conversations at once × {turns} turns each, on the REST channel, each turn with its "
        f"own `message_id` and re-sent with it until answered (a connection error, a 5xx or no answer). "
        f"Routine questions and order look-ups; {share:.0%} of the conversations ask for a person at turn "
        f"{load.HANDOFF_TURN}, and a scripted operator answers every consultation once through the hub's API. "
        "Latency is per turn, from its first send to its answer. CPU is the user + system time of every process "
        "of the profile during the run (/proc), divided by the answered turns.",
        "",
        "| run | profile | answered | re-sent | throughput | p50 | p95 | p99 | CPU per turn |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.profile} | {run.answered}/{run.turns} | {run.result.resent} | "
            f"{run.per_second:.1f} turns/s | {_ms(run.latency(50))} | {_ms(run.latency(95))} | "
            f"{_ms(run.latency(99))} | {run.cpu_per_turn * 1000:,.0f} ms |"
        )
    lines += [
        "",
        "## Nothing lost, doubled or reordered",
        "",
        "Per conversation, the `message_id`s sent against the user events in the tracker; the operator's replies "
        "against the customer's conversation.",
        "",
        "| run | conversations | turns lost | duplicated | conversations out of order | operator replies | "
        "replies lost | replies doubled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        audit = run.audit
        lines.append(
            f"| {run.name} | {audit.conversations} | {audit.lost} | {audit.duplicated} | {audit.out_of_order} | "
            f"{audit.replies_sent} | {audit.replies_lost} | {audit.replies_doubled} |"
        )
    lines += ["", "Why sends failed (each failed send was re-sent with its `message_id`):", ""]
    for run in runs:
        reasons = ", ".join(f"{reason} ×{count}" for reason, count in run.result.failure_reasons.items()) or "none"
        lines.append(f"- {run.name}: {reasons}")
    problems = [f"- {run.name}: {p}" for run in runs for p in run.audit.problems[:10]]
    if problems:
        lines += ["", "Problems found:", "", *problems]
    lines += ["", "## CPU by process kind (seconds during the run)", ""]
    kinds = sorted({kind for run in runs for kind in run.cpu})
    lines += ["| run | " + " | ".join(kinds) + " | total |", "|---|" + "---|" * (len(kinds) + 1)]
    for run in runs:
        cells = " | ".join(f"{run.cpu.get(kind, 0.0):.0f}" for kind in kinds)
        lines.append(f"| {run.name} | {cells} | {sum(run.cpu.values()):.0f} |")
    notes = [f"- {run.name}: {note}" for run in runs for note in run.notes]
    if notes:
        lines += ["", "## Events", "", *notes]
    lines += ["", "## Reading it", "", *reading(runs), ""]
    return "\n".join(lines)


def reading(runs: Sequence[RunReport]) -> List[str]:
    """What the figures say, computed from them (never hand-written numbers)."""
    by_name = {run.name: run for run in runs}
    embedded, scale = by_name.get("embedded"), by_name.get("scale")
    cores = os.cpu_count() or 1
    said = []
    if embedded and scale:
        ratio = scale.per_second / embedded.per_second if embedded.per_second else float("nan")
        said.append(
            f"- Throughput: the scale profile answered {scale.per_second:.1f} turns/s against {embedded.per_second:.1f} "
            f"for the embedded one ({ratio:.2f}×) on this {cores}-core machine."
        )
        for run in (embedded, scale):
            said.append(
                f"- {run.name}: {run.cpu_per_turn * 1000:,.0f} ms of CPU per turn × {run.per_second:.1f} turns/s = "
                f"{run.cpu_per_turn * run.per_second:.2f} of {cores} cores busy."
            )
        extra = scale.cpu_per_turn / embedded.cpu_per_turn - 1 if embedded.cpu_per_turn else 0.0
        cost = (
            f"costs {extra:.0%} more CPU per turn (PostgreSQL, Redis, the balancer, the tracker read for `message_id`)"
            if extra > 0.05
            else f"costs about the same CPU per turn ({extra:+.0%})"
        )
        said.append(
            "- Why: a Rasa server is one Python process and runs its turns on one core; the embedded profile "
            f"cannot use the second core for them, the scale profile's two servers can. The scale profile {cost} "
            "and runs into the machine's cores: more Rasa servers than cores add no throughput here."
        )
        if scale.cpu_per_turn:
            said.append(
                f"- Sizing: at {scale.cpu_per_turn * 1000:,.0f} ms of CPU per turn, one core serves about "
                f"{1 / scale.cpu_per_turn:.0f} turns/s; plan one Rasa server per core, and cores for "
                f"(turns per second at the peak) × {scale.cpu_per_turn:.3f}."
            )
    for run in runs:
        verdict = "nothing lost, duplicated or out of order" if run.audit.clean else "problems: see above"
        said.append(f"- {run.name}: {verdict}; {run.result.unanswered} turns never answered.")
    return said


def main(
    conversations: int, turns: int, handoff_share: float, output: Path, command: str, log: Callable[[str], None] = print
) -> int:
    if not MODEL.exists():
        log(f"{MODEL} is missing: run `make train` first")
        return 1
    runs: List[RunReport] = []
    log(f"[scale] embedded profile: {conversations} conversations × {turns} turns")
    with launched("embedded", WORKDIR / "embedded", log) as running:
        runs.append(measure("embedded", running, load.scripts(conversations, turns, handoff_share, "emb"), log))
    log(f"[scale] scale profile: {conversations} conversations × {turns} turns, then again with rasa-1 killed")
    with launched("scale", WORKDIR / "scale", log) as running:
        runs.append(measure("scale", running, load.scripts(conversations, turns, handoff_share, "sca"), log))
        runs.append(
            measure(
                "scale, rasa-1 killed",
                running,
                load.scripts(conversations, turns, handoff_share, "kil"),
                log,
                kill="rasa-1",
            )
        )
    output.write_text(render(runs, command, conversations, turns, handoff_share))
    log(f"[scale] wrote {output}")
    return 0 if all(run.audit.clean and not run.result.unanswered for run in runs) else 1
