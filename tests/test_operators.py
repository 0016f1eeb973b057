"""Sign-in limits, the client address and the password pool (`backline.hub.sign_in`), and the sign-in
settings, CSRF token and demo password of `backline.hub.operators`, as units on real databases
(SQLite and PostgreSQL: the limits are shared by every hub on one database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import threading
import time
from typing import Iterator, List, Tuple

import pytest
from sqlalchemy import func, select

from backline.consult.schema import sign_in_attempts
from backline.consult.store import ConsultationStore
from backline.hub.operators import (
    DEMO_PASSWORD,
    Settings,
    csrf_token,
    csrf_valid,
    demo_refused,
    sign_session,
)
from backline.hub.sign_in import (
    PasswordPool,
    PoolFull,
    Rules,
    SignInLimits,
    client_address,
    hashing_workers,
    retry_after,
    trusted_proxies,
)

KEY = b"test-dashboard-secret"
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def two_hubs(db_url: str) -> Iterator[Tuple[SignInLimits, SignInLimits, Clock]]:
    """Two hubs' limits over one database (each its own store, engine and connections)."""
    clock = Clock()
    with ConsultationStore(db_url) as first, ConsultationStore(db_url) as second:
        yield SignInLimits(first.engine, KEY, clock=clock), SignInLimits(second.engine, KEY, clock=clock), clock


def rows(limits: SignInLimits) -> List[Tuple[str, str]]:
    with limits.engine.connect() as connection:
        return [(r.scope, r.key) for r in connection.execute(select(sign_in_attempts))]


def test_failures_counted_by_one_hub_limit_the_other(two_hubs: Tuple[SignInLimits, SignInLimits, Clock]) -> None:
    first, second, clock = two_hubs
    for n in range(20):
        (first if n % 2 else second).failed(f"user-{n}", "198.51.100.7")  # 20 usernames, one address
        clock.advance(1)
    assert first.wait("someone", "198.51.100.7") == second.wait("anyone", "198.51.100.7") == 900 - 20
    assert first.wait("someone", "198.51.100.8") == 0  # another address
    clock.advance(900 - 20)  # the oldest failure leaves the window
    assert second.wait("someone", "198.51.100.7") == 0


def test_guessing_one_user_from_one_address_backs_off_exponentially_there_only(
    two_hubs: Tuple[SignInLimits, SignInLimits, Clock],
) -> None:
    first, second, clock = two_hubs
    waits = []
    for _ in range(8):
        first.failed("Jonas", "203.0.113.9")
        waits.append(second.wait(" jonas ", "203.0.113.9"))  # the same account, however typed
        clock.advance(waits[-1])
    assert waits == [0, 0, 5, 10, 20, 40, 80, 160]
    assert second.wait("jonas", "203.0.113.10") == 0  # jonas from his own address: no wait at all
    assert second.wait("mara", "203.0.113.9") == 0
    first.succeeded("jonas", "203.0.113.9")  # a success from that address starts the backoff over
    assert second.wait("jonas", "203.0.113.9") == 0


def test_the_backoff_stops_at_its_maximum(two_hubs: Tuple[SignInLimits, SignInLimits, Clock]) -> None:
    first, _, clock = two_hubs
    limits = SignInLimits(first.engine, KEY, Rules(address_failures=100), clock=clock)
    for _ in range(12):
        limits.failed("jonas", "203.0.113.9")
    assert limits.wait("jonas", "203.0.113.9") == 900


def test_over_the_overall_ceiling_each_address_may_fail_once(
    two_hubs: Tuple[SignInLimits, SignInLimits, Clock],
) -> None:
    first, _, clock = two_hubs
    limits = SignInLimits(first.engine, KEY, Rules(overall_failures=10), clock=clock)
    for n in range(10):
        limits.failed("petra", f"192.0.2.{n}")  # a botnet: ten addresses, one guess each
    assert limits.wait("petra", "192.0.2.1") == 900  # a failed address waits out the window
    assert limits.wait("petra", "192.0.2.200") == 0  # an address without a failure (Petra's own) still tries
    limits.failed("petra", "192.0.2.200")
    assert limits.wait("petra", "192.0.2.200") == 900


def test_keys_are_hashed_and_old_rows_pruned(two_hubs: Tuple[SignInLimits, SignInLimits, Clock]) -> None:
    first, second, clock = two_hubs
    first.failed("jonas.weber", "198.51.100.23")
    stored = rows(first)
    assert sorted(scope for scope, _ in stored) == ["address", "all", "user_address"]
    assert all(len(key) == 64 and int(key, 16) >= 0 for _, key in stored)
    assert not any("jonas" in key or "198.51" in key for _, key in stored)
    assert first.key("address", "198.51.100.23") != SignInLimits(first.engine, b"other secret").key(
        "address", "198.51.100.23"
    )  # without the secret, a hash cannot be matched to an address
    clock.advance(1800)
    second.failed("mara", "198.51.100.24")
    assert len(rows(first)) == 6  # within the backoff window (1 hour) both failures stay
    clock.advance(3601)
    second.failed("mara", "198.51.100.24")
    assert len(rows(first)) == 3  # older than every window: deleted with the next failure


def test_under_a_flood_the_table_keeps_only_the_last_hour(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    rules = Rules(overall_failures=50)
    counted: List[dt.datetime] = []
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        limits = SignInLimits(store.engine, KEY, rules, clock=clock)
        for n in range(2000):  # 2,000 tries over 100 minutes, half of them from 20 busy addresses
            address = f"10.{n // 250}.{n % 250}.1" if n % 2 else f"10.200.0.{n % 20}"
            if limits.wait(f"user{n}", address) == 0:  # as the hub does: a refused try is not counted
                limits.failed(f"user{n}", address)
                counted.append(clock())
            clock.advance(3)
        with store.engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(sign_in_attempts)).scalar_one()
    recent = [at for at in counted if at >= counted[-1] - dt.timedelta(seconds=rules.kept)]
    assert 1000 < len(counted) < 2000  # the busy addresses were refused once over their limits
    assert stored == 3 * len(recent) < 3 * len(counted)  # pruned to the last hour's failures, three rows each


@pytest.mark.parametrize(
    "peer, forwarded, proxies, expected",
    [
        ("198.51.100.7", [], "", "198.51.100.7"),
        ("198.51.100.7", ["203.0.113.1"], "", "198.51.100.7"),  # an untrusted peer cannot name another client
        ("10.0.0.5", ["203.0.113.1"], "10.0.0.5", "203.0.113.1"),
        ("10.0.0.5", ["1.1.1.1, 203.0.113.1"], "10.0.0.5", "203.0.113.1"),  # the client's own spoofed hop is ignored
        ("10.0.0.5", ["1.1.1.1, 203.0.113.1, 10.1.2.3"], "10.0.0.0/8", "203.0.113.1"),  # two proxies
        ("10.0.0.5", ["1.1.1.1", "203.0.113.1"], "10.0.0.5", "203.0.113.1"),  # several headers: in order
        ("10.0.0.5", [], "10.0.0.5", "10.0.0.5"),
        ("10.0.0.5", ["10.0.0.7"], "10.0.0.0/8", "10.0.0.7"),  # every hop trusted: the first
        ("10.0.0.5", ["203.0.113.1:41234"], "10.0.0.5", "203.0.113.1"),
        ("::ffff:10.0.0.5", ["[2001:db8:1:2:3:4:5:6]:443"], "10.0.0.5", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::99", [], "", "2001:db8:1:2::/64"),  # IPv6: one subscriber's /64 is one address
        ("::1", ["garbage"], "::1", "garbage"),
        ("127.0.0.1", ["203.0.113.1"], "10.0.0.0/8", "127.0.0.1"),
    ],
)
def test_the_client_address_behind_trusted_proxies(
    peer: str, forwarded: List[str], proxies: str, expected: str
) -> None:
    assert client_address(peer, forwarded, trusted_proxies(proxies)) == expected


def test_settings_come_from_the_environment_and_refuse_nonsense() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env(
        {
            "BACKLINE_DEMO": "1",
            "BACKLINE_COOKIE_SECURE": "1",
            "BACKLINE_DASHBOARD_ORIGIN": "https://Support.Example/, https://ops.example:8443",
            "BACKLINE_TRUSTED_PROXIES": "10.0.0.5, 172.16.0.0/12",
        }
    )
    assert (settings.demo, settings.cookie_secure) == (True, True)
    assert settings.origins == ("https://support.example", "https://ops.example:8443")
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("172.16.0.0/12"))
    assert Settings.from_env({"BACKLINE_DEMO": "yes"}).demo is False  # only 1 turns the demo on
    for bad in (
        {"BACKLINE_TRUSTED_PROXIES": "10.0.0.5, proxy.local"},
        {"BACKLINE_DASHBOARD_ORIGIN": "support.example"},
        {"BACKLINE_DASHBOARD_ORIGIN": "https://support.example/dashboard"},
    ):
        with pytest.raises(ValueError, match="BACKLINE_"):
            Settings.from_env(bad)


def test_the_demo_password_is_refused_unless_the_demo_is_on() -> None:
    assert demo_refused(DEMO_PASSWORD, demo=False) and not demo_refused(DEMO_PASSWORD, demo=True)
    assert not demo_refused("a real passphrase", demo=False) and not demo_refused("kestrel-demo ", demo=False)


def test_the_csrf_token_belongs_to_one_session() -> None:
    session = sign_session(KEY, "mara", now=1000)
    token = csrf_token(KEY, session)
    assert csrf_valid(KEY, session, token)
    assert not csrf_valid(KEY, sign_session(KEY, "mara", now=1001), token)  # a new sign-in, a new token
    assert not csrf_valid(KEY, session, csrf_token(b"another secret", session))
    assert not any(csrf_valid(KEY, s, t) for s, t in ((session, ""), (session, None), ("", token), (None, token)))


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(s) for s in (0.01, 1, 4.2, 900)] == ["1", "1", "5", "900"]


def test_password_hashing_leaves_a_core_to_the_event_loop() -> None:
    assert [hashing_workers(n) for n in (1, 2, 3, 8, 64)] == [1, 1, 2, 2, 2]
    assert PasswordPool(queue=4).capacity == hashing_workers() + 4


def test_a_full_password_pool_refuses_at_once_and_frees_its_places() -> None:
    release = threading.Event()

    def check() -> str:
        release.wait(10)
        return "checked"

    async def scenario() -> Tuple[List[str], float, int, int]:
        pool = PasswordPool(workers=2, queue=1)
        running = [asyncio.ensure_future(pool.run(check)) for _ in range(3)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(PoolFull):
            await pool.run(check)
        refused_in = time.monotonic() - started
        running[0].cancel()  # a client that went away: its check still holds a place until it ends
        busy_while_running = pool.busy
        release.set()
        results = await asyncio.gather(*running[1:])
        await asyncio.sleep(0.05)
        after = pool.busy
        assert await pool.run(lambda: "again") == "again"
        pool.shutdown()
        return results, refused_in, busy_while_running, after

    results, refused_in, busy, after = asyncio.run(scenario())
    assert results == ["checked", "checked"] and refused_in < 0.05
    assert (busy, after) == (3, 0)
