"""De-duplication of webhook deliveries: Slack retries an event (same ``event_id``), a button click
can arrive twice (same user and ``action_ts``), Telegram re-sends an update (same ``update_id``).

`seen_before(key)` records the key and says whether it was already recorded within the TTL, in
one atomic step: of two concurrent deliveries of the same key exactly one gets False.
`MemoryDedupe` serves one process; `SqlDedupe` (SQLite or PostgreSQL) serves several hubs.
A delivery that carries an expert's reply is not marked here but in the transaction that records
the reply (`backline.consult.replies.record_reply`), so a failed apply is applied again on retry.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable, Optional, Union

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from backline.consult.database import database_url, make_engine, migrate
from backline.consult.schema import webhook_deliveries as deliveries
from backline.consult.threads import WEBHOOK_KEY_LIMIT as KEY_LIMIT
from backline.consult.threads import WEBHOOK_KEY_TTL as DEFAULT_TTL
from backline.consult.threads import claim_webhook_key
from backline.utc import as_utc, utcnow


def _check(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > KEY_LIMIT:
        raise ValueError(f"a delivery key is a non-empty string of at most {KEY_LIMIT} characters; got {key!r}")
    return key


class DedupeStore(abc.ABC):
    """Keys seen within ``ttl`` of the ``clock`` (aware UTC datetimes)."""

    def __init__(self, ttl: timedelta = DEFAULT_TTL, clock: Callable[[], datetime] = utcnow) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.clock = clock

    @abc.abstractmethod
    def seen_before(self, key: str) -> bool:
        """Record ``key``; True if it was already recorded less than ``ttl`` ago (then: a duplicate)."""


class MemoryDedupe(DedupeStore):
    """In one process's memory (thread-safe); expired keys are dropped as new ones arrive."""

    def __init__(self, ttl: timedelta = DEFAULT_TTL, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(ttl, clock)
        self._seen: "OrderedDict[str, datetime]" = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: str) -> bool:
        _check(key)
        now = as_utc(self.clock())
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now - self.ttl:
                self._seen.popitem(last=False)
            if key in self._seen:
                return True
            self._seen[key] = now
            return False


class SqlDedupe(DedupeStore):
    """In the ``webhook_deliveries`` table of the consultation store's database (``url`` or ``engine``,
    migrated to head on start; default `database_url()`). One INSERT ... ON CONFLICT DO UPDATE per key: inserted,
    or taken over when expired, means new; a conflict with a live row means seen."""

    def __init__(
        self,
        url: Union[str, Engine, None] = None,
        *,
        ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(ttl, clock)
        self._own_engine = not isinstance(url, Engine)
        self.engine = url if isinstance(url, Engine) else make_engine(url or database_url())
        if self.engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"SqlDedupe supports SQLite and PostgreSQL, not {self.engine.dialect.name}")
        migrate(self.engine)

    def seen_before(self, key: str) -> bool:
        with self.engine.begin() as connection:
            return not claim_webhook_key(connection, key, as_utc(self.clock()), self.ttl)  # checks the key

    def purge(self, now: Optional[datetime] = None) -> int:
        """Delete the expired keys (for a periodic task); how many were deleted."""
        cutoff = as_utc(now or self.clock()) - self.ttl
        with self.engine.begin() as connection:
            return connection.execute(delete(deliveries).where(deliveries.c.seen_at <= cutoff)).rowcount

    def dispose(self) -> None:
        """Close the connection pool if this store opened it."""
        if self._own_engine:
            self.engine.dispose()
