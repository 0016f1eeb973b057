"""The consultation store: consultations, their messages and the audit trail of every step.

SQLAlchemy Core on SQLite (default) or PostgreSQL; the schema is owned by the Alembic
migrations in ``backline/consult/migrations`` and brought to head when a store starts
(`migrate`). Every write is one transaction that also appends its audit event, so the
record and its trail never disagree; a consultation's brief, transcript, draft, context
and routing record, every message and every audit detail are stored masked (`backline.consult.masking`:
card numbers, IBANs, codes, passwords, credentials); a failed notification is an audit event
(``delivery_failed``), never a dropped consultation.

Time: every operation takes its moment (``now`` / ``at``) or asks the store's ``clock``;
datetimes are stored as naive UTC and returned aware (UTC). Naive input is taken as UTC.

    python -m backline.consult.store migrate [--url URL]   # upgrade to head
    python -m backline.consult.store current [--url URL]   # show the schema revision
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import re
import sys
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from backline.consult.masking import mask, mask_data
from backline.consult.database import (  # noqa: F401  (re-exported)
    DEFAULT_DB_PATH,
    ENV_URL,
    MIGRATIONS_DIR,
    PROJECT_ROOT,
    VERSION_TABLE,
    current_revision,
    database_url,
    main,
    make_engine,
    migrate,
)
from backline.consult.records import (  # noqa: F401  (re-exported: the store's public names)
    ACTIVE_STATUSES,
    AWAITING_DELIVERY,
    DELIVERY_STATUSES,
    DIRECTIONS,
    MODES,
    STATUSES,
    AuditEvent,
    Consultation,
    ConsultationClosed,
    ConsultationNotFound,
    Delivery,
    Message,
)
from backline.consult.schema import (  # noqa: F401
    UtcDateTime,
    audit_events,
    consultation_messages,
    consultations,
    deliveries,
    expert_threads,
    metadata,
    webhook_deliveries,
)
from backline.redact import redact_data
from backline.routing.matrix import PRIORITIES
from backline.utc import as_utc, iso as _iso, utcnow  # noqa: F401


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

Clock = Callable[[], datetime]


# --- helpers --------------------------------------------------------------------------------


def new_id() -> str:
    """A short unique consultation id, e.g. ``c_3f9a0c2b71de``."""
    return "c_" + uuid.uuid4().hex[:12]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _json(value: Any) -> Any:
    """A JSON-safe deep copy (datetimes as ISO strings, Decimals as strings, NaN refused)."""
    return json.loads(json.dumps(value, default=_json_default, allow_nan=False))


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


def _consultation(row: Any, delivery_status: Optional[str] = None) -> Consultation:
    return Consultation(
        id=row.id,
        conversation_id=row.conversation_id,
        mode=row.mode,
        status=row.status,
        queue=row.queue,
        priority=row.priority,
        reasons=tuple(row.reasons or ()),
        detail=row.detail,
        brief=row.brief or {},
        ai_draft=row.ai_draft,
        transcript=tuple(row.transcript or ()),
        created_at=row.created_at,
        first_reply_at=row.first_reply_at,
        closed_at=row.closed_at,
        sla_due_at=row.sla_due_at,
        assignee=row.assignee,
        channel=row.channel,
        resolution=row.resolution,
        context=row.context or {},
        routing=row.routing or {},
        delivery_status=delivery_status,
    )


def _message(row: Any) -> Message:
    return Message(
        id=row.id,
        consultation_id=row.consultation_id,
        at=row.at,
        direction=row.direction,
        author=row.author,
        channel=row.channel,
        text=row.text,
        internal=bool(row.internal),
        meta=row.meta or {},
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        consultation_id=row.consultation_id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        detail=row.detail or {},
    )


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


def _delivery_states(connection: Connection, ids: Sequence[str]) -> Dict[str, str]:
    """Each consultation's ``delivery_status`` (see `backline.consult.records.AWAITING_DELIVERY`)."""
    found: Dict[str, set] = {}
    for start in range(0, len(ids), 500):
        statement = select(deliveries.c.consultation_id, deliveries.c.status).where(
            deliveries.c.consultation_id.in_(ids[start:start + 500])).distinct()
        for row in connection.execute(statement):
            found.setdefault(row.consultation_id, set()).add(row.status)
    states = {}
    for consultation_id, statuses in found.items():
        if "pending" in statuses:
            states[consultation_id] = AWAITING_DELIVERY
        elif "undeliverable" in statuses:
            states[consultation_id] = "undeliverable"
        else:
            states[consultation_id] = "delivered"
    return states


# --- the store ------------------------------------------------------------------------------


class ConsultationStore:
    """Consultations, messages and audit trail in one SQL database.

    ``url``: SQLAlchemy URL (default `database_url()`); ``clock``: the time when an operation
    is not given one (default: the real UTC clock); ``migrate_schema``: upgrade to head on start.
    """

    def __init__(self, url: Optional[str] = None, *, clock: Optional[Clock] = None, migrate_schema: bool = True) -> None:
        self.url = url or database_url()
        self.clock: Clock = clock or utcnow
        self.engine = make_engine(self.url)
        self._active: "contextvars.ContextVar[Optional[Connection]]" = contextvars.ContextVar(
            f"consultation_store_{id(self)}", default=None)
        if migrate_schema:
            migrate(self.engine)

    def dispose(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> "ConsultationStore":
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
            return _consultation(self._locked(connection, consultation_id))

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
    def _append(connection: Connection, consultation_id: str, at: datetime, actor: str, action: str,
                detail: Optional[Mapping[str, Any]]) -> AuditEvent:
        values = {
            "consultation_id": consultation_id,
            "at": at,
            "actor": _text("actor", actor, 128),
            "action": action,
            "detail": mask_data(redact_data(_json(dict(detail or {})))),
        }
        if not _ACTION.match(action or ""):
            raise ValueError(f"audit action must be a snake_case name; got {action!r}")
        result = connection.execute(audit_events.insert().values(**values))
        return AuditEvent(id=result.inserted_primary_key[0], **values)

    def _update(self, connection: Connection, consultation_id: str, **values: Any) -> Consultation:
        connection.execute(consultations.update().where(consultations.c.id == consultation_id).values(**values))
        row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
        return _consultation(row)

    # consultations

    def create(
        self,
        *,
        conversation_id: str,
        mode: str,
        queue: str,
        priority: str = "normal",
        reasons: Sequence[str] = (),
        detail: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None,
        brief: Optional[Mapping[str, Any]] = None,
        ai_draft: Optional[str] = None,
        transcript: Optional[Sequence[Mapping[str, Any]]] = None,
        routing: Optional[Mapping[str, Any]] = None,
        sla_due_at: Optional[datetime] = None,
        now: Optional[datetime] = None,
        actor: str = "system",
        client_key: Optional[str] = None,
    ) -> Consultation:
        """A new open consultation, audited ``created``. Brief, transcript and AI draft default to
        those of the context package (`backline.consult.context.build_context`); whatever is given,
        card numbers, IBANs and the like are masked before they are stored (`mask_data`)."""
        context = mask_data(_json(dict(context or {})))
        if isinstance(reasons, str) or any(not isinstance(r, str) or not r for r in reasons):
            raise ValueError(f"reasons must be a sequence of non-empty strings; got {reasons!r}")
        created_at = self._now(now)
        draft = ai_draft if ai_draft is not None else context.get("ai_draft")
        values = {
            "conversation_id": _text("conversation_id", conversation_id, 255),
            "mode": _choice("mode", mode, MODES),
            "status": "open",
            "queue": _text("queue", queue, 64),
            "priority": _choice("priority", priority, PRIORITIES),
            "reasons": list(dict.fromkeys(reasons)),
            "detail": detail,
            "brief": mask_data(_json(dict(brief if brief is not None else context.get("brief") or {}))),
            "ai_draft": mask(draft) if isinstance(draft, str) else None,
            "transcript": mask_data(_json(list(transcript if transcript is not None else context.get("transcript") or []))),
            "context": context,
            "routing": mask_data(_json(dict(routing or {}))),
            "created_at": created_at,
            "sla_due_at": None if sla_due_at is None else as_utc(sla_due_at),
            "client_key": None if client_key is None else _text("client_key", client_key, 64),
        }
        for attempt in range(3):
            consultation_id = new_id()
            try:
                with self._write() as connection:
                    connection.execute(consultations.insert().values(id=consultation_id, **values))
                    self._append(connection, consultation_id, created_at, actor, "created", {
                        "mode": values["mode"],
                        "queue": values["queue"],
                        "priority": values["priority"],
                        "reasons": values["reasons"],
                        "detail": detail,
                        "conversation_id": values["conversation_id"],
                        "sla_due_at": _iso(values["sla_due_at"]),
                    })
                    row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
                return _consultation(row)
            except IntegrityError:
                if attempt == 2 or self.get(consultation_id) is None:
                    raise  # not an id collision
        raise AssertionError("unreachable")

    def created_since(self, since: datetime, *, conversation_id: Optional[str] = None,
                      client_key: Optional[str] = None) -> List[Consultation]:
        """Consultations created at or after ``since`` for the conversation and/or the client key,
        oldest first (what the escalation limits count)."""
        statement = select(consultations).where(consultations.c.created_at >= as_utc(since))
        if conversation_id is not None:
            statement = statement.where(consultations.c.conversation_id == conversation_id)
        if client_key is not None:
            statement = statement.where(consultations.c.client_key == client_key)
        with self._read() as connection:
            return [_consultation(row) for row in connection.execute(statement.order_by(consultations.c.created_at))]

    def open_for_conversation(self, conversation_id: str) -> Optional[Consultation]:
        """The conversation's open consultation (one per conversation; the newest should there be
        several from before that rule), or None."""
        statement = (select(consultations)
                     .where(consultations.c.conversation_id == conversation_id,
                            consultations.c.status.in_(ACTIVE_STATUSES))
                     .order_by(consultations.c.created_at.desc(), consultations.c.id.desc()).limit(1))
        with self._read() as connection:
            row = connection.execute(statement).first()
        return None if row is None else _consultation(row)

    def escalated_again(
        self,
        consultation_id: str,
        *,
        reason: Optional[str] = None,
        priority: Optional[str] = None,
        at: Optional[datetime] = None,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """The conversation escalated again while this case is open: ``reason`` joins ``reasons`` (once),
        the priority rises to ``priority`` when that is higher (never falls); audited ``escalated_again``
        with ``detail``. A closed case raises `ConsultationClosed`."""
        moment = self._now(at)
        if priority is not None:
            _choice("priority", priority, PRIORITIES)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            reasons = list(row.reasons or ())
            if reason and reason not in reasons:
                reasons.append(_text("reason", reason, 64))
            new_priority = row.priority
            if priority is not None and PRIORITIES.index(priority) > PRIORITIES.index(row.priority):
                new_priority = priority
            self._append(connection, consultation_id, moment, actor, "escalated_again", {
                **dict(detail or {}), "reason": reason, "reasons": reasons, "previous_reasons": list(row.reasons or ()),
                "priority": new_priority, "previous_priority": row.priority,
            })
            return self._update(connection, consultation_id, reasons=reasons, priority=new_priority)

    def get(self, consultation_id: str) -> Optional[Consultation]:
        """The consultation, or None."""
        with self._read() as connection:
            row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
            states = _delivery_states(connection, [consultation_id]) if row is not None else {}
        return None if row is None else _consultation(row, states.get(consultation_id))

    def require(self, consultation_id: str) -> Consultation:
        """The consultation; `ConsultationNotFound` when there is none."""
        found = self.get(consultation_id)
        if found is None:
            raise ConsultationNotFound(consultation_id)
        return found

    def list(
        self,
        conversation_id: Optional[str] = None,
        status: Optional[str] = None,
        queue: Optional[str] = None,
        *,
        assignee: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[Consultation]:
        """Consultations matching every filter given, oldest first."""
        statement = select(consultations)
        if conversation_id is not None:
            statement = statement.where(consultations.c.conversation_id == conversation_id)
        if status is not None:
            statement = statement.where(consultations.c.status == _choice("status", status, STATUSES))
        if queue is not None:
            statement = statement.where(consultations.c.queue == queue)
        if assignee is not None:
            statement = statement.where(consultations.c.assignee == assignee)
        statement = statement.order_by(consultations.c.created_at, consultations.c.id)
        if limit is not None:
            statement = statement.limit(max(0, int(limit)))
        with self._read() as connection:
            rows = list(connection.execute(statement))
            states = _delivery_states(connection, [row.id for row in rows])
        return [_consultation(row, states.get(row.id)) for row in rows]

    def assign(
        self,
        consultation_id: str,
        person_id: str,
        channel: str,
        *,
        at: Optional[datetime] = None,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """Give the case to `person_id`, reached on `channel`; audited ``assigned`` (with the previous
        assignee). A replied case stays ``replied``; a closed one raises `ConsultationClosed`."""
        moment = self._now(at)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            status = "replied" if row.status == "replied" else "assigned"
            self._append(connection, consultation_id, moment, actor, "assigned", {
                "assignee": person_id,
                "channel": channel,
                "previous_assignee": row.assignee,
                "previous_channel": row.channel,
                **dict(detail or {}),
            })
            return self._update(
                connection,
                consultation_id,
                assignee=_text("person_id", person_id, 64),
                channel=_text("channel", channel, 32),
                status=status,
            )

    def set_queue(
        self,
        consultation_id: str,
        queue: str,
        *,
        at: Optional[datetime] = None,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """Move the case to another queue (SLA ladder: backup queue); audited ``queue_changed``."""
        moment = self._now(at)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            self._append(connection, consultation_id, moment, actor, "queue_changed",
                         {"queue": queue, "previous_queue": row.queue, **dict(detail or {})})
            return self._update(connection, consultation_id, queue=_text("queue", queue, 64))

    def set_sla_due(
        self,
        consultation_id: str,
        due_at: Optional[datetime],
        *,
        at: Optional[datetime] = None,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """Set the next SLA deadline (None: no deadline); audited ``sla_due_changed``."""
        moment = self._now(at)
        due = None if due_at is None else as_utc(due_at)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            self._append(connection, consultation_id, moment, actor, "sla_due_changed",
                         {"sla_due_at": _iso(due), "previous_sla_due_at": _iso(row.sla_due_at), **dict(detail or {})})
            return self._update(connection, consultation_id, sla_due_at=due)

    def set_mode(
        self,
        consultation_id: str,
        mode: str,
        *,
        at: Optional[datetime] = None,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """Switch between consult and handoff (an expert takes over); audited ``mode_changed``."""
        moment = self._now(at)
        new_mode = _choice("mode", mode, MODES)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            self._append(connection, consultation_id, moment, actor, "mode_changed",
                         {"mode": new_mode, "previous_mode": row.mode, **dict(detail or {})})
            return self._update(connection, consultation_id, mode=new_mode)

    def record_first_reply(
        self, consultation_id: str, at: Optional[datetime] = None, *, actor: str = "system"
    ) -> Consultation:
        """Stamp the first expert reply (later calls change nothing); audited ``first_reply`` once,
        with the seconds since creation."""
        moment = self._now(at)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.first_reply_at is not None:
                return _consultation(row)
            seconds = (moment - row.created_at).total_seconds()
            self._append(connection, consultation_id, moment, actor, "first_reply",
                         {"seconds": seconds, "assignee": row.assignee})
            status = row.status if row.status == "closed" else "replied"
            return self._update(connection, consultation_id, first_reply_at=moment, status=status)

    def close(
        self,
        consultation_id: str,
        at: Optional[datetime] = None,
        resolution: Optional[str] = None,
        *,
        actor: str = "system",
        detail: Optional[Mapping[str, Any]] = None,
    ) -> Consultation:
        """Close the case with its resolution (approved, denied, answered, handed_back, closed...); audited
        ``closed`` (with ``detail``, e.g. the resolution text of a close). Closing a closed case changes
        nothing and is audited ``close_ignored``."""
        moment = self._now(at)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                self._append(connection, consultation_id, moment, actor, "close_ignored",
                             {"resolution": resolution, "closed_at": _iso(row.closed_at)})
                return _consultation(row)
            self._append(connection, consultation_id, moment, actor, "closed",
                         {"resolution": resolution, "previous_status": row.status, **dict(detail or {})})
            return self._update(connection, consultation_id, status="closed", closed_at=moment, resolution=resolution)

    def overdue(self, now: datetime) -> List[Consultation]:
        """Cases without an expert reply whose SLA deadline is at or before `now`, oldest deadline first."""
        statement = (
            select(consultations)
            .where(
                consultations.c.status.in_(("open", "assigned")),
                consultations.c.first_reply_at.is_(None),
                consultations.c.sla_due_at.is_not(None),
                consultations.c.sla_due_at <= as_utc(now).replace(tzinfo=None),
            )
            .order_by(consultations.c.sla_due_at, consultations.c.id)
        )
        with self._read() as connection:
            return [_consultation(row) for row in connection.execute(statement)]

    # messages

    def add_message(
        self,
        consultation_id: str,
        direction: str,
        author: str,
        channel: str,
        text: str,
        internal: bool = False,
        *,
        at: Optional[datetime] = None,
        meta: Optional[Mapping[str, Any]] = None,
    ) -> Message:
        """Append a message (also to a closed case: a late reply is kept), its text and meta masked;
        audited ``message``."""
        moment = self._now(at)
        if not isinstance(text, str):
            raise ValueError(f"text must be a string; got {type(text).__name__}")
        values = {
            "consultation_id": consultation_id,
            "at": moment,
            "direction": _choice("direction", direction, DIRECTIONS),
            "author": _text("author", author, 128),
            "channel": _text("channel", channel, 32),
            "text": mask(text),
            "internal": bool(internal),
            "meta": mask_data(_json(dict(meta or {}))),
        }
        with self._write() as connection:
            self._locked(connection, consultation_id)
            result = connection.execute(consultation_messages.insert().values(**values))
            message = Message(id=result.inserted_primary_key[0], **values)
            self._append(connection, consultation_id, moment, author, "message", {
                "message_id": message.id,
                "direction": direction,
                "channel": channel,
                "internal": bool(internal),
            })
        return message

    def messages(self, consultation_id: str) -> List[Message]:
        """The consultation's messages in the order they were added."""
        statement = (
            select(consultation_messages)
            .where(consultation_messages.c.consultation_id == consultation_id)
            .order_by(consultation_messages.c.id)
        )
        with self._read() as connection:
            return [_message(row) for row in connection.execute(statement)]

    # audit

    def audit(
        self,
        consultation_id: str,
        actor: str,
        action: str,
        detail: Optional[Mapping[str, Any]] = None,
        *,
        at: Optional[datetime] = None,
    ) -> AuditEvent:
        """Record a step (notified, delivery_failed, fallback, sla_next_person...) for the consultation."""
        moment = self._now(at)
        with self._write() as connection:
            self._locked(connection, consultation_id)
            return self._append(connection, consultation_id, moment, actor, action, detail)

    def audit_trail(self, consultation_id: str) -> List[AuditEvent]:
        """Every step of the consultation, in the order it was recorded."""
        statement = (
            select(audit_events).where(audit_events.c.consultation_id == consultation_id).order_by(audit_events.c.id)
        )
        with self._read() as connection:
            return [_event(row) for row in connection.execute(statement)]

    def claim_webhook_key(self, key: str, *, at: Optional[datetime] = None, ttl: timedelta = WEBHOOK_KEY_TTL) -> bool:
        """`claim_webhook_key` in this store's database (inside `transaction` when one is open)."""
        with self._write() as connection:
            return claim_webhook_key(connection, key, self._now(at), ttl)

    def decided_by(self, consultation_id: str) -> Optional[str]:
        """Who closed the consultation (the actor of its ``closed`` event), or None."""
        statement = (select(audit_events.c.actor)
                     .where(audit_events.c.consultation_id == consultation_id, audit_events.c.action == "closed")
                     .order_by(audit_events.c.id.desc()).limit(1))
        with self._read() as connection:
            return connection.execute(statement).scalar()

    # expert threads

    def link_thread(self, consultation_id: str, channel: str, address: str, message_id: str, *,
                    at: Optional[datetime] = None) -> None:
        """Remember that message ``message_id`` in ``address`` (a Slack channel, a Telegram chat) on
        ``channel`` is about the consultation; linking the same message again changes nothing."""
        values = {"consultation_id": consultation_id, "channel": _text("channel", channel, 32),
                  "address": _text("address", str(address), 128), "message_id": _text("message_id", str(message_id), 64),
                  "at": self._now(at)}
        with self._write() as connection:
            self._locked(connection, consultation_id)
            found = connection.execute(select(expert_threads.c.id).where(
                expert_threads.c.channel == values["channel"], expert_threads.c.address == values["address"],
                expert_threads.c.message_id == values["message_id"])).first()
            if found is None:
                connection.execute(expert_threads.insert().values(**values))

    def find_thread(self, channel: str, address: str, message_id: str) -> Optional[str]:
        """The consultation linked to that message (`link_thread`), or None."""
        statement = select(expert_threads.c.consultation_id).where(
            expert_threads.c.channel == channel, expert_threads.c.address == str(address),
            expert_threads.c.message_id == str(message_id))
        with self._read() as connection:
            return connection.execute(statement).scalar()

    def open_for(self, person_id: str) -> List[str]:
        """Ids of the cases assigned to the person that are not closed, oldest first."""
        return [case.id for case in self.list(assignee=person_id) if case.status in ACTIVE_STATUSES]

    # statistics

    def first_reply_times(
        self,
        queue: str,
        since: datetime,
        until: Optional[datetime] = None,
        *,
        mode: Optional[str] = None,
    ) -> List[float]:
        """Seconds from creation to first expert reply, for the queue's consultations created in
        [since, until) that have one, oldest first."""
        statement = select(consultations.c.created_at, consultations.c.first_reply_at).where(
            consultations.c.queue == queue,
            consultations.c.first_reply_at.is_not(None),
            consultations.c.created_at >= as_utc(since).replace(tzinfo=None),
        )
        if until is not None:
            statement = statement.where(consultations.c.created_at < as_utc(until).replace(tzinfo=None))
        if mode is not None:
            statement = statement.where(consultations.c.mode == _choice("mode", mode, MODES))
        statement = statement.order_by(consultations.c.created_at, consultations.c.id)
        with self._read() as connection:
            return [(row.first_reply_at - row.created_at).total_seconds() for row in connection.execute(statement)]

    def open_load(self, person_id: str) -> int:
        """How many cases that are not closed are assigned to the person."""
        statement = select(func.count()).select_from(consultations).where(
            consultations.c.assignee == person_id, consultations.c.status.in_(ACTIVE_STATUSES)
        )
        with self._read() as connection:
            return int(connection.execute(statement).scalar_one())


if __name__ == "__main__":
    sys.exit(main())
