"""The consultation store: consultations, their messages and the audit trail of every step.

SQLAlchemy Core on SQLite (default) or PostgreSQL; the schema is owned by the Alembic
migrations in ``backline/consult/migrations`` and brought to head when a store starts
(`migrate`, `backline.consult.database`). Every write is one transaction that also appends its audit
event, so the record and its trail never disagree; a consultation's brief, transcript, draft, context
and routing record, every message and every audit detail are stored masked (`backline.consult.masking`:
card numbers, IBANs, codes, passwords, credentials); a failed notification is an audit event
(``delivery_failed``), never a dropped consultation.

`ConsultationStore` is opening, reading and listing cases, their messages and their audit trail; it is
made of parts that each live in their own module:

- `backline.consult.transactions`: engine, clock, transactions, locks, the audited write (`StoreBase`);
- `backline.consult.transitions`: assign, queue, SLA deadline, mode, escalated again, first reply, close;
- `backline.consult.threads`: webhook delivery keys and expert threads (Slack / Telegram inbound);
- `backline.consult.workload`: a person's open cases, a queue's first-reply times;
- `backline.consult.governance`: verdicts, overrides of AI drafts, satisfaction answers, QA reviews;
- `backline.consult.rows`: value checks and rows turned into records;
- `backline.consult.records` (the records), `backline.consult.schema` (the tables),
  `backline.consult.database` (URL, engines, migrations and their command line).

Time: every operation takes its moment (``now`` / ``at``) or asks the store's ``clock``;
datetimes are stored as naive UTC and returned aware (UTC). Naive input is taken as UTC (`backline.utc`).

    python -m backline.consult.store migrate [--url URL]   # upgrade to head
    python -m backline.consult.store current [--url URL]   # show the schema revision
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, List, Mapping, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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
from backline.consult.governance import Governance
from backline.consult.masking import mask, mask_data
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
from backline.consult.rows import (  # noqa: F401  (re-exported)
    Clock,
    checked_choice,
    checked_text,
    delivery_states,
    json_copy,
    new_id,
    to_consultation,
    to_event,
    to_message,
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
from backline.consult.threads import WEBHOOK_KEY_LIMIT, WEBHOOK_KEY_TTL, ExpertThreads, claim_webhook_key  # noqa: F401
from backline.consult.transactions import AUDIT_ACTIONS, StoreBase  # noqa: F401
from backline.consult.transitions import CaseTransitions
from backline.consult.workload import Workload
from backline.routing.matrix import PRIORITIES
from backline.utc import as_utc, naive_utc, utcnow  # noqa: F401
from backline.utc import iso as _iso


class ConsultationStore(CaseTransitions, ExpertThreads, Workload, Governance):
    """Consultations, messages and audit trail in one SQL database.

    ``url``: SQLAlchemy URL (default `database_url()`); ``clock``: the time when an operation
    is not given one (default: the real UTC clock); ``migrate_schema``: upgrade to head on start.
    """

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
        context = mask_data(json_copy(dict(context or {})))
        if isinstance(reasons, str) or any(not isinstance(r, str) or not r for r in reasons):
            raise ValueError(f"reasons must be a sequence of non-empty strings; got {reasons!r}")
        created_at = self._now(now)
        draft = ai_draft if ai_draft is not None else context.get("ai_draft")
        values = {
            "conversation_id": checked_text("conversation_id", conversation_id, 255),
            "mode": checked_choice("mode", mode, MODES),
            "status": "open",
            "queue": checked_text("queue", queue, 64),
            "priority": checked_choice("priority", priority, PRIORITIES),
            "reasons": list(dict.fromkeys(reasons)),
            "detail": detail,
            "brief": mask_data(json_copy(dict(brief if brief is not None else context.get("brief") or {}))),
            "ai_draft": mask(draft) if isinstance(draft, str) else None,
            "transcript": mask_data(
                json_copy(list(transcript if transcript is not None else context.get("transcript") or []))
            ),
            "context": context,
            "routing": mask_data(json_copy(dict(routing or {}))),
            "created_at": created_at,
            "sla_due_at": None if sla_due_at is None else as_utc(sla_due_at),
            "client_key": None if client_key is None else checked_text("client_key", client_key, 64),
        }
        for attempt in range(3):
            consultation_id = new_id()
            try:
                with self._write() as connection:
                    connection.execute(consultations.insert().values(id=consultation_id, **values))
                    self._append(
                        connection,
                        consultation_id,
                        created_at,
                        actor,
                        "created",
                        {
                            "mode": values["mode"],
                            "queue": values["queue"],
                            "priority": values["priority"],
                            "reasons": values["reasons"],
                            "detail": detail,
                            "conversation_id": values["conversation_id"],
                            "sla_due_at": _iso(values["sla_due_at"]),
                        },
                    )
                    row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
                return to_consultation(row)
            except IntegrityError:
                if attempt == 2 or self.get(consultation_id) is None:
                    raise  # not an id collision
        raise AssertionError("unreachable")

    def created_since(
        self, since: datetime, *, conversation_id: Optional[str] = None, client_key: Optional[str] = None
    ) -> List[Consultation]:
        """Consultations created at or after ``since`` for the conversation and/or the client key,
        oldest first (what the escalation limits count)."""
        statement = select(consultations).where(consultations.c.created_at >= as_utc(since))
        if conversation_id is not None:
            statement = statement.where(consultations.c.conversation_id == conversation_id)
        if client_key is not None:
            statement = statement.where(consultations.c.client_key == client_key)
        with self._read() as connection:
            return [to_consultation(row) for row in connection.execute(statement.order_by(consultations.c.created_at))]

    def open_for_conversation(self, conversation_id: str) -> Optional[Consultation]:
        """The conversation's open consultation (one per conversation; the newest should there be
        several from before that rule), or None."""
        statement = (
            select(consultations)
            .where(consultations.c.conversation_id == conversation_id, consultations.c.status.in_(ACTIVE_STATUSES))
            .order_by(consultations.c.created_at.desc(), consultations.c.id.desc())
            .limit(1)
        )
        with self._read() as connection:
            row = connection.execute(statement).first()
        return None if row is None else to_consultation(row)

    def get(self, consultation_id: str) -> Optional[Consultation]:
        """The consultation, or None."""
        with self._read() as connection:
            row = connection.execute(select(consultations).where(consultations.c.id == consultation_id)).first()
            states = delivery_states(connection, [consultation_id]) if row is not None else {}
        return None if row is None else to_consultation(row, states.get(consultation_id))

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
            statement = statement.where(consultations.c.status == checked_choice("status", status, STATUSES))
        if queue is not None:
            statement = statement.where(consultations.c.queue == queue)
        if assignee is not None:
            statement = statement.where(consultations.c.assignee == assignee)
        statement = statement.order_by(consultations.c.created_at, consultations.c.id)
        if limit is not None:
            statement = statement.limit(max(0, int(limit)))
        with self._read() as connection:
            rows = list(connection.execute(statement))
            states = delivery_states(connection, [row.id for row in rows])
        return [to_consultation(row, states.get(row.id)) for row in rows]

    def overdue(self, now: datetime) -> List[Consultation]:
        """Cases without an expert reply whose SLA deadline is at or before `now`, oldest deadline first."""
        statement = (
            select(consultations)
            .where(
                consultations.c.status.in_(("open", "assigned")),
                consultations.c.first_reply_at.is_(None),
                consultations.c.sla_due_at.is_not(None),
                consultations.c.sla_due_at <= naive_utc(now),
            )
            .order_by(consultations.c.sla_due_at, consultations.c.id)
        )
        with self._read() as connection:
            return [to_consultation(row) for row in connection.execute(statement)]

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
            "direction": checked_choice("direction", direction, DIRECTIONS),
            "author": checked_text("author", author, 128),
            "channel": checked_text("channel", channel, 32),
            "text": mask(text),
            "internal": bool(internal),
            "meta": mask_data(json_copy(dict(meta or {}))),
        }
        with self._write() as connection:
            self._locked(connection, consultation_id)
            result = connection.execute(consultation_messages.insert().values(**values))
            message = Message(id=result.inserted_primary_key[0], **values)
            self._append(
                connection,
                consultation_id,
                moment,
                author,
                "message",
                {
                    "message_id": message.id,
                    "direction": direction,
                    "channel": channel,
                    "internal": bool(internal),
                },
            )
        return message

    def messages(self, consultation_id: str) -> List[Message]:
        """The consultation's messages in the order they were added."""
        statement = (
            select(consultation_messages)
            .where(consultation_messages.c.consultation_id == consultation_id)
            .order_by(consultation_messages.c.id)
        )
        with self._read() as connection:
            return [to_message(row) for row in connection.execute(statement)]

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
            return [to_event(row) for row in connection.execute(statement)]

    def decided_by(self, consultation_id: str) -> Optional[str]:
        """Who closed the consultation (the actor of its ``closed`` event), or None."""
        statement = (
            select(audit_events.c.actor)
            .where(audit_events.c.consultation_id == consultation_id, audit_events.c.action == "closed")
            .order_by(audit_events.c.id.desc())
            .limit(1)
        )
        with self._read() as connection:
            return connection.execute(statement).scalar()


if __name__ == "__main__":
    sys.exit(main())
