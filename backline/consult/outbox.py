"""The delivery outbox: an expert's reply reaches the customer's conversation at least once, and is
shown at most once.

A reply (or an SLA delay notice) is committed together with a pending `Delivery` in the same
transaction (`enqueue` inside `ConsultationStore.transaction`). The hub's delivery worker claims
due deliveries under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several hubs never
send one twice at the same time), resumes the conversation through Rasa's trigger_intent with the
``delivery_id`` among the entities, and marks it delivered only when the tracker Rasa returns holds
the bot message carrying that id. A retry after a lost answer is harmless: the action on the Rasa
side finds the id in the tracker and says nothing again. Failures back off (1, 2, 4 … 30 s); after
the retry budget the delivery is ``undeliverable``: an alert in the audit trail and on the dashboard,
never a silent "answered". Deliveries of one conversation go out in the order they were recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import and_, not_, or_, select

from backline.consult.records import Delivery
from backline.consult.rows import json_copy
from backline.consult.schema import deliveries
from backline.consult.store import ConsultationStore
from backline.redact import redact


@dataclass(frozen=True)
class RetryBudget:
    """Backoff ``first_delay`` doubling up to ``max_delay`` seconds; given up ``budget`` seconds after
    the delivery was recorded; a claim holds for ``lease`` seconds."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    budget: float = 3600.0
    lease: float = 60.0

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        return timedelta(seconds=min(self.max_delay, self.first_delay * 2 ** max(0, attempts - 1)))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RetryBudget":
        """``BACKLINE_DELIVERY_BUDGET`` (seconds, default 3600), ``BACKLINE_DELIVERY_MAX_DELAY`` (30) and
        ``BACKLINE_DELIVERY_LEASE`` (60)."""
        return cls(
            max_delay=env_seconds(env, "BACKLINE_DELIVERY_MAX_DELAY", 30.0, positive=True),
            budget=env_seconds(env, "BACKLINE_DELIVERY_BUDGET", 3600.0, positive=True),
            lease=env_seconds(env, "BACKLINE_DELIVERY_LEASE", 60.0, positive=True),
        )


def env_seconds(env: Mapping[str, str], name: str, default: float, *, positive: bool = False) -> float:
    """A number of seconds from ``env[name]`` (``default`` when unset): 0 or more, or more than 0 with
    ``positive``; `ValueError` naming the variable otherwise."""
    value = (env.get(name) or "").strip()
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = float("nan")
    if not (seconds > 0 if positive else seconds >= 0):
        raise ValueError(f"{name} must be {'a positive number' if positive else '0 or more'} of seconds, not {value!r}")
    return seconds


def new_delivery_id() -> str:
    """A unique delivery id, e.g. ``d_0c2b71de3f9a4b1e``."""
    return "d_" + uuid.uuid4().hex[:16]


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        consultation_id=row.consultation_id,
        conversation_id=row.conversation_id,
        intent=row.intent,
        entities=row.entities or {},
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        notice=row.notice,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


_older = deliveries.alias("older")
_FIRST_OF_CONVERSATION = not_(
    select(_older.c.id)
    .where(
        _older.c.conversation_id == deliveries.c.conversation_id,
        _older.c.status == "pending",
        or_(
            _older.c.created_at < deliveries.c.created_at,
            and_(_older.c.created_at == deliveries.c.created_at, _older.c.id < deliveries.c.id),
        ),
    )
    .exists()
)
"""No earlier pending delivery for the same conversation: the customer hears replies in order."""


class Outbox:
    """Deliveries in ``store``'s database, retried per ``budget``."""

    def __init__(self, store: ConsultationStore, budget: RetryBudget = RetryBudget()) -> None:
        self.store = store
        self.budget = budget

    def enqueue(
        self,
        consultation_id: str,
        conversation_id: str,
        intent: str,
        entities: Mapping[str, Any],
        *,
        notice: Optional[str] = None,
        at: Optional[datetime] = None,
        actor: str = "system",
        lease_owner: Optional[str] = None,
    ) -> Delivery:
        """A pending delivery (audited ``delivery_queued``); ``entities`` gain its ``delivery_id``.
        Call it inside the transaction that records what is delivered. With ``lease_owner`` it is
        leased to that worker from the start (the hub that records an expert's reply and sends it at
        once): no other round claims it between the commit and that first attempt."""
        store = self.store
        moment = store._now(at)
        delivery_id = new_delivery_id()
        values = {
            "id": delivery_id,
            "consultation_id": consultation_id,
            "conversation_id": conversation_id,
            "intent": intent,
            "entities": json_copy({**dict(entities), "delivery_id": delivery_id}),
            "notice": notice,
            "status": "pending",
            "attempts": 0,
            "created_at": moment,
            "next_attempt_at": moment,
        }
        if lease_owner:
            values.update(lease_owner=lease_owner[:64], lease_until=moment + timedelta(seconds=self.budget.lease))
        with store._write() as connection:
            store._locked(connection, consultation_id)
            connection.execute(deliveries.insert().values(**values))
            store._append(
                connection,
                consultation_id,
                moment,
                actor,
                "delivery_queued",
                {"delivery_id": delivery_id, "intent": intent},
            )
        return Delivery(**values)

    def get(self, delivery_id: str) -> Optional[Delivery]:
        with self.store._read() as connection:
            row = connection.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def for_consultation(self, consultation_id: str) -> List[Delivery]:
        """The consultation's deliveries, oldest first."""
        statement = (
            select(deliveries)
            .where(deliveries.c.consultation_id == consultation_id)
            .order_by(deliveries.c.created_at, deliveries.c.id)
        )
        with self.store._read() as connection:
            return [_delivery(row) for row in connection.execute(statement)]

    def pending(self) -> List[Delivery]:
        """Every delivery not yet confirmed, oldest first."""
        statement = (
            select(deliveries)
            .where(deliveries.c.status == "pending")
            .order_by(deliveries.c.created_at, deliveries.c.id)
        )
        with self.store._read() as connection:
            return [_delivery(row) for row in connection.execute(statement)]

    def undeliverable(self) -> List[Delivery]:
        """Deliveries given up on (alerts), newest first."""
        statement = (
            select(deliveries)
            .where(deliveries.c.status == "undeliverable")
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
        )
        with self.store._read() as connection:
            return [_delivery(row) for row in connection.execute(statement)]

    def claim_due(
        self, owner: str, *, at: Optional[datetime] = None, limit: int = 20, delivery_id: Optional[str] = None
    ) -> List[Delivery]:
        """Lease up to ``limit`` due deliveries (or the one named ``delivery_id``, if due) to ``owner``:
        pending, their time has come, no live lease (but ``owner``'s own, for the one named), and first
        of their conversation. Rows another hub is claiming right now are skipped, not waited for."""
        moment = self.store._now(at)
        free = or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= moment)
        if delivery_id is not None:
            free = or_(free, deliveries.c.lease_owner == owner[:64])
        statement = select(deliveries).where(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= moment,
            free,
            _FIRST_OF_CONVERSATION,
        )
        if delivery_id is not None:
            statement = statement.where(deliveries.c.id == delivery_id)
        statement = (
            statement.order_by(deliveries.c.next_attempt_at, deliveries.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
        )
        until = moment + timedelta(seconds=self.budget.lease)
        with self.store._write() as connection:
            rows = list(connection.execute(statement))
            if rows:
                connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id.in_([r.id for r in rows]))
                    .values(lease_owner=owner[:64], lease_until=until)
                )
            claimed = [_delivery(r) for r in rows]
        return [Delivery(**{**d.__dict__, "lease_owner": owner[:64], "lease_until": until}) for d in claimed]

    def succeeded(self, delivery: Delivery, *, at: Optional[datetime] = None, actor: str = "hub") -> bool:
        """Mark it delivered (audited ``delivered``; a notice also ``customer_delay_told``). False when
        it was no longer pending (another hub confirmed it first): nothing changes."""
        moment = self.store._now(at)
        with self.store._write() as connection:
            self.store._locked(connection, delivery.consultation_id)
            done = (
                connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id == delivery.id, deliveries.c.status == "pending")
                    .values(
                        status="delivered",
                        delivered_at=moment,
                        attempts=deliveries.c.attempts + 1,
                        lease_owner=None,
                        lease_until=None,
                        last_error=None,
                    )
                ).rowcount
                == 1
            )
            if done:
                self.store._append(
                    connection,
                    delivery.consultation_id,
                    moment,
                    actor,
                    "delivered",
                    {"delivery_id": delivery.id, "intent": delivery.intent, "attempts": delivery.attempts + 1},
                )
                if delivery.notice:
                    self.store._append(
                        connection,
                        delivery.consultation_id,
                        moment,
                        actor,
                        "customer_delay_told",
                        {"text": delivery.notice, "delivery_id": delivery.id},
                    )
        return done

    def failed(
        self, delivery: Delivery, error: str, *, at: Optional[datetime] = None, actor: str = "hub"
    ) -> Optional[Delivery]:
        """Record a failed attempt by the lease holder: retry after the backoff, or, past the budget,
        give up (``undeliverable``, audited ``delivery_undeliverable``: an alert). The first failure is
        audited ``delivery_retrying``. None when the lease was lost (another hub took over)."""
        moment = self.store._now(at)
        reason = redact(str(error))[:500]
        attempts = delivery.attempts + 1
        give_up = moment - delivery.created_at >= timedelta(seconds=self.budget.budget)
        next_at = moment + self.budget.delay(attempts)
        values: Dict[str, Any] = {"status": "undeliverable"} if give_up else {"next_attempt_at": next_at}
        with self.store._write() as connection:
            self.store._locked(connection, delivery.consultation_id)
            changed = connection.execute(
                deliveries.update()
                .where(
                    deliveries.c.id == delivery.id,
                    deliveries.c.status == "pending",
                    deliveries.c.lease_owner == delivery.lease_owner,
                )
                .values(attempts=attempts, last_error=reason, lease_owner=None, lease_until=None, **values)
            ).rowcount
            if not changed:
                return None
            detail = {"delivery_id": delivery.id, "intent": delivery.intent, "attempts": attempts, "error": reason}
            if give_up:
                self.store._append(
                    connection,
                    delivery.consultation_id,
                    moment,
                    actor,
                    "delivery_undeliverable",
                    {**detail, "budget_seconds": self.budget.budget},
                )
            elif attempts == 1:
                self.store._append(
                    connection,
                    delivery.consultation_id,
                    moment,
                    actor,
                    "delivery_retrying",
                    {**detail, "next_attempt_at": next_at.isoformat()},
                )
            row = connection.execute(select(deliveries).where(deliveries.c.id == delivery.id)).first()
        return _delivery(row)

    def requeue(self, delivery_id: str, *, actor: str, at: Optional[datetime] = None) -> Delivery:
        """An operator sends an undeliverable delivery again: pending, with a fresh budget (audited
        ``delivery_requeued``). `ValueError` unless it is undeliverable."""
        moment = self.store._now(at)
        with self.store._write() as connection:
            row = connection.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
            if row is None or row.status != "undeliverable":
                raise ValueError(f"delivery {delivery_id} is not undeliverable")
            self.store._locked(connection, row.consultation_id)
            connection.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id)
                .values(status="pending", created_at=moment, next_attempt_at=moment, attempts=0)
            )
            self.store._append(
                connection,
                row.consultation_id,
                moment,
                actor,
                "delivery_requeued",
                {"delivery_id": delivery_id, "intent": row.intent},
            )
            row = connection.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _delivery(row)


def confirmed(rasa_answer: Mapping[str, Any], delivery_id: str) -> bool:
    """Whether Rasa's trigger_intent answer (its ``tracker``) holds a bot message carrying
    ``delivery_id`` (put there by ``action_expert_update``): the customer was reached."""
    events = ((rasa_answer or {}).get("tracker") or {}).get("events") or []
    return any(
        e.get("event") == "bot" and (e.get("metadata") or {}).get("delivery_id") == delivery_id
        for e in events
        if isinstance(e, dict)
    )
