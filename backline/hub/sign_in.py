"""Sign-in limits and the password pool: what keeps password guessing slow and a flood harmless.

`SignInLimits` counts failed dashboard sign-ins in the consultation database (table
``sign_in_attempts``), so every hub process sharing the database sees the same counts, and a restart
forgets nothing. Three rows per failure, each keyed by an HMAC-SHA256 (keyed with the dashboard
secret; never the raw username or address):

- ``address``: the client address (an IPv6 address counts as its /64). At most
  ``address_failures`` (20) failures per ``window`` (15 minutes); then 429 until the oldest leaves
  the window.
- ``user_address``: username and address together. After ``free_failures`` (3) failures the next
  try waits ``backoff_base`` (5 s), doubling with each further failure up to ``backoff_max``
  (15 minutes), counted over ``backoff_window`` (1 hour). Only this address is slowed: the operator
  signs in from anywhere else as usual, so a stranger cannot lock them out. A success clears it.
- ``all``: every failure. Over ``overall_failures`` (1,000) per window the hub is under a
  distributed attack: each address may then fail only once per window (an address with no recent
  failure, the real operator's, still gets its try).

A refused try (429) records nothing. Rows older than the longest window are deleted with each new
failure, so the table holds at most about four windows' worth of the overall ceiling.

`client_address` is the peer address, or, when the peer is a trusted proxy
(``BACKLINE_TRUSTED_PROXIES``: addresses or networks, comma-separated), the last X-Forwarded-For hop
that is not itself trusted.

`PasswordPool` runs scrypt (16 MiB, tens of milliseconds each) on its own small thread pool with a
short queue, never on the thread pool the hub's database calls share; when it is full a sign-in is
refused at once (503 with Retry-After) instead of waiting, so a flood of sign-ins cannot stall the hub.
Its threads leave a core to the event loop (`hashing_workers`): scrypt releases the GIL, so two
hashing threads on a 2-core machine took both cores, and the hub's reads waited behind them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple, TypeVar, Union

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.engine import Engine

from backline.consult.schema import sign_in_attempts
from backline.utc import as_utc, utcnow

ENV_TRUSTED_PROXIES = "BACKLINE_TRUSTED_PROXIES"
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
T = TypeVar("T")


@dataclass(frozen=True)
class Rules:
    """How many failures, over which windows (seconds); see the module's docstring."""

    address_failures: int = 20
    window: float = 900.0
    free_failures: int = 3
    backoff_base: float = 5.0
    backoff_max: float = 900.0
    backoff_window: float = 3600.0
    overall_failures: int = 1000

    @property
    def kept(self) -> float:
        """How long a row matters: rows older than this are pruned."""
        return max(self.window, self.backoff_window)


class SignInLimits:
    """Failed sign-ins counted in ``engine``'s ``sign_in_attempts`` table (shared by every hub on it)."""

    def __init__(
        self, engine: Engine, key: bytes, rules: Rules = Rules(), clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.engine, self._key, self.rules, self.clock = engine, key, rules, clock

    def key(self, scope: str, *parts: str) -> str:
        """The stored key: HMAC-SHA256 of the scope and its values (hex), never the values."""
        return hmac.new(
            self._key, "\x00".join((scope, *parts)).encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()

    def _keys(self, username: str, address: str) -> Tuple[Tuple[str, str], ...]:
        user = username.strip().lower()
        return (
            ("all", self.key("all")),
            ("address", self.key("address", address)),
            ("user_address", self.key("user_address", user, address)),
        )

    def wait(self, username: str, address: str) -> float:
        """Seconds before ``username`` may try again from ``address`` (0: now)."""
        now, rules = self.clock(), self.rules
        every, by_address, by_user = self._keys(username, address)
        since = now - dt.timedelta(seconds=rules.window)

        def counted(connection: Any, scoped: Tuple[str, str], after: dt.datetime) -> Tuple[int, Any, Any]:
            column = sign_in_attempts.c
            row = connection.execute(
                select(func.count(), func.min(column.at), func.max(column.at)).where(
                    and_(column.scope == scoped[0], column.key == scoped[1], column.at > after)
                )
            ).one()
            return int(row[0]), row[1], row[2]

        with self.engine.connect() as connection:
            overall, _, _ = counted(connection, every, since)
            failures, oldest, _ = counted(connection, by_address, since)
            tries, _, last = counted(connection, by_user, now - dt.timedelta(seconds=rules.backoff_window))
        waits = [0.0]
        allowed = rules.address_failures if overall < rules.overall_failures else 1
        if failures >= allowed:
            waits.append(_seconds(oldest, now) + rules.window)
        if tries >= rules.free_failures:
            delay = min(rules.backoff_base * 2 ** (tries - rules.free_failures), rules.backoff_max)
            waits.append(_seconds(last, now) + delay)
        return max(waits)

    def failed(self, username: str, address: str) -> None:
        """Count a failure (one row per scope), pruning rows older than any window, in one transaction."""
        now = self.clock()
        with self.engine.begin() as connection:
            rows = [{"scope": scope, "key": key, "at": now} for scope, key in self._keys(username, address)]
            connection.execute(insert(sign_in_attempts), rows)
            connection.execute(
                delete(sign_in_attempts).where(sign_in_attempts.c.at < now - dt.timedelta(seconds=self.rules.kept))
            )

    def succeeded(self, username: str, address: str) -> None:
        """The operator is in from ``address``: their backoff there starts over (the address count stays)."""
        _, _, (scope, key) = self._keys(username, address)
        with self.engine.begin() as connection:
            connection.execute(
                delete(sign_in_attempts).where(and_(sign_in_attempts.c.scope == scope, sign_in_attempts.c.key == key))
            )


def _seconds(then: Any, now: dt.datetime) -> float:
    """``then`` (as stored: naive UTC, or aware) minus ``now``, in seconds."""
    if then is None:
        return 0.0
    return (as_utc(then) - now).total_seconds()


def retry_after(seconds: float) -> str:
    """A Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


# --- the client's address ---------------------------------------------------------------------


def trusted_proxies(value: Optional[str]) -> Tuple[Network, ...]:
    """BACKLINE_TRUSTED_PROXIES (``10.0.0.5, 10.1.0.0/16, ::1``) as networks; ValueError names a bad one."""
    found = []
    for item in (value or "").split(","):
        item = item.strip()
        if item:
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{ENV_TRUSTED_PROXIES}: {item[:64]!r} is not an address or network") from None
    return tuple(found)


def _ip(text: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:80``, ``::1``), else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Any, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address.version == net.version and address in net for net in proxies)


def _name(address: Any, raw: str) -> str:
    """What an address is counted as: IPv4 as is, IPv6 by its /64 (one subscriber's block)."""
    if address is None:
        return raw.strip()[:64] or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_address(peer: Optional[str], forwarded: Iterable[str], proxies: Sequence[Network]) -> str:
    """The address a sign-in is counted for: ``peer``, unless it is one of ``proxies``; then the
    last hop of the X-Forwarded-For headers (``forwarded``, in order) that is not a trusted proxy."""
    own = _ip(peer or "")
    if not _trusted(own, proxies):
        return _name(own, peer or "")
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _ip(hop)
        if not _trusted(address, proxies):
            return _name(address, hop)
    return _name(_ip(hops[0]), hops[0]) if hops else _name(own, peer or "")


# --- the password pool ------------------------------------------------------------------------


class PoolFull(Exception):
    """Every password worker is busy and the queue is full: refuse now, the client retries."""


def hashing_workers(cores: Optional[int] = None) -> int:
    """Threads for password hashing on a machine with ``cores`` (default: this one's): one core left to
    the event loop, at least one thread, at most two."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(2, cores - 1))


class PasswordPool:
    """``workers`` threads for password hashing (default: `hashing_workers`) with at most ``queue``
    checks waiting; more: `PoolFull`."""

    def __init__(self, workers: Optional[int] = None, queue: int = 4) -> None:
        workers = workers if workers is not None else hashing_workers()
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backline-password")
        self._lock = threading.Lock()
        self._busy = 0

    @property
    def busy(self) -> int:
        """Checks running or waiting now."""
        return self._busy

    def _done(self, _: Any) -> None:
        with self._lock:
            self._busy -= 1

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` on the pool; `PoolFull` at once when it is full. A check whose client went
        away still finishes (and frees its place) in the pool."""
        with self._lock:
            if self._busy >= self.capacity:
                raise PoolFull()
            self._busy += 1
        try:
            future = self._executor.submit(work, *args)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
