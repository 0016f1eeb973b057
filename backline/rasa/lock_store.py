"""A Redis ticket lock store whose every read-modify-write is atomic, for several Rasa servers.

Rasa 3.6's `RedisLockStore` keeps a conversation's `TicketLock` as JSON under ``lock:<id>`` and
changes it with separate GET and SET calls: issuing a ticket (get, append, save), cleaning up
(get, remove the ticket, save; get again, delete when no one waits) and dropping expired tickets
while waiting. Two Rasa instances handling the same conversation at once can both read the same
lock and both write it: they issue the same ticket number (both process the conversation at the
same time and the tracker loses events), or one's save or delete overwrites the ticket the other
has just issued (the waiter then finds the lock gone and Rasa raises `LockError`: the message fails).

Rasa also lets a ticket expire on a timer alone (TICKET_LOCK_LIFETIME after it was issued), whether
its holder is dead or just slow: a message that waits behind a dead server's ticket for about as
long as its own lifetime finds its own ticket expired too, and then waits forever (the lock is
there, with no ticket of its, so it is "locked" for good); a live turn that takes longer than the
lifetime lets the next one in beside it.

`AtomicRedisLockStore` does each of these changes in one optimistic transaction (WATCH the key,
read, change the `TicketLock` with Rasa's own code, MULTI/SET-or-DEL/EXEC; retried when another
client changed the key in between), so the ticket semantics and the JSON stored are Rasa's. Every
write gives the key a TTL: the latest ticket's expiry plus a margin (60 s by default). A Rasa
process killed with ``kill -9`` leaves its ticket behind; it expires after its lifetime
(TICKET_LOCK_LIFETIME, Rasa's default 60 s) and the next ticket is served, and a lock no one
comes back to disappears by itself instead of lingering in Redis.

Tickets here are kept alive by whoever holds them: a waiter renews its ticket each time it looks
(every 0.1 s at most), a holder every third of the lifetime while it processes (`lock`). So only the
ticket of a process that died (or froze for a whole lifetime) expires, and the lifetime can be short:
the scale profile uses 15 s, so a conversation whose turn was on a server killed with kill -9 goes on
within about 15 s. A waiter whose ticket is gone all the same gets `LockError` at once (the client
re-sends; the REST channel's ``message_id`` makes that harmless) instead of hanging.

endpoints.yml::

    lock_store:
      type: backline.rasa.lock_store.AtomicRedisLockStore
      url: ${BACKLINE_REDIS_URL}     # redis://[:password@]host:port/db, rediss:// for TLS
      key_prefix: backline           # optional, alphanumeric (as Rasa's): keys are backline:lock:<id>
      socket_timeout: 10             # optional, seconds

Rasa builds a custom lock store as ``AtomicRedisLockStore(endpoint_config=...)``; tests and code
may also pass ``url=``, ``key_prefix=``, ``socket_timeout=``, ``ttl_margin=`` directly. Without a
URL anywhere, BACKLINE_REDIS_URL is used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Callable, Optional, Text, Tuple

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX,
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
    RedisLockStore,
)
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

ENV_REDIS_URL = "BACKLINE_REDIS_URL"
DEFAULT_TTL_MARGIN = 60.0
"""Seconds a lock key outlives its latest ticket's expiry."""
POLL_SECONDS = 0.1
"""A waiter looks at the lock (and renews its ticket) at least this often."""
MAX_ATTEMPTS = 200
"""Optimistic transactions retried this often (with a short random pause) before `LockError`."""

_KEEP, _SAVE, _DELETE = "keep", "save", "delete"
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], str, Any]]
"""A change to a lock: given the stored lock (or None), the lock to store, what to do with it
(`_KEEP` the key as it is, `_SAVE` the lock, `_DELETE` the key) and the value to return."""


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's `RedisLockStore` with atomic ticket changes and expiring keys (see the module docstring)."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        *,
        url: Optional[Text] = None,
        key_prefix: Optional[Text] = None,
        socket_timeout: Optional[float] = None,
        ttl_margin: Optional[float] = None,
    ) -> None:
        options = dict(endpoint_config.kwargs) if endpoint_config is not None else {}
        url = url or (endpoint_config.url if endpoint_config is not None else None) or os.environ.get(ENV_REDIS_URL)
        if not url:
            raise ValueError(f"AtomicRedisLockStore needs a Redis URL: `url` in endpoints.yml or {ENV_REDIS_URL}")
        timeout = float(socket_timeout or options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_IN_SECONDS)
        self.ttl_margin = float(ttl_margin if ttl_margin is not None else options.get("ttl_margin", DEFAULT_TTL_MARGIN))
        if "://" not in url:  # a bare host, as Rasa's `redis` type takes it
            url = f"redis://{url}:{int(options.get('port', 6379))}/{int(options.get('db', 1))}"
        self.red = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **({"password": options["password"]} if options.get("password") else {}),
        )
        self.key_prefix = DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX
        prefix = key_prefix or options.get("key_prefix")
        if prefix:
            self._set_key_prefix(str(prefix))
        LockStore.__init__(self)

    # --- the atomic changes -------------------------------------------------------------------

    def _ttl_ms(self, lock: TicketLock) -> int:
        latest = max((ticket.expires for ticket in lock.tickets), default=time.time())
        return max(1000, int((latest - time.time() + self.ttl_margin) * 1000))

    def _atomically(self, conversation_id: Text, change: Change) -> Any:
        """Applies `change` to the stored lock in one WATCH/MULTI/EXEC transaction, retried on conflict."""
        key = self.key_prefix + conversation_id
        for attempt in range(MAX_ATTEMPTS):
            with self.red.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    stored = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(stored)) if stored else None
                    new_lock, action, result = change(lock)
                    if action == _KEEP:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    if action == _SAVE and new_lock is not None:
                        pipe.set(key, new_lock.dumps(), px=self._ttl_ms(new_lock))
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise LockError(f"Lock for conversation '{conversation_id}' kept changing: gave up after {MAX_ATTEMPTS} tries.")

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issues the next ticket (creating the lock if there is none) in one transaction."""
        logger.debug(f"Issuing ticket for conversation '{conversation_id}'.")

        def issue(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], str, Any]:
            lock = lock or self.create_lock(conversation_id)
            return lock, _SAVE, lock.issue_ticket(lock_lifetime)

        try:
            return int(self._atomically(conversation_id, issue))
        except LockError:
            raise
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket from the lock in one transaction."""

        def finish(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], str, Any]:
            if lock is None:
                return None, _KEEP, None
            lock.remove_ticket_for(ticket_number)
            return lock, _SAVE, None

        self._atomically(conversation_id, finish)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Removes the ticket, and the lock when no one else holds a ticket, in one transaction."""

        def clean(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], str, Any]:
            if lock is None:
                return None, _KEEP, False
            lock.remove_ticket_for(ticket_number)  # also drops expired tickets
            if lock.is_someone_waiting():
                return lock, _SAVE, False
            return None, _DELETE, True

        if self._atomically(conversation_id, clean):
            self._log_deletion(conversation_id, True)

    def update_lock(self, conversation_id: Text) -> None:
        """Drops the lock's expired tickets in one transaction (a waiter does this between tries)."""

        def update(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], str, Any]:
            if lock is None:
                return None, _KEEP, None
            lock.remove_expired_tickets()
            return lock, _SAVE, None

        self._atomically(conversation_id, update)

    def save_lock(self, lock: TicketLock) -> None:
        """Stores `lock` with its TTL (used only outside the atomic paths, as Rasa's API allows)."""
        self.red.set(self.key_prefix + lock.conversation_id, lock.dumps(), px=self._ttl_ms(lock))

    # --- tickets kept alive by their holders ---------------------------------------------------

    def renew(self, conversation_id: Text, ticket_number: int, lifetime: float) -> Optional[TicketLock]:
        """Extends ticket ``ticket_number`` to ``lifetime`` from now and drops expired ones, in one
        transaction; the lock as stored, or None when the ticket is gone (it expired)."""

        def extend(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], str, Any]:
            if lock is None:
                return None, _KEEP, None
            lock.remove_expired_tickets()
            mine = next((ticket for ticket in lock.tickets if ticket.number == ticket_number), None)
            if mine is None:
                return lock, _SAVE, None
            mine.expires = max(mine.expires, time.time() + lifetime)
            return lock, _SAVE, lock

        return self._atomically(conversation_id, extend)

    @asynccontextmanager
    async def lock(
        self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncGenerator[TicketLock, None]:
        """Rasa's `LockStore.lock`, with the ticket renewed while it waits and while it is held."""
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            acquired = await self._wait_for_turn(conversation_id, ticket, lock_lifetime, wait_time_in_seconds)
            heartbeat = asyncio.ensure_future(self._keep_alive(conversation_id, ticket, lock_lifetime))
            try:
                yield acquired
            finally:
                heartbeat.cancel()
        finally:
            self.cleanup(conversation_id, ticket)

    async def _wait_for_turn(self, conversation_id: Text, ticket: int, lifetime: float, wait: float) -> TicketLock:
        poll = min(wait, POLL_SECONDS) if wait > 0 else POLL_SECONDS
        while True:
            lock = self.renew(conversation_id, ticket, lifetime)
            if lock is None:
                raise LockError(
                    f"Ticket {ticket} for conversation '{conversation_id}' expired while it waited "
                    f"(this process stalled for over {lifetime:g} s)."
                )
            if not lock.is_locked(ticket):
                logger.debug(f"Acquired lock for conversation '{conversation_id}'.")
                return lock
            await asyncio.sleep(poll)

    async def _keep_alive(self, conversation_id: Text, ticket: int, lifetime: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, lifetime / 3))
            try:
                self.renew(conversation_id, ticket, lifetime)
            except Exception as error:  # Redis away for a moment: the next beat tries again
                logger.warning(
                    "Could not renew the lock of conversation '%s': %s", conversation_id, type(error).__name__
                )
