"""What the hub's Slack and Telegram inbound need from the consultation store: webhook delivery keys
(each platform delivery applied once, `claim_webhook_key`) and expert threads (which consultation a
message in a Slack channel or Telegram chat is about, `ExpertThreads.link_thread` / `find_thread`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from backline.consult.rows import checked_text
from backline.consult.schema import expert_threads, webhook_deliveries
from backline.consult.transactions import StoreBase
from backline.utc import as_utc

WEBHOOK_KEY_TTL = timedelta(days=1)
"""How long a webhook delivery key is remembered: longer than Slack's retries (minutes) and
Telegram's re-deliveries (hours)."""
WEBHOOK_KEY_LIMIT = webhook_deliveries.c.key.type.length


def claim_webhook_key(connection: Connection, key: str, now: datetime, ttl: timedelta = WEBHOOK_KEY_TTL) -> bool:
    """Record a webhook delivery key in the open transaction; True when it is new (or its record
    expired), False for a duplicate. One INSERT ... ON CONFLICT DO UPDATE: of two concurrent
    deliveries of one key exactly one gets True; if the transaction rolls back, so does the key."""
    if not isinstance(key, str) or not key or len(key) > WEBHOOK_KEY_LIMIT:
        raise ValueError(f"a delivery key is a non-empty string of at most {WEBHOOK_KEY_LIMIT} characters; got {key!r}")
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(webhook_deliveries).values(key=key, seen_at=as_utc(now))
    upsert = insert.on_conflict_do_update(
        index_elements=[webhook_deliveries.c.key],
        set_={"seen_at": insert.excluded.seen_at},
        where=webhook_deliveries.c.seen_at <= as_utc(now) - ttl,
    )
    return connection.execute(upsert).rowcount == 1


class ExpertThreads(StoreBase):
    """Webhook keys and expert threads in the store's database (part of `ConsultationStore`)."""

    def claim_webhook_key(self, key: str, *, at: Optional[datetime] = None, ttl: timedelta = WEBHOOK_KEY_TTL) -> bool:
        """`claim_webhook_key` in this store's database (inside `transaction` when one is open)."""
        with self._write() as connection:
            return claim_webhook_key(connection, key, self._now(at), ttl)

    def link_thread(
        self, consultation_id: str, channel: str, address: str, message_id: str, *, at: Optional[datetime] = None
    ) -> None:
        """Remember that message ``message_id`` in ``address`` (a Slack channel, a Telegram chat) on
        ``channel`` is about the consultation; linking the same message again changes nothing."""
        values = {
            "consultation_id": consultation_id,
            "channel": checked_text("channel", channel, 32),
            "address": checked_text("address", str(address), 128),
            "message_id": checked_text("message_id", str(message_id), 64),
            "at": self._now(at),
        }
        with self._write() as connection:
            self._locked(connection, consultation_id)
            found = connection.execute(
                select(expert_threads.c.id).where(
                    expert_threads.c.channel == values["channel"],
                    expert_threads.c.address == values["address"],
                    expert_threads.c.message_id == values["message_id"],
                )
            ).first()
            if found is None:
                connection.execute(expert_threads.insert().values(**values))

    def find_thread(self, channel: str, address: str, message_id: str) -> Optional[str]:
        """The consultation linked to that message (`link_thread`), or None."""
        statement = select(expert_threads.c.consultation_id).where(
            expert_threads.c.channel == channel,
            expert_threads.c.address == str(address),
            expert_threads.c.message_id == str(message_id),
        )
        with self._read() as connection:
            return connection.execute(statement).scalar()
