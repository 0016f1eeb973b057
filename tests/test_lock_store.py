"""The atomic Redis ticket lock store against a real redis-server: two store instances (two Rasa
servers) contending for one conversation, loading from an endpoint config, a dead holder's expiry."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, Set
from urllib.parse import urlparse

import pytest
import redis
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from backline.rasa.lock_store import AtomicRedisLockStore
from tests.channel_servers import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def stock_store(url: str) -> LockStore:
    """Rasa 3.6's own RedisLockStore on the same server."""
    parts = urlparse(url)
    return RedisLockStore(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=int(parts.path[1:] or 0))


def atomic_store(url: str) -> LockStore:
    return AtomicRedisLockStore(url=url)


@dataclass
class Contention:
    """What the contending workers saw."""

    duplicate_tickets: int = 0
    lock_errors: int = 0
    stuck: int = 0
    max_holders: int = 0
    completed: int = 0
    guard: threading.Lock = field(default_factory=threading.Lock)
    live: Set[int] = field(default_factory=set)
    holders: int = 0


def contend(
    make_store: Callable[[str], LockStore], url: str, workers: int = 8, rounds: int = 25, patience: float = 8
) -> Contention:
    """`workers` threads on two store instances (two Rasa servers) handle one conversation at once.

    Half of each thread's rounds issue and clean up a ticket directly (a ticket number that is live
    twice at the same time is a duplicate); the other half take Rasa's `lock()` around a critical
    section that counts its holders (more than one is an overlap; a `LockError` is a failed message,
    waiting past the ticket lifetime a message stuck behind a lost ticket).
    """
    stores = [make_store(url), make_store(url)]
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    seen = Contention()

    def tickets(store: LockStore) -> None:
        ticket = store.issue_ticket(conversation, 5)
        with seen.guard:
            if ticket in seen.live:
                seen.duplicate_tickets += 1
            seen.live.add(ticket)
        time.sleep(0.001)
        with seen.guard:
            seen.live.discard(ticket)
        store.cleanup(conversation, ticket)

    async def critical(store: LockStore) -> None:
        try:
            async with store.lock(conversation, lock_lifetime=5, wait_time_in_seconds=0.005):
                with seen.guard:
                    seen.holders += 1
                    seen.max_holders = max(seen.max_holders, seen.holders)
                await asyncio.sleep(0.002)
                with seen.guard:
                    seen.holders -= 1
        except LockError:
            with seen.guard:
                seen.lock_errors += 1

    def worker(index: int) -> None:
        store = stores[index % 2]
        for round_ in range(rounds):
            if round_ % 2:
                tickets(store)
            else:
                try:
                    asyncio.run(asyncio.wait_for(critical(store), timeout=patience))
                except asyncio.TimeoutError:  # waiting for a ticket that was lost
                    with seen.guard:
                        seen.stuck += 1
            with seen.guard:
                seen.completed += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return seen


def test_two_instances_contending_never_share_a_ticket_lose_a_lock_or_overlap(redis_url: str) -> None:
    seen = contend(atomic_store, redis_url)

    assert (seen.duplicate_tickets, seen.lock_errors, seen.stuck) == (0, 0, 0)
    assert (seen.max_holders, seen.completed) == (1, 8 * 25)
    assert redis.Redis.from_url(redis_url).keys("lock:conv-*") == []  # the last cleanup deleted the lock


def test_rasas_redis_lock_store_fails_the_same_contention(redis_url: str) -> None:
    """The scenario above is a real test: Rasa's store shows a duplicate ticket, a lost lock or an
    overlap (in 5 of 5 runs while this was written: 5 to 11 duplicate tickets, up to 5 holders at
    once, and 16 to 38 messages stuck behind a lost ticket, not counted here)."""
    seen = contend(stock_store, redis_url, rounds=10, patience=2)

    assert seen.duplicate_tickets + seen.lock_errors + (seen.max_holders > 1) > 0, seen


def test_tickets_are_rasas_json_and_the_key_expires_with_a_margin(redis_url: str) -> None:
    store = AtomicRedisLockStore(url=redis_url, key_prefix="backline", ttl_margin=5)
    client = redis.Redis.from_url(redis_url)

    assert [store.issue_ticket("ada", 30), store.issue_ticket("ada", 30)] == [0, 1]

    stored = json.loads(client.get("backline:lock:ada"))
    assert stored["conversation_id"] == "ada"
    assert [json.loads(t)["number"] for t in stored["tickets"]] == [0, 1]
    assert 33_000 < client.pttl("backline:lock:ada") <= 35_000  # the latest ticket's 30 s + 5 s
    lock = store.get_lock("ada")
    assert lock is not None and lock.now_serving == 0 and lock.last_issued == 1

    store.cleanup("ada", 0)
    lock = store.get_lock("ada")
    assert lock is not None and [t.number for t in lock.tickets] == [1]
    store.cleanup("ada", 1)
    assert client.exists("backline:lock:ada") == 0


def test_a_dead_holders_ticket_expires_and_the_next_one_is_served(redis_url: str) -> None:
    dead, alive = AtomicRedisLockStore(url=redis_url, ttl_margin=1), AtomicRedisLockStore(url=redis_url)
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    assert dead.issue_ticket(conversation, lock_lifetime=1) == 0  # then killed with kill -9: no cleanup

    async def next_message() -> float:
        started = time.monotonic()
        async with alive.lock(conversation, lock_lifetime=10, wait_time_in_seconds=0.05) as lock:
            assert lock.now_serving == 1
        return time.monotonic() - started

    waited = asyncio.run(next_message())

    assert 0.5 < waited < 3
    assert alive.get_lock(conversation) is None  # cleaned up after the second message


def test_a_lock_no_one_comes_back_to_disappears(redis_url: str) -> None:
    store = AtomicRedisLockStore(url=redis_url, ttl_margin=0.5)
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    store.issue_ticket(conversation, lock_lifetime=0.5)

    assert store.get_lock(conversation) is not None
    time.sleep(1.5)  # the 0.5 s lifetime + 0.5 s margin
    assert redis.Redis.from_url(redis_url).exists(f"lock:{conversation}") == 0
    assert store.get_lock(conversation) is None


def test_it_loads_from_an_endpoint_config_as_rasa_builds_it(redis_url: str) -> None:
    config = EndpointConfig.from_dict(
        {
            "type": "backline.rasa.lock_store.AtomicRedisLockStore",
            "url": redis_url,
            "key_prefix": "backline",
            "socket_timeout": 3,
        }
    )

    store = LockStore.create(config)

    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix == "backline:lock:"
    assert store.red.connection_pool.connection_kwargs["socket_timeout"] == 3.0
    assert store.issue_ticket("loaded") == 0
    assert redis.Redis.from_url(redis_url).exists("backline:lock:loaded") == 1
    store.cleanup("loaded", 0)


def test_without_a_url_it_reads_backline_redis_url(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKLINE_REDIS_URL", redis_url)
    store = LockStore.create(EndpointConfig(type="backline.rasa.lock_store.AtomicRedisLockStore"))
    assert isinstance(store, AtomicRedisLockStore) and store.key_prefix == "lock:"
    assert store.issue_ticket("from-env") == 0
    store.cleanup("from-env", 0)

    monkeypatch.delenv("BACKLINE_REDIS_URL")
    with pytest.raises(ValueError, match="needs a Redis URL"):
        AtomicRedisLockStore()


def test_a_redis_that_is_down_is_a_lock_error() -> None:
    store = AtomicRedisLockStore(url="redis://127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(LockError, match="Error while acquiring lock"):
        store.issue_ticket("ada")


# --- tickets kept alive by their holders -----------------------------------------------------------


async def _wait_behind_a_dead_holder(store: LockStore, url: str, lifetime: float) -> float:
    """A dead server's ticket (issued, never renewed, never cleaned up), then a message on ``store``
    issued right after it; the seconds until that message gets the lock."""
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    atomic_store(url).issue_ticket(conversation, lifetime)  # the server that was killed
    started = time.monotonic()
    async with store.lock(conversation, lock_lifetime=lifetime):
        return time.monotonic() - started


def test_a_message_behind_a_dead_servers_ticket_goes_on_after_its_lifetime(redis_url: str) -> None:
    waited = asyncio.run(asyncio.wait_for(_wait_behind_a_dead_holder(atomic_store(redis_url), redis_url, 1.0), 10))
    assert 0.9 <= waited < 2.5


def test_rasas_store_hangs_a_message_whose_ticket_expired_while_waiting(redis_url: str) -> None:
    # Rasa's waiter looks once a second; by then its own ticket has expired with the dead one's, and
    # the lock (still there, with no ticket) stays "locked" for it for good.
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(_wait_behind_a_dead_holder(stock_store(redis_url), redis_url, 1.0), 6))


def test_a_live_turn_longer_than_the_lifetime_keeps_the_next_one_out(redis_url: str) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    first, second = atomic_store(redis_url), atomic_store(redis_url)
    spans = {}

    async def turn(store: LockStore, name: str, hold: float, delay: float) -> None:
        await asyncio.sleep(delay)
        async with store.lock(conversation, lock_lifetime=0.6):
            began = time.monotonic()
            await asyncio.sleep(hold)
            spans[name] = (began, time.monotonic())

    async def both() -> None:
        await asyncio.gather(turn(first, "long", 2.0, 0), turn(second, "next", 0.1, 0.1))

    asyncio.run(both())
    assert spans["next"][0] >= spans["long"][1]  # no overlap though the turn lasted 3 lifetimes


def test_a_waiter_whose_ticket_is_gone_fails_at_once_instead_of_hanging(redis_url: str) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    store = atomic_store(redis_url)
    client = redis.Redis.from_url(redis_url)

    async def wait_then_lose_the_lock() -> None:
        store.issue_ticket(conversation, 30)  # someone else holds it

        async def drop() -> None:
            await asyncio.sleep(0.3)
            client.delete(store.key_prefix + conversation)  # as if every ticket had expired

        dropper = asyncio.ensure_future(drop())
        async with store.lock(conversation, lock_lifetime=30):
            pass
        await dropper

    started = time.monotonic()
    with pytest.raises(LockError, match="expired while it waited"):
        asyncio.run(asyncio.wait_for(wait_then_lose_the_lock(), 5))
    assert time.monotonic() - started < 2
