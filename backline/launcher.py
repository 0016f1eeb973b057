"""Run the assistant locally: the action server, the Rasa server (or `rasa shell`) and the hub.

Ports and stores come from the environment with embedded defaults, so
`make run` works on a fresh machine with no accounts and no configuration.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    actions_port = env.setdefault("BACKLINE_ACTIONS_PORT", "5055")
    env.setdefault("BACKLINE_ACTION_ENDPOINT", f"http://localhost:{actions_port}/webhook")
    env.setdefault("BACKLINE_TRACKER_DB", str(PROJECT_ROOT / "var" / "tracker.db"))
    env.setdefault("BACKLINE_BUSINESS_DB_URL", f"sqlite:///{PROJECT_ROOT / 'var' / 'business.db'}")
    env.setdefault("BACKLINE_RASA_PORT", "5005")
    env.setdefault("BACKLINE_HUB_PORT", "5006")
    env.setdefault("BACKLINE_HUB_URL", f"http://localhost:{env['BACKLINE_HUB_PORT']}")
    env.setdefault("BACKLINE_CUSTOMER_TELEGRAM_API_URL", "https://api.telegram.org")
    env.setdefault("BACKLINE_CUSTOMER_SLACK_API_URL", "https://slack.com/api/")
    return env


def customer_channels(env: Dict[str, str]) -> Path:
    """A credentials file with the channels of credentials.yml whose variables are set in ``env``."""
    from backline.rasa.channels import enabled_credentials

    handle, name = tempfile.mkstemp(prefix="backline-credentials-", suffix=".yml")
    with os.fdopen(handle, "w") as out:
        out.write(enabled_credentials((PROJECT_ROOT / "credentials.yml").read_text(), env))
    return Path(name)


def api_token(env: Dict[str, str]) -> str:
    """The Rasa HTTP API token: BACKLINE_RASA_TOKEN, else one generated once and kept in var/."""
    if env.get("BACKLINE_RASA_TOKEN"):
        return env["BACKLINE_RASA_TOKEN"]
    path = PROJECT_ROOT / "var" / "rasa_api_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args[:3]))} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _rasa(*args: str) -> List[str]:
    return [str(BIN / "rasa"), *args]


def _stop(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _print_welcome(env: Dict[str, str], token: str, credentials: Path) -> None:
    port = env["BACKLINE_RASA_PORT"]
    channels = ", ".join(line.rstrip(":").rsplit(".", 1)[-1].removesuffix("Input").lower()
                         for line in credentials.read_text().splitlines()
                         if line and not line[0].isspace() and not line.startswith("#"))
    print(
        f"""
Backline is running (Ctrl-C stops everything).
  Rasa server   http://localhost:{port}   (HTTP API with token; customer channels: {channels})
  Action server http://localhost:{env['BACKLINE_ACTIONS_PORT']}
  Hub           http://localhost:{env['BACKLINE_HUB_PORT']}   (operator API: Authorization: Bearer $(cat var/operator_token))
  Dashboard     http://localhost:{env['BACKLINE_HUB_PORT']}/dashboard   (experts.yml operators, e.g. mara / kestrel-demo)
  Web chat      http://localhost:{env['BACKLINE_HUB_PORT']}/chat   (the customer side)

Talk to the assistant over REST:
  curl -s localhost:{port}/webhooks/rest/webhook \\
       -d '{{"sender": "demo", "message": "where is my order 10023?"}}'
Read the conversation's tracker (slots, events):
  curl -s "localhost:{port}/conversations/demo/tracker?token={token}"
Or chat in the terminal: make shell
""",
        flush=True,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="backline run", description=__doc__)
    parser.add_argument("--model", default="models/backline.tar.gz")
    parser.add_argument("--shell", action="store_true", help="chat in the terminal with rasa shell")
    parser.add_argument("--debug", action="store_true", help="Rasa debug logs: slots and routing decisions per turn")
    args = parser.parse_args(argv)

    env = _env()
    debug = ["--debug"] if args.debug else []
    os.chdir(PROJECT_ROOT)
    processes: List[subprocess.Popen] = []
    credentials = customer_channels(env)
    try:
        actions = subprocess.Popen(
            _rasa("run", "actions", "--actions", "actions", "--port", env["BACKLINE_ACTIONS_PORT"]),
            env=env,
        )
        processes.append(actions)
        wait_until_up(f"http://localhost:{env['BACKLINE_ACTIONS_PORT']}/health", actions, 120)
        if args.shell:
            return subprocess.call(
                _rasa("shell", "--model", args.model, "--endpoints", "endpoints.yml", *debug), env=env
            )
        token = api_token(env)
        server = subprocess.Popen(
            _rasa(
                "run", "--model", args.model, "--port", env["BACKLINE_RASA_PORT"],
                "--enable-api", "--auth-token", token, "--cors", "*",
                "--endpoints", "endpoints.yml", "--credentials", str(credentials), *debug,
            ),
            env=env,
        )
        processes.append(server)
        wait_until_up(f"http://localhost:{env['BACKLINE_RASA_PORT']}/status?token={token}", server, 300)
        hub = subprocess.Popen([sys.executable, "-m", "backline", "hub"], env={**env, "BACKLINE_RASA_TOKEN": token})
        processes.append(hub)
        wait_until_up(f"http://localhost:{env['BACKLINE_HUB_PORT']}/health", hub, 60)
        _print_welcome(env, token, credentials)
        while all(process.poll() is None for process in processes):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"backline run: {error}", file=sys.stderr)
        return 1
    finally:
        _stop(processes)
        credentials.unlink(missing_ok=True)
