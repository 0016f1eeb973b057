"""Dashboard operators: accounts from experts.yml, scrypt password hashes, signed session cookies.

An operator is a person of experts.yml with a dashboard channel that has a ``password_hash``;
they sign in with the channel's username (default: the person id). Hashes are scrypt with a
random salt (``scrypt$n$r$p$salt$hash``, URL-safe base64); `python -m backline hash-password`
prints one. A session is a cookie ``<person id>:<expiry>:<HMAC-SHA256>`` signed with
BACKLINE_DASHBOARD_SECRET, or with a secret generated once into var/dashboard_secret.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Mapping, Optional

from backline.consult.store import PROJECT_ROOT
from backline.routing.experts import ExpertDirectory

ENV_SECRET = "BACKLINE_DASHBOARD_SECRET"
SECRET_FILE = PROJECT_ROOT / "var" / "dashboard_secret"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_SECONDS = 12 * 3600
MIN_PASSWORD = 8


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    """The stored form of ``password``: ``scrypt$n$r$p$salt$hash``."""
    if not password:
        raise ValueError("the password must not be empty")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return "$".join(["scrypt", *(str(SCRYPT[k]) for k in "nrp"), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (False for a malformed one)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.urlsafe_b64decode(digest)
        if scheme != "scrypt" or not expected:
            return False
        given = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given, expected)


_UNKNOWN_USER = hash_password("no such operator")
"""Checked for unknown usernames, so that they take as long as a wrong password."""


@dataclass(frozen=True)
class Operator:
    """A person who may sign in to the dashboard."""

    person_id: str
    username: str
    name: str
    title: Optional[str]
    password_hash: str


def operators(directory: ExpertDirectory) -> Dict[str, Operator]:
    """The dashboard accounts of experts.yml, by username."""
    found = {}
    for person in directory.people.values():
        channel = person.channel("dashboard")
        if channel is not None and channel.password_hash:
            found[channel.address] = Operator(person.id, channel.address, person.name, person.title,
                                              channel.password_hash)
    return found


def authenticate(accounts: Mapping[str, Operator], username: str, password: str) -> Optional[Operator]:
    """The operator when ``password`` is theirs, else None."""
    account = accounts.get(username.strip())
    matches = verify_password(password, account.password_hash if account else _UNKNOWN_USER)
    return account if account and matches else None


class SignInThrottle:
    """At most ``failures`` wrong passwords per username within ``window`` seconds; then sign-in
    for that username is refused until the oldest failure leaves the window (guessing is slow)."""

    def __init__(self, failures: int = 5, window: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._failed: Dict[str, Deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, username: str) -> Deque[float]:
        times = self._failed.setdefault(username.strip().lower(), deque())
        while times and times[0] <= self.clock() - self.window:
            times.popleft()
        return times

    def wait(self, username: str) -> float:
        """Seconds before ``username`` may try again (0: now)."""
        with self._lock:
            times = self._recent(username)
            return max(0.0, times[0] + self.window - self.clock()) if len(times) >= self.failures else 0.0

    def failed(self, username: str) -> None:
        with self._lock:
            self._recent(username).append(self.clock())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failed.pop(username.strip().lower(), None)


def dashboard_secret(env: Mapping[str, str]) -> bytes:
    """BACKLINE_DASHBOARD_SECRET, else one generated once and kept in var/dashboard_secret."""
    if env.get(ENV_SECRET):
        return env[ENV_SECRET].encode()
    if not SECRET_FILE.exists():
        SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
        SECRET_FILE.write_text(secrets.token_urlsafe(32))
        SECRET_FILE.chmod(0o600)
    return SECRET_FILE.read_text().strip().encode()


def _mac(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def sign_session(secret: bytes, person_id: str, now: float, seconds: int = SESSION_SECONDS) -> str:
    """The session cookie's value for ``person_id``, valid for ``seconds`` from ``now`` (epoch)."""
    payload = f"{person_id}:{int(now) + seconds}"
    return f"{payload}:{_mac(secret, payload)}"


def read_session(secret: bytes, value: Optional[str], now: float) -> Optional[str]:
    """The person id of a valid, unexpired session cookie, else None."""
    try:
        person_id, expires, mac = (value or "").rsplit(":", 2)
        alive = int(expires) > now
    except ValueError:
        return None
    return person_id if alive and hmac.compare_digest(mac, _mac(secret, f"{person_id}:{expires}")) else None


def main(argv: Optional[List[str]] = None) -> int:
    """Print the hash of a password for a dashboard channel's ``password_hash`` in experts.yml."""
    parser = argparse.ArgumentParser(prog="python -m backline hash-password", description=main.__doc__)
    parser.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("the passwords differ", file=sys.stderr)
            return 1
    if len(password) < MIN_PASSWORD:
        print(f"use at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
