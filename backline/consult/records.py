"""The consultation store's records: plain frozen values the store returns (and their API shape)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Mapping, Optional, Tuple

from backline.utc import iso

MODES = ("consult", "handoff")
STATUSES = ("open", "assigned", "replied", "closed")
"""open: no expert yet; assigned: an expert was given the case; replied: an expert answered; closed."""
ACTIVE_STATUSES = ("open", "assigned", "replied")
DIRECTIONS = ("to_expert", "from_expert", "to_customer", "from_customer")
DELIVERY_STATUSES = ("pending", "delivered", "undeliverable")
AWAITING_DELIVERY = "awaiting_delivery"
"""A consultation's ``delivery_status``: a reply waits for the customer (any delivery pending); else
``undeliverable`` (an alert: a reply never reached the customer), else ``delivered``, else None."""


@dataclass(frozen=True)
class Consultation:
    """One consultation (consult mode: an expert reviews behind the AI; handoff: a person takes over)."""

    id: str
    conversation_id: str
    mode: str
    status: str
    queue: str
    priority: str
    reasons: Tuple[str, ...]
    detail: Optional[str]
    brief: Mapping[str, Any]
    ai_draft: Optional[str]
    transcript: Tuple[Mapping[str, Any], ...]
    created_at: datetime
    first_reply_at: Optional[datetime] = None
    closed_at: Optional[datetime] = None
    sla_due_at: Optional[datetime] = None
    assignee: Optional[str] = None
    channel: Optional[str] = None
    resolution: Optional[str] = None
    context: Mapping[str, Any] = field(default_factory=dict)
    routing: Mapping[str, Any] = field(default_factory=dict)
    delivery_status: Optional[str] = None

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    def as_dict(self) -> Dict[str, Any]:
        """The hub API record (DESIGN.md, "Observable contract"): JSON-ready, ISO-8601 timestamps."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "mode": self.mode,
            "status": self.status,
            "queue": self.queue,
            "priority": self.priority,
            "reasons": list(self.reasons),
            "detail": self.detail,
            "brief": copy.deepcopy(dict(self.brief)),
            "ai_draft": self.ai_draft,
            "transcript": copy.deepcopy([dict(t) for t in self.transcript]),
            "created_at": iso(self.created_at),
            "first_reply_at": iso(self.first_reply_at),
            "closed_at": iso(self.closed_at),
            "sla_due_at": iso(self.sla_due_at),
            "assignee": self.assignee,
            "channel": self.channel,
            "resolution": self.resolution,
            "context": copy.deepcopy(dict(self.context)),
            "routing": copy.deepcopy(dict(self.routing)),
            "delivery_status": self.delivery_status,
        }


@dataclass(frozen=True)
class Message:
    """A message in a consultation: to / from the expert, or to / from the customer."""

    id: int
    consultation_id: str
    at: datetime
    direction: str
    author: str
    channel: str
    text: str
    internal: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "at": iso(self.at),
            "direction": self.direction,
            "author": self.author,
            "channel": self.channel,
            "text": self.text,
            "internal": self.internal,
            "meta": copy.deepcopy(dict(self.meta)),
        }


@dataclass(frozen=True)
class AuditEvent:
    """One step in a consultation's life: who did what, when, with which details."""

    id: int
    consultation_id: str
    at: datetime
    actor: str
    action: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "detail": copy.deepcopy(dict(self.detail)),
        }


class ConsultationNotFound(KeyError):
    """No consultation with this id."""


class ConsultationClosed(ValueError):
    """The operation needs an open consultation. ``decided_by`` / ``resolution``: who closed it and how,
    when known (for "already decided by ..." on the expert's channel)."""

    def __init__(
        self, consultation_id: str, decided_by: Optional[str] = None, resolution: Optional[str] = None
    ) -> None:
        super().__init__(consultation_id)
        self.consultation_id = consultation_id
        self.decided_by = decided_by
        self.resolution = resolution

    def __str__(self) -> str:
        if self.decided_by:
            return (
                f"consultation {self.consultation_id} was already decided by {self.decided_by}"
                f" ({self.resolution or 'closed'})"
            )
        return f"consultation {self.consultation_id} is closed"


@dataclass(frozen=True)
class Delivery:
    """One entry of the outbox: resume ``conversation_id`` with ``intent`` and ``entities`` (which
    carry ``delivery_id``, checked on the Rasa side so that a retry is shown once); ``notice``: the
    text of a notice the assistant says (the SLA delay message), recorded as told once delivered. ``status``:
    pending (until Rasa confirms) | delivered | undeliverable (retry budget spent: an alert)."""

    id: str
    consultation_id: str
    conversation_id: str
    intent: str
    entities: Mapping[str, Any]
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    notice: Optional[str] = None
    lease_owner: Optional[str] = None
    lease_until: Optional[datetime] = None
    delivered_at: Optional[datetime] = None
    last_error: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "conversation_id": self.conversation_id,
            "intent": self.intent,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_attempt_at),
            "delivered_at": iso(self.delivered_at),
            "last_error": self.last_error,
        }
