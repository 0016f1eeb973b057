"""The consultation store's footing: its engine and clock, transactions that nested calls join,
row locks, and the audited write every change goes through.

`StoreBase` is what the parts of `backline.consult.store.ConsultationStore` share: the case
transitions (`backline.consult.transitions`), webhook keys and expert threads
(`backline.consult.threads`), operator load and reply times (`backline.consult.workload`). Every
audit detail is masked (`backline.consult.masking`) and redacted (`backline.redact`) before it is
written.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from datetime import datetime
from typing import Any, Iterator, Mapping, Optional, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection

from backline.consult.database import database_url, make_engine, migrate
from backline.consult.masking import mask_data
from backline.consult.records import AuditEvent, Consultation, ConsultationNotFound
from backline.consult.rows import Clock, checked_text, json_copy, to_consultation
from backline.consult.schema import audit_events, consultations
from backline.redact import redact_data
from backline.utc import as_utc, utcnow

AUDIT_ACTIONS = (
    "created",
    "assigned",
    "notified",
    "delivery_failed",
    "fallback",
    "sla_next_person",
    "sla_backup_queue",
    "sla_supervisor",
    "customer_told",
    "customer_delay_told",
    "first_reply",
    "message",
    "queue_changed",
    "sla_due_changed",
    "mode_changed",
    "closed",
    "close_ignored",
    "delivery_queued",
    "delivered",
    "delivery_retrying",
    "delivery_undeliverable",
    "delivery_requeued",
    "escalated_again",
    "escalation_limited",
)
"""Actions the store and its callers write; `audit` accepts any other snake_case name too."""

_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_Store = TypeVar("_Store", bound="StoreBase")


class StoreBase:
    """One SQL database of consultations: engine, clock, transactions, locks and the audit append.

    ``url``: SQLAlchemy URL (default `database_url()`); ``clock``: the time when an operation
    is not given one (default: the real UTC clock); ``migrate_schema``: upgrade to head on start.
    """

    def __init__(
        self, url: Optional[str] = None, *, clock: Optional[Clock] = None, migrate_schema: bool = True
    ) -> None:
        self.url = url or database_url()
        self.clock: Clock = clock or utcnow
        self.engine = make_engine(self.url)
        self._active: "contextvars.ContextVar[Optional[Connection]]" = contextvars.ContextVar(
            f"consultation_store_{id(self)}", default=None
        )
        if migrate_schema:
            migrate(self.engine)

    def dispose(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.dispose()

    # transactions

    def _write(self) -> Any:
        active = self._active.get()
        return contextlib.nullcontext(active) if active is not None else self.engine.begin()

    def _read(self) -> Any:
        active = self._active.get()
        if active is not None:
            return contextlib.nullcontext(active)
        return self.engine.connect().execution_options(backline_read_only=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction for every store call made inside the block (in this thread or task):
        all of them commit together or none does. Nested blocks join the outer one."""
        active = self._active.get()
        if active is not None:
            yield active
            return
        with self.engine.begin() as connection:
            token = self._active.set(connection)
            try:
                yield connection
            finally:
                self._active.reset(token)

    def lock(self, consultation_id: str) -> Consultation:
        """The consultation, locked until the surrounding `transaction` ends (``SELECT ... FOR UPDATE``
        on PostgreSQL; SQLite's write transaction locks the whole database)."""
        with self._write() as connection:
            return to_consultation(self._locked(connection, consultation_id))

    def _now(self, at: Optional[datetime]) -> datetime:
        return as_utc(at if at is not None else self.clock())

    @staticmethod
    def _locked(connection: Connection, consultation_id: str) -> Any:
        row = connection.execute(
            select(consultations).where(consultations.c.id == consultation_id).with_for_update()
        ).first()
        if row is None:
            raise ConsultationNotFound(consultation_id)
        return row

    @staticmethod
    def _append(
        connection: Connection,
        consultation_id: str,
        at: datetime,
        actor: str,
        action: str,
        detail: Optional[Mapping[str, Any]],
    ) -> AuditEvent:
        values = {
            "consultation_id": consultation_id,
            "at": at,
            "actor": checked_text("actor", actor, 128),
            "action": action,
            "detail": mask_data(redact_data(json_copy(dict(detail or {})))),
        }
        if not _ACTION.match(action or ""):
            raise ValueError(f"audit action must be a snake_case name; got {action!r}")
        result = connection.execute(audit_events.insert().values(**values))
        return AuditEvent(id=result.inserted_primary_key[0], **values)

    def _update(self, connection: Connection, consultation_id: str, **values: Any) -> Consultation:
        connection.execute(consultations.update().where(consultations.c.id == consultation_id).values(**values))
        row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
        return to_consultation(row)
