"""A small process supervisor: start child processes in order, watch them, restart the ones that
crash or stop answering their health check, and stop them all, with their own children, on request.

`backline run` (backline/launcher.py) supervises the action server, the Rasa server and the hub
with it; in production systemd does the same job (deploy/systemd/).

- Start: each child in turn, the next one once the previous answers its health check (HTTP 200)
  within its start timeout. A child that exits or stays silent during start-up is a start-up
  failure: everything stops (`StartupError`, exit status 1 from `run`).
- Watch: a child that exits is restarted after a backoff of 1, 2, 4 ... 30 s (back to 1 s once it
  has stayed up for a minute); one that answers its health check with anything but 200, or not at
  all, 3 times in a row (every 10 s) is stopped and restarted the same way. Its start timeout is
  its start-up grace period: no health check counts against it before it first answers or that
  time has passed. The 5th crash of one child within 5 minutes spends its budget: everything
  stops (exit status 3).
- Stop: every child runs in a session, and so a process group, of its own; stopping it sends
  SIGTERM to the whole group and SIGKILL to whatever is left of it after 20 s (at once on a second
  SIGINT/SIGTERM), so nothing a child started outlives it. On Linux a child also gets SIGTERM
  if the supervisor itself dies.

Logs go to the ``backline.supervisor`` logger and name the child, its exit code and the next
delay; they never print a child's command line or health URL query (both may carry tokens).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Deque, Iterator, Mapping, Optional, Sequence

log = logging.getLogger("backline.supervisor")

EXIT_STOPPED = 0  # stopped on request: SIGINT or SIGTERM
EXIT_START_FAILED = 1  # a child exited or did not answer its health check during start-up
EXIT_GAVE_UP = 3  # a child crashed (or failed its health check) past its restart budget


@dataclass(frozen=True)
class Child:
    """One supervised process: its command, environment, health check and start-up time."""

    name: str
    argv: Sequence[str]
    env: Optional[Mapping[str, str]] = None  # None: the supervisor's own environment
    health_url: Optional[str] = None  # GET answering 200 (or tcp://host:port accepting) when well; None: no check
    start_timeout: float = 60.0  # seconds to first answer the health check after each start
    cwd: Optional[str] = None
    stop_signal: int = signal.SIGTERM  # what asks it to stop (PostgreSQL: SIGINT, its "fast" shutdown)
    health_timeout: Optional[float] = None  # seconds a health check may take; None: the policy's
    # (a Rasa server busy with a queue of turns answers late: that is not a failure to restart it for)
    after_start: Optional[Callable[[], None]] = None  # run once it is first up during `start` (migrations)


@dataclass(frozen=True)
class Policy:
    """Timings and budgets; the defaults are the production ones."""

    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 60.0  # up this long before crashing: the backoff starts again at backoff_initial
    crash_budget: int = 5  # this many crashes of one child ...
    crash_window: float = 300.0  # ... within this many seconds: give up
    health_interval: float = 10.0
    health_failures: int = 3  # failed health checks in a row before a restart
    health_timeout: float = 5.0
    start_poll: float = 0.5  # health check interval while a child starts
    stop_grace: float = 20.0  # SIGTERM, then SIGKILL after this many seconds
    tick: float = 0.25


class StartupError(RuntimeError):
    """A child exited, or did not answer its health check in time, during start-up."""


class RestartBudget:
    """The crash record of one child: the backoff before its next start, and whether to give up."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.crashes: Deque[float] = deque()
        self.delay = policy.backoff_initial

    def crashed(self, now: float, uptime: float) -> Optional[float]:
        """Record a crash at ``now`` after ``uptime`` seconds up: the seconds to wait before the
        restart, or None when this crash spends the budget."""
        policy = self.policy
        if uptime >= policy.stable_after:
            self.delay = policy.backoff_initial
        self.crashes.append(now)
        while now - self.crashes[0] > policy.crash_window:
            self.crashes.popleft()
        if len(self.crashes) >= policy.crash_budget:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, policy.backoff_max)
        return delay


def redacted(url: str) -> str:
    """``url`` without its query (a token may be in it)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query="…" if parts.query else "", fragment=""))


def probe(url: str, timeout: float) -> Optional[str]:
    """GET ``url``: None when it answers 200, else what went wrong (``HTTP 500``, ``connection refused``).
    A ``tcp://host:port`` URL (PostgreSQL, Redis) is well when the port accepts a connection."""
    if url.startswith("tcp://"):
        parts = urllib.parse.urlsplit(url)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
                return None
        except OSError as error:
            return getattr(error, "strerror", None) or str(error) or type(error).__name__
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except urllib.error.URLError as error:
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    except (OSError, ValueError) as error:  # timeouts, resets, a malformed answer
        return getattr(error, "strerror", None) or str(error) or type(error).__name__


def describe_exit(code: int) -> str:
    """``exited with code 3``, ``exited with code -9 (SIGKILL)``."""
    if code < 0:
        try:
            return f"exited with code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting to be reaped do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _prctl() -> Optional[Callable[..., int]]:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _in_child() -> None:
    """Runs in the child before exec: default signal dispositions, and SIGTERM when the supervisor dies."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class _Running:
    """What the supervisor knows about one child between its starts."""

    def __init__(self, child: Child, policy: Policy) -> None:
        self.child = child
        self.budget = RestartBudget(policy)
        self.process: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self.healthy = False  # answered its health check since its last start
        self.failures = 0  # health checks failed in a row
        self.next_check = 0.0
        self.restart_at: Optional[float] = None
        self.kill_at: Optional[float] = None  # being stopped by the supervisor: SIGKILL at this time
        self.why: Optional[str] = None  # why the supervisor stopped it


class Supervisor:
    """Starts ``children`` in order, restarts them, and stops them all; see the module docstring."""

    def __init__(self, children: Sequence[Child], policy: Policy = Policy()) -> None:
        self.policy = policy
        self._running = [_Running(child, policy) for child in children]
        self._stop_signal: Optional[int] = None
        self._stopping = False
        self._hurry = False  # a second signal while stopping: SIGKILL now

    # -- signals -----------------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM, _frame: object = None) -> None:
        """Ask `start` / `monitor` to return; a second request while stopping kills at once."""
        if self._stop_signal is not None or self._stopping:
            self._hurry = True
        self._stop_signal = signum

    @property
    def stop_requested(self) -> bool:
        return self._stop_signal is not None

    @contextmanager
    def handling_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM request a stop while inside (main thread only)."""
        previous = {signum: signal.signal(signum, self.request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- the whole life ----------------------------------------------------------------------------

    def run(self, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Start, call ``on_ready``, watch until a stop is requested or a budget is spent, stop
        everything; the exit status (EXIT_STOPPED, EXIT_START_FAILED or EXIT_GAVE_UP)."""
        with self.handling_signals():
            try:
                if not self.start():
                    return EXIT_STOPPED
                if on_ready is not None:
                    on_ready()
                return self.monitor()
            except StartupError as error:
                log.error("%s", error)
                return EXIT_START_FAILED
            finally:
                self.stop()

    def pids(self) -> Mapping[str, Optional[int]]:
        """The current pid of each child (None while it waits for a restart)."""
        return {r.child.name: r.process.pid if r.process else None for r in self._running}

    # -- start -------------------------------------------------------------------------------------

    def _spawn(self, running: _Running) -> None:
        child = running.child
        running.process = subprocess.Popen(
            list(child.argv),
            env=None if child.env is None else dict(child.env),
            cwd=child.cwd,
            start_new_session=True,
            preexec_fn=_in_child,
        )
        running.started_at = time.monotonic()
        running.healthy = child.health_url is None
        running.failures = 0
        running.next_check = running.started_at
        running.restart_at = running.kill_at = running.why = None
        log.info("%s started (pid %d)", child.name, running.process.pid)

    def start(self) -> bool:
        """Start every child in order, each once the previous one answers its health check.
        False when a stop was requested meanwhile; raises StartupError when a child fails to start."""
        for running in self._running:
            if self.stop_requested:
                return False
            child = running.child
            try:
                self._spawn(running)
            except OSError as error:
                raise StartupError(f"{child.name} could not be started: {error}") from error
            assert running.process is not None
            deadline = running.started_at + child.start_timeout
            while not running.healthy:
                if self.stop_requested:
                    return False
                code = running.process.poll()
                if code is not None:
                    raise StartupError(f"{child.name} {describe_exit(code)} during start-up")
                if time.monotonic() > deadline:
                    raise StartupError(
                        f"{child.name} did not answer {redacted(child.health_url or '')} "
                        f"within {child.start_timeout:g} s of its start"
                    )
                assert child.health_url is not None
                if probe(child.health_url, min(2.0, self.policy.health_timeout)) is None:
                    running.healthy = True
                else:
                    time.sleep(self.policy.start_poll)
            if child.after_start is not None:
                try:
                    child.after_start()
                except Exception as error:
                    raise StartupError(f"{child.name} is up but what follows its start failed: {error}") from error
        return True

    # -- watch -------------------------------------------------------------------------------------

    def monitor(self) -> int:
        """Watch the started children until a stop is requested (EXIT_STOPPED) or one of them
        crashes past its budget (EXIT_GAVE_UP); the children keep running either way."""
        while not self.stop_requested:
            for running in self._running:
                if not self._watch(running, time.monotonic()):
                    return EXIT_GAVE_UP
                if self.stop_requested:
                    break
            time.sleep(self.policy.tick)
        return EXIT_STOPPED

    def _watch(self, running: _Running, now: float) -> bool:
        """One look at one child; False when it has spent its restart budget."""
        child, process = running.child, running.process
        if process is None:
            if running.restart_at is not None and now >= running.restart_at:
                try:
                    self._spawn(running)
                except OSError as error:
                    running.started_at = now
                    return self._crashed(running, f"could not be started ({error})", now)
            return True
        code = process.poll()
        if code is not None:
            _signal_group(process.pid, signal.SIGKILL)  # whatever it left behind
            return self._crashed(running, running.why or describe_exit(code), now)
        if running.kill_at is not None:
            if now >= running.kill_at:
                log.warning("%s did not stop within %g s of SIGTERM; killing it", child.name, self.policy.stop_grace)
                _signal_group(process.pid, signal.SIGKILL)
                running.kill_at = float("inf")
            return True
        if child.health_url is None or now < running.next_check:
            return True
        self._check(running, now)
        return True

    def _check(self, running: _Running, now: float) -> None:
        child, policy = running.child, self.policy
        assert child.health_url is not None
        problem = probe(child.health_url, child.health_timeout or policy.health_timeout)
        if not running.healthy:  # starting: poll until it answers, up to its start timeout
            if problem is None:
                running.healthy = True
                running.next_check = now + policy.health_interval
                log.info("%s is up (pid %d)", child.name, running.process.pid if running.process else 0)
            elif now - running.started_at > child.start_timeout:
                self._restart(running, f"did not answer its health check within {child.start_timeout:g} s ({problem})")
            else:
                running.next_check = now + policy.start_poll
            return
        running.next_check = now + policy.health_interval
        if problem is None:
            running.failures = 0
            return
        running.failures += 1
        if running.failures >= policy.health_failures:
            self._restart(running, f"failed {running.failures} health checks in a row ({problem})")
        else:
            log.warning(
                "%s health check failed (%s): %d of %d before a restart",
                child.name,
                problem,
                running.failures,
                policy.health_failures,
            )

    def _restart(self, running: _Running, why: str) -> None:
        """Stop a child that is up but not well; `_watch` restarts it once it has exited."""
        assert running.process is not None
        log.warning("%s %s; stopping it for a restart", running.child.name, why)
        running.why = why
        running.kill_at = time.monotonic() + self.policy.stop_grace
        _signal_group(running.process.pid, running.child.stop_signal)

    def _crashed(self, running: _Running, why: str, now: float) -> bool:
        child, policy = running.child, self.policy
        delay = running.budget.crashed(now, now - running.started_at)
        running.process = None
        count = len(running.budget.crashes)
        if delay is None:
            log.error(
                "%s %s: %d crashes within %g s, giving up; stopping everything",
                child.name,
                why,
                count,
                policy.crash_window,
            )
            return False
        log.warning(
            "%s %s; restarting in %g s (crash %d of %d within %g s)",
            child.name,
            why,
            delay,
            count,
            policy.crash_budget,
            policy.crash_window,
        )
        running.restart_at = now + delay
        return True

    # -- stop --------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every child and its process group: SIGTERM (the last started first), then SIGKILL
        to what is left after the grace period. Idempotent."""
        self._stopping = True
        started = [r for r in reversed(self._running) if r.process is not None]
        if not started:
            return
        names = ", ".join(r.child.name for r in started)
        if self._stop_signal is not None:
            log.info("%s: stopping %s", signal.Signals(self._stop_signal).name, names)
        else:
            log.info("stopping %s", names)
        for running in started:
            assert running.process is not None
            _signal_group(running.process.pid, running.child.stop_signal)
        deadline = time.monotonic() + self.policy.stop_grace
        waiting = list(started)
        while waiting and time.monotonic() < deadline and not self._hurry:
            waiting = [r for r in waiting if r.process is not None and not self._gone(r.process)]
            if waiting:
                time.sleep(0.05)
        if waiting:
            left = ", ".join(r.child.name for r in waiting)
            if self._hurry:
                log.warning("stopping again: killing %s", left)
            else:
                log.warning("%s did not stop within %g s; killing it", left, self.policy.stop_grace)
        for running in started:
            assert running.process is not None
            if running in waiting or group_alive(running.process.pid):
                _signal_group(running.process.pid, signal.SIGKILL)
            running.process.wait()
            running.process = None

    @staticmethod
    def _gone(process: subprocess.Popen) -> bool:
        """The child has exited and nothing of its process group still runs."""
        return process.poll() is not None and not group_alive(process.pid)
