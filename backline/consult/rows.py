"""Between the consultation store's tables and its records: value checks, JSON-safe copies, and
rows turned into `Consultation`, `Message` and `AuditEvent` (`backline.consult.records`).

Used by every part of the store (`backline.consult.store` and the mixins it is made of); nothing
here opens a connection except `delivery_states`, which reads within one it is given.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Dict, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from backline.consult.records import AWAITING_DELIVERY, AuditEvent, Consultation, Message
from backline.consult.schema import deliveries
from backline.utc import as_utc

Clock = Callable[[], datetime]
"""The store's notion of now (aware UTC)."""


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


def json_copy(value: Any) -> Any:
    """A JSON-safe deep copy (datetimes as ISO strings, Decimals as strings, NaN refused)."""
    return json.loads(json.dumps(value, default=_json_default, allow_nan=False))


def checked_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` when it is one of ``allowed``; ValueError naming ``name`` otherwise."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def checked_text(name: str, value: Any, limit: int) -> str:
    """``value`` when it is a non-empty string of at most ``limit`` characters; ValueError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


def to_consultation(row: Any, delivery_status: Optional[str] = None) -> Consultation:
    """The `Consultation` of a ``consultations`` row (with its ``delivery_status`` when known)."""
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


def to_message(row: Any) -> Message:
    """The `Message` of a ``consultation_messages`` row."""
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


def to_event(row: Any) -> AuditEvent:
    """The `AuditEvent` of an ``audit_events`` row."""
    return AuditEvent(
        id=row.id,
        consultation_id=row.consultation_id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        detail=row.detail or {},
    )


def delivery_states(connection: Connection, ids: Sequence[str]) -> Dict[str, str]:
    """Each consultation's ``delivery_status`` (see `backline.consult.records.AWAITING_DELIVERY`)."""
    found: Dict[str, set] = {}
    for start in range(0, len(ids), 500):
        statement = (
            select(deliveries.c.consultation_id, deliveries.c.status)
            .where(deliveries.c.consultation_id.in_(ids[start : start + 500]))
            .distinct()
        )
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
