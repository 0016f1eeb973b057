"""Run the assistant locally: the action server, the Rasa server (or `rasa shell`) and the hub.

Ports and stores come from the environment with embedded defaults, so
`make run` works on a fresh machine with no accounts and no configuration.

`backline run` supervises the three processes (backline/supervisor.py): it starts them in
order, actions, then Rasa, then the hub, each once the one before answers its health check,
prints the "Backline is running" banner, and watches them. A process that exits, or fails its
health check 3 times in a row (checked every 10 s), is restarted after 1, 2, 4 ... 30 s; the
5th crash of one process within 5 minutes stops everything. SIGINT (Ctrl-C) and SIGTERM stop
every process with whatever it started: SIGTERM to its process group, SIGKILL after 20 s.

Exit status:
  0  stopped on request (SIGINT or SIGTERM)
  1  start-up failed: a process exited, or did not answer its health check in time
  2  bad command line
  3  gave up: a process kept crashing (or failing its health check) past its restart budget
With --shell, the action server is started the same way and the status is `rasa shell`'s.

Binding (issue 13): Rasa listens on BACKLINE_RASA_HOST and the action server on
BACKLINE_ACTIONS_HOST (both 127.0.0.1 by default), Rasa's HTTP API grants no cross-origin access
(no ``--cors``: it is for backends) and its socket.io answers only the chat's origin
(BACKLINE_CHAT_ORIGIN, default http://localhost:<hub port>), and Rasa reaches the action
server with BACKLINE_ACTION_TOKEN. Secrets left unset (the Rasa API token, the REST/outbox channel
token, the action token, the chat secret) are generated once into var/ (0600); every child runs
under umask 077. Children get BACKLINE_DEMO=1 unless it is set: the demo operators' password
works only then.

`process_specs()` is the list of the processes, their commands, ports and health checks;
deploy/systemd/ runs the same commands as systemd units (tests/test_systemd_units.py keeps
the two in step).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from backline import paths
from backline.supervisor import EXIT_START_FAILED, EXIT_STOPPED, Child, StartupError, Supervisor, probe, redacted
from backline.supervisor import log as supervisor_log

PROJECT_ROOT = paths.PROJECT_ROOT
BIN = Path(sys.executable).parent


def environment(base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``base`` (default: this process's environment) with the embedded defaults for what it leaves
    unset: ports, hosts (loopback), the chat origin, the stores under var/."""
    env = dict(os.environ if base is None else base)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    actions_port = env.setdefault("BACKLINE_ACTIONS_PORT", "5055")
    env.setdefault("BACKLINE_ACTION_ENDPOINT", f"http://localhost:{actions_port}/webhook")
    env.setdefault("BACKLINE_TRACKER_DB", str(paths.VAR / "tracker.db"))
    env.setdefault("BACKLINE_BUSINESS_DB_URL", f"sqlite:///{paths.VAR / 'business.db'}")
    env.setdefault("BACKLINE_RASA_PORT", "5005")
    env.setdefault("BACKLINE_HUB_PORT", "5006")
    env.setdefault("BACKLINE_HUB_URL", f"http://localhost:{env['BACKLINE_HUB_PORT']}")
    env.setdefault("BACKLINE_RASA_HOST", "127.0.0.1")
    env.setdefault("BACKLINE_ACTIONS_HOST", "127.0.0.1")
    env.setdefault("BACKLINE_CHAT_ORIGIN", f"http://localhost:{env['BACKLINE_HUB_PORT']}")
    env.setdefault("BACKLINE_CUSTOMER_TELEGRAM_API_URL", "https://api.telegram.org")
    env.setdefault("BACKLINE_CUSTOMER_SLACK_API_URL", "https://slack.com/api/")
    # the listen queue of Rasa and the hub (Rasa's default is 100): a burst of connections beyond it
    # would be refused rather than wait
    env.setdefault("SANIC_BACKLOG", "1024")
    return env


def customer_channels(env: Dict[str, str]) -> Path:
    """A credentials file with the channels of credentials.yml whose variables are set in ``env``."""
    handle, name = tempfile.mkstemp(prefix="backline-credentials-", suffix=".yml")
    os.close(handle)
    _write_channels(env, Path(name))
    return Path(name)


def _write_channels(env: Mapping[str, str], path: Path) -> None:
    from backline.rasa.channels import enabled_credentials

    path.write_text(enabled_credentials((PROJECT_ROOT / "credentials.yml").read_text(), env))


def api_token(env: Dict[str, str]) -> str:
    """The Rasa HTTP API token: BACKLINE_RASA_TOKEN, else one generated once and kept in var/."""
    return paths.secret(env, "BACKLINE_RASA_TOKEN", paths.VAR / "rasa_api_token")


GENERATED = {
    "BACKLINE_CHANNEL_TOKEN": "channel_token",
    "BACKLINE_ACTION_TOKEN": "action_token",
    "BACKLINE_CHAT_SECRET": "chat_secret",
}
"""Secrets `backline run` sets for its children when unset: variable -> file in var/."""


def child_secrets(env: Dict[str, str]) -> None:
    """Sets each of `GENERATED` in ``env`` (the environment's value, else the one in var/) and
    BACKLINE_DEMO=1 unless set."""
    for variable, name in GENERATED.items():
        env[variable] = paths.secret(env, variable, paths.VAR / name)
    env.setdefault("BACKLINE_DEMO", "1")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            args = process.args if isinstance(process.args, (list, tuple)) else [process.args]
            raise RuntimeError(f"{' '.join(map(str, args[:3]))} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


DEFAULT_MODEL = "models/backline.tar.gz"
_VARIABLE = re.compile(r"\$\{(\w+)\}")


@dataclass(frozen=True)
class ProcessSpec:
    """One Backline process, as `backline run` and the systemd units run it.

    ``command`` is a program of the virtualenv's bin/ folder and its arguments; ``${VARIABLE}``
    comes from the environment (as in a systemd ExecStart=). The process listens on the port in
    ``port_variable`` and is well when GET ``health_path`` there answers 200 (within
    ``start_timeout`` seconds of a start). ``prepare`` runs before it (ExecStartPre=);
    `backline run` does the same in-process.
    """

    name: str
    command: Tuple[str, ...]
    port_variable: str
    health_path: str
    start_timeout: float
    prepare: Tuple[str, ...] = ()
    health_timeout: float = 10.0

    @property
    def unit(self) -> str:
        """Its systemd unit in deploy/systemd/."""
        return f"backline-{self.name}.service"


def process_specs(
    model: str = DEFAULT_MODEL, debug: bool = False, endpoints: str = "endpoints.yml"
) -> List[ProcessSpec]:
    """The processes of Backline in start order: the action server, the Rasa server, the hub.
    ``endpoints``: Rasa's endpoints file (the scale profile's is deploy/scale/endpoints.yml)."""
    return [
        ProcessSpec(
            name="actions",
            command=(
                "python",
                "-m",
                "backline",
                "actions",
                "--actions",
                "actions",
                "--host",
                "${BACKLINE_ACTIONS_HOST}",
                "--port",
                "${BACKLINE_ACTIONS_PORT}",
            ),
            port_variable="BACKLINE_ACTIONS_PORT",
            health_path="/health",
            start_timeout=120,
        ),
        ProcessSpec(
            name="rasa",
            command=(
                "rasa",
                "run",
                "--model",
                model,
                "-i",
                "${BACKLINE_RASA_HOST}",
                "--port",
                "${BACKLINE_RASA_PORT}",
                "--enable-api",
                "--auth-token",
                "${BACKLINE_RASA_TOKEN}",
                "--endpoints",
                endpoints,
                "--credentials",
                "${BACKLINE_CREDENTIALS}",
                *(["--debug"] if debug else []),
            ),
            port_variable="BACKLINE_RASA_PORT",
            health_path="/status?token=${BACKLINE_RASA_TOKEN}",
            start_timeout=300,
            # a Rasa server answers its health check behind the turns queued on its event loop: under a
            # hundred conversations at once that took over 5 s, and restarting it for that made it worse
            health_timeout=30,
            prepare=("python", "-m", "backline", "run", "--prepare-rasa", "${BACKLINE_CREDENTIALS}"),
        ),
        ProcessSpec(
            name="hub",
            command=("python", "-m", "backline", "hub", "--port", "${BACKLINE_HUB_PORT}"),
            port_variable="BACKLINE_HUB_PORT",
            health_path="/health",
            start_timeout=60,
        ),
    ]


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with each ``${VARIABLE}`` replaced by its value in ``env`` (KeyError when unset)."""
    return _VARIABLE.sub(lambda match: env[match.group(1)], text)


def health_url(spec: ProcessSpec, env: Mapping[str, str]) -> str:
    """Where ``spec``'s process answers its health check, variables expanded."""
    return f"http://localhost:{env[spec.port_variable]}{expand(spec.health_path, env)}"


def health_wait(spec: ProcessSpec) -> Tuple[str, ...]:
    """The command that waits for ``spec``'s process to answer its health check (ExecStartPost=)."""
    return ("python", "-m", "backline", "run", "--wait-healthy", spec.name)


def child(spec: ProcessSpec, env: Mapping[str, str]) -> Child:
    """What the supervisor runs for ``spec``: the program from BIN, variables expanded."""
    program, *args = spec.command
    return Child(
        name=spec.name,
        argv=[str(BIN / program), *(expand(arg, env) for arg in args)],
        env=dict(env),
        health_url=health_url(spec, env),
        start_timeout=spec.start_timeout,
        health_timeout=spec.health_timeout,
        cwd=str(PROJECT_ROOT),
    )


def _log_to_stderr() -> None:
    """The supervisor's lines on stderr: `<time> backline run: rasa exited with code 1 ...`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s backline run: %(message)s"))
    supervisor_log.addHandler(handler)
    supervisor_log.setLevel(logging.INFO)
    supervisor_log.propagate = False


def _where(value: str, variable: str, name: str) -> str:
    """How to get a secret in a shell: ``$(cat var/<name>)`` when it is the generated one, else ``$VARIABLE``."""
    generated = paths.VAR / name
    if generated.exists() and generated.read_text().strip() == value:
        return f"$(cat var/{name})"
    return f"${variable}"


def _print_welcome(env: Dict[str, str], token: str, credentials: Path) -> None:
    """The banner. It names where the tokens are, never their values (a banner ends up in logs)."""
    port = env["BACKLINE_RASA_PORT"]
    token_hint = _where(token, "BACKLINE_RASA_TOKEN", "rasa_api_token")
    channel_hint = _where(env.get("BACKLINE_CHANNEL_TOKEN", ""), "BACKLINE_CHANNEL_TOKEN", "channel_token")
    demo = (
        "demo operators: password kestrel-demo (BACKLINE_DEMO=1)"
        if env.get("BACKLINE_DEMO") == "1"
        else "BACKLINE_DEMO is not 1: demo passwords are refused"
    )
    channels = ", ".join(
        line.rstrip(":").rsplit(".", 1)[-1].removesuffix("Input").lower()
        for line in credentials.read_text().splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    )
    print(
        f"""
Backline is running (Ctrl-C stops everything).
  Rasa server   http://localhost:{port}   (HTTP API with token; customer channels: {channels})
  Action server http://localhost:{env["BACKLINE_ACTIONS_PORT"]}
  Hub           http://localhost:{env["BACKLINE_HUB_PORT"]}   (operator API: Authorization: Bearer $(cat var/operator_token))
  Dashboard     http://localhost:{env["BACKLINE_HUB_PORT"]}/dashboard   (experts.yml operators, e.g. mara; {demo})
  Web chat      http://localhost:{env["BACKLINE_HUB_PORT"]}/chat   (the customer side)

Talk to the assistant over REST (for an integrating backend: the channel token is required):
  curl -s localhost:{port}/webhooks/rest/webhook -H "Authorization: Bearer {channel_hint}" \\
       -d '{{"sender": "demo", "message": "where is my order 10023?"}}'
Read the conversation's tracker (slots, events):
  curl -s "localhost:{port}/conversations/demo/tracker?token={token_hint}"
Or chat in the terminal: make shell
""",
        flush=True,
    )


def prepare_rasa(env: Mapping[str, str], credentials: Path) -> int:
    """What `backline run` does in-process before starting Rasa, for a Rasa started by systemd:
    refuse without BACKLINE_RASA_TOKEN (systemd cannot generate one), write the credentials file."""
    if not env.get("BACKLINE_RASA_TOKEN", "").strip():
        print(
            "backline run: BACKLINE_RASA_TOKEN is not set; set it in the environment file "
            "(a long random string) before starting Rasa with its HTTP API",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    _write_channels(env, credentials)
    return 0


def wait_healthy(name: str, env: Mapping[str, str]) -> int:
    """For a process started by systemd (ExecStartPost=): 0 once it answers its health check,
    1 when it has not within its start timeout (systemd then fails the start and restarts it)."""
    spec = next(spec for spec in process_specs() if spec.name == name)
    url = health_url(spec, env)
    deadline = time.monotonic() + spec.start_timeout
    while True:
        problem = probe(url, 2.0)
        if problem is None:
            return 0
        if time.monotonic() >= deadline:
            print(
                f"backline run: {name} did not answer {redacted(url)} within {spec.start_timeout:g} s ({problem})",
                file=sys.stderr,
            )
            return EXIT_START_FAILED
        time.sleep(0.5)


def _shell(model: str, debug: bool, env: Dict[str, str]) -> int:
    """The action server, supervised, and `rasa shell` in the foreground (Ctrl-C ends it as before)."""
    actions = next(spec for spec in process_specs() if spec.name == "actions")
    supervisor = Supervisor([child(actions, env)])
    try:
        with supervisor.handling_signals():
            if not supervisor.start():
                return EXIT_STOPPED
        return subprocess.call(
            [
                str(BIN / "rasa"),
                "shell",
                "--model",
                model,
                "--endpoints",
                "endpoints.yml",
                *(["--debug"] if debug else []),
            ],
            env=env,
        )
    except StartupError as error:
        supervisor_log.error("%s", error)
        return EXIT_START_FAILED
    except KeyboardInterrupt:
        return EXIT_STOPPED
    finally:
        supervisor.stop()


def _run_scale(model: str, debug: bool, env: Dict[str, str], token: str, credentials: Path) -> int:
    """The scale profile (backline/scale.py) under one supervisor."""
    from backline import scale

    given = scale.given_stores(os.environ)
    try:
        children = scale.children(env, given, model, debug, log=supervisor_log.info)
    except (scale.ProfileError, FileNotFoundError, RuntimeError) as error:
        supervisor_log.error("%s", error)
        return EXIT_START_FAILED
    supervisor = Supervisor(children)
    names = [c.name for c in children]
    return supervisor.run(on_ready=lambda: _print_scale_welcome(env, token, credentials, names))


def _print_scale_welcome(env: Dict[str, str], token: str, credentials: Path, names: List[str]) -> None:
    """The banner of the scale profile: the balancer's addresses, the instances, the stores (no secret)."""
    from backline.redact import redact

    _print_welcome(env, token, credentials)
    stores = "\n".join(
        f"  {variable:<26}{redact(env[variable])}"
        for variable in (
            "BACKLINE_TRACKER_DB_URL",
            "BACKLINE_CONSULT_DB_URL",
            "BACKLINE_BUSINESS_DB_URL",
            "BACKLINE_REDIS_URL",
        )
    )
    print(
        f"""Scale profile: HAProxy on the ports above balances {", ".join(n for n in names if "-" in n)}.
Stores (passwords in var/ or the environment):
{stores}
""",
        flush=True,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="backline run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--profile",
        choices=("embedded", "scale"),
        default="embedded",
        help="embedded: one process each, SQLite (the default); scale: PostgreSQL, Redis, two Rasa "
        "servers, action servers and hubs behind HAProxy (backline/scale.py)",
    )
    parser.add_argument("--shell", action="store_true", help="chat in the terminal with rasa shell")
    parser.add_argument("--debug", action="store_true", help="Rasa debug logs: slots and routing decisions per turn")
    parser.add_argument(
        "--prepare-rasa",
        metavar="CREDENTIALS",
        help="only check that BACKLINE_RASA_TOKEN is set and write the customer channels the "
        "environment enables to CREDENTIALS (the systemd Rasa unit's ExecStartPre)",
    )
    parser.add_argument(
        "--wait-healthy",
        metavar="NAME",
        choices=[spec.name for spec in process_specs()],
        help="only wait until process NAME answers its health check (a systemd unit's ExecStartPost)",
    )
    args = parser.parse_args(argv)

    paths.private_umask()
    paths.private_var()
    env = environment()
    if args.prepare_rasa:
        return prepare_rasa(env, Path(args.prepare_rasa))
    if args.wait_healthy:
        return wait_healthy(args.wait_healthy, env)
    os.chdir(PROJECT_ROOT)
    _log_to_stderr()
    child_secrets(env)
    credentials = customer_channels(env)
    env["BACKLINE_CREDENTIALS"] = str(credentials)
    try:
        if args.shell:
            if args.profile != "embedded":
                parser.error("--shell runs the embedded profile only")
            return _shell(args.model, args.debug, env)
        token = env["BACKLINE_RASA_TOKEN"] = api_token(env)
        if args.profile == "scale":
            return _run_scale(args.model, args.debug, env, token, credentials)
        supervisor = Supervisor([child(spec, env) for spec in process_specs(args.model, args.debug)])
        return supervisor.run(on_ready=lambda: _print_welcome(env, token, credentials))
    finally:
        credentials.unlink(missing_ok=True)
