"""Dashboard operators: accounts from experts.yml, scrypt password hashes, signed session cookies.

An operator is a person of experts.yml with a dashboard channel that has a ``password_hash``;
they sign in with the channel's username (default: the person id). Hashes are scrypt with a
random salt (``scrypt$n$r$p$salt$hash``, URL-safe base64); `python -m backline hash-password`
prints one. A session is a cookie ``<person id>:<expiry>:<HMAC-SHA256>`` signed with
BACKLINE_DASHBOARD_SECRET, or with a secret generated once into var/dashboard_secret. Its CSRF
token is a second MAC of the cookie's value (`csrf_token`).

The demo operators all share the published password ``kestrel-demo``: a sign-in whose password
matched is still refused when the password is that one and BACKLINE_DEMO is not 1 (`demo_refused`;
checked on the password typed, so it covers every account whatever its hash, with no extra scrypt).
How many tries, from where, and on which threads: `backline.hub.sign_in`.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from backline import paths
from backline.hub.sign_in import ENV_TRUSTED_PROXIES, Network, Rules, trusted_proxies
from backline.routing.directory import ExpertDirectory

ENV_SECRET = "BACKLINE_DASHBOARD_SECRET"
ENV_DEMO = "BACKLINE_DEMO"
ENV_ORIGIN = "BACKLINE_DASHBOARD_ORIGIN"
ENV_COOKIE_SECURE = "BACKLINE_COOKIE_SECURE"
DEMO_PASSWORD = "kestrel-demo"
"""The demo operators' password (experts.yml's hashes): refused unless BACKLINE_DEMO=1."""
SECRET_FILE = paths.VAR / "dashboard_secret"
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
        given = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
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
            found[channel.address] = Operator(
                person.id, channel.address, person.name, person.title, channel.password_hash
            )
    return found


def authenticate(accounts: Mapping[str, Operator], username: str, password: str) -> Optional[Operator]:
    """The operator when ``password`` is theirs, else None."""
    account = accounts.get(username.strip())
    matches = verify_password(password, account.password_hash if account else _UNKNOWN_USER)
    return account if account and matches else None


def dashboard_secret(env: Mapping[str, str]) -> bytes:
    """BACKLINE_DASHBOARD_SECRET, else one generated once and kept in var/dashboard_secret (0600)."""
    return paths.secret(env, ENV_SECRET, SECRET_FILE, nbytes=32).encode()


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


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of a session (its cookie's value): a MAC only the hub can make, so a page of
    another site, which cannot read the cookie or the session's JSON, cannot send it."""
    return _mac(secret, f"csrf:{session}")


def csrf_valid(secret: bytes, session: Optional[str], given: Optional[str]) -> bool:
    """Whether ``given`` (the X-CSRF-Token header) is the token of ``session``."""
    return bool(session and given) and hmac.compare_digest(csrf_token(secret, session or ""), given or "")


def demo_refused(password: str, demo: bool) -> bool:
    """Whether a password that matched must still be refused: the published demo password
    (``kestrel-demo``, the demo operators' in experts.yml) outside a demo (BACKLINE_DEMO=1)."""
    return not demo and hmac.compare_digest(password.encode("utf-8", "surrogatepass"), DEMO_PASSWORD.encode())


def _origin(value: str) -> str:
    """``https://support.example`` as an origin: scheme, host and a port other than the default."""
    parts = urllib.parse.urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise ValueError(f"{ENV_ORIGIN}: {value[:80]!r} is not an origin such as https://support.example")
    return normal_origin(parts.scheme, parts.hostname, parts.port)


def normal_origin(scheme: str, host: str, port: Optional[int]) -> str:
    """``scheme://host[:port]``, lower case, without the scheme's default port."""
    host = host.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme.lower())
    return f"{scheme.lower()}://{host}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True)
class Settings:
    """How sign-in and the dashboard's cookie behave, from the environment:

    - ``demo`` (BACKLINE_DEMO=1): the demo password is accepted (`backline run` sets it);
    - ``origins`` (BACKLINE_DASHBOARD_ORIGIN, comma-separated): origins that may POST besides the
      one the request names in its Host (behind a TLS proxy: ``https://support.example``);
    - ``cookie_secure`` (BACKLINE_COOKIE_SECURE=1): the session cookie is ``Secure`` (behind a TLS
      proxy, where the hub itself sees plain HTTP);
    - ``trusted_proxies`` (BACKLINE_TRUSTED_PROXIES): whose X-Forwarded-For names the client;
    - ``rules``: the sign-in limits (`backline.hub.sign_in.Rules`)."""

    demo: bool = False
    origins: Tuple[str, ...] = ()
    cookie_secure: bool = False
    trusted_proxies: Tuple[Network, ...] = ()
    rules: Rules = Rules()

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        origins = tuple(_origin(o) for o in (env.get(ENV_ORIGIN) or "").split(",") if o.strip())
        return cls(
            demo=env.get(ENV_DEMO, "").strip() == "1",
            origins=origins,
            cookie_secure=env.get(ENV_COOKIE_SECURE, "").strip() == "1",
            trusted_proxies=trusted_proxies(env.get(ENV_TRUSTED_PROXIES)),
        )


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
