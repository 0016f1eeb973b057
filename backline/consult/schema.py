"""The consultation store's tables. The Alembic migrations in ``migrations/`` create exactly
this schema (a test compares the two); datetimes are stored as naive UTC and returned aware."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from backline.utc import as_utc, naive_utc


class UtcDateTime(TypeDecorator):
    """A point in time: stored as naive UTC (portable), returned aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        return None if value is None else as_utc(value)  # stored naive: UTC


metadata = MetaData()

consultations = Table(
    "consultations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("detail", String(64)),
    Column("brief", JSON, nullable=False),
    Column("ai_draft", Text),
    Column("transcript", JSON, nullable=False),
    Column("context", JSON, nullable=False),
    Column("routing", JSON, nullable=False),
    Column("assignee", String(64)),
    Column("channel", String(32)),
    Column("resolution", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("first_reply_at", UtcDateTime),
    Column("closed_at", UtcDateTime),
    Column("sla_due_at", UtcDateTime),
    Column("client_key", String(64)),
    CheckConstraint("mode IN ('consult', 'handoff')", name="ck_consultations_mode"),
    CheckConstraint("status IN ('open', 'assigned', 'replied', 'closed')", name="ck_consultations_status"),
    Index("ix_consultations_conversation_id", "conversation_id"),
    Index("ix_consultations_status", "status"),
    Index("ix_consultations_queue_created_at", "queue", "created_at"),
    Index("ix_consultations_assignee", "assignee"),
    Index("ix_consultations_client_key_created_at", "client_key", "created_at"),
)
"""``client_key``: the hashed client address a web chat escalation came from (never the address
itself), counted by the per-address escalation limit (`backline.consult.service`)."""

consultation_messages = Table(
    "consultation_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_consultation_messages_consultation_id"),
        nullable=False,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("direction", String(16), nullable=False),
    Column("author", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("internal", Boolean, nullable=False),
    Column("meta", JSON, nullable=False),
    CheckConstraint(
        "direction IN ('to_expert', 'from_expert', 'to_customer', 'from_customer')",
        name="ck_consultation_messages_direction",
    ),
    Index("ix_consultation_messages_consultation_id", "consultation_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_audit_events_consultation_id"),
        nullable=False,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_events_consultation_id", "consultation_id"),
    Index("ix_audit_events_action", "action"),
)


expert_threads = Table(
    "expert_threads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_expert_threads_consultation_id"),
        nullable=False,
    ),
    Column("channel", String(32), nullable=False),
    Column("address", String(128), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ux_expert_threads_message", "channel", "address", "message_id", unique=True),
)
"""Messages we posted to an expert (Slack channel + ts, Telegram chat + message id): a reply in
that thread, or to that message, belongs to the consultation."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False),
    Index("ix_webhook_deliveries_seen_at", "seen_at"),
)
"""Webhook deliveries already processed (`backline.hub.dedupe.SqlDedupe`)."""


deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_deliveries_consultation_id"),
        nullable=False,
    ),
    Column("conversation_id", String(255), nullable=False),
    Column("intent", String(64), nullable=False),
    Column("entities", JSON, nullable=False),
    Column("notice", Text),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime),
    Column("delivered_at", UtcDateTime),
    Column("last_error", Text),
    CheckConstraint("status IN ('pending', 'delivered', 'undeliverable')", name="ck_deliveries_status"),
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_deliveries_consultation_id", "consultation_id"),
)
"""The transactional outbox: what must reach the customer's conversation (Rasa's trigger_intent),
committed with the reply that caused it and sent by the hub's delivery worker until Rasa confirms it."""


api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("label", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Index("ix_api_tokens_person_id", "person_id"),
)
"""Per-operator API tokens: only the SHA-256 of a token is kept; the token names its person, who is
the actor of everything done with it (`backline.hub.api_tokens`)."""


sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_sign_in_attempts_scope_key_at", "scope", "key", "at"),
    Index("ix_sign_in_attempts_at", "at"),
)
"""Failed dashboard sign-ins, shared by every hub: ``scope`` is what is counted (``address``,
``user_address``, ``all``), ``key`` its value (hashed), ``at`` when; rows older than the longest
window are deleted as new ones come (`backline.hub.operators`)."""


verdicts = Table(
    "verdicts",
    metadata,
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_verdicts_consultation_id"),
        primary_key=True,
    ),
    Column("verdict", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source", String(16), nullable=False),
    Column("note", Text),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("verdict IN ('needed', 'not_needed', 'too_late')", name="ck_verdicts_verdict"),
    Index("ix_verdicts_at", "at"),
)
"""An expert's verdict on an escalation (needed, not needed, should have come earlier): one per case,
the latest wins; each one given is also an audit event (``verdict``)."""

overrides = Table(
    "overrides",
    metadata,
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_overrides_consultation_id"),
        primary_key=True,
    ),
    Column("kind", String(16), nullable=False),
    Column("reason", String(32)),
    Column("note", Text),
    Column("intent", String(64)),
    Column("corrected_intent", String(64)),
    Column("ai_draft", Text, nullable=False),
    Column("final_text", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('denied', 'edited')", name="ck_overrides_kind"),
    Index("ix_overrides_at", "at"),
)
"""An expert denied or edited the AI's draft: the draft and the final text side by side, with the reason
(from governance.yml's ``override_reasons``; None until the expert gives it) and, for ``wrong_intent``,
the intent the customer meant."""

csat_responses = Table(
    "csat_responses",
    metadata,
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_csat_responses_consultation_id"),
        primary_key=True,
    ),
    Column("conversation_id", String(255), nullable=False),
    Column("score", Integer, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint("score BETWEEN 1 AND 5", name="ck_csat_responses_score"),
    Index("ix_csat_responses_at", "at"),
)
"""The customer's 1-5 answer to the satisfaction question asked after a case closed or was handed back:
one per case (the first answer counts)."""

qa_reviews = Table(
    "qa_reviews",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column(
        "consultation_id",
        String(32),
        ForeignKey("consultations.id", name="fk_qa_reviews_consultation_id"),
    ),
    Column("queue", String(64)),
    Column("intent", String(64)),
    Column("channel", String(32)),
    Column("subject_at", UtcDateTime, nullable=False),
    Column("sampled_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reviewer", String(128)),
    Column("reviewed_at", UtcDateTime),
    Column("verdict", String(32)),
    Column("note", Text),
    Column("corrected_intent", String(64)),
    CheckConstraint("kind IN ('ai_alone', 'accepted_draft', 'closed_case')", name="ck_qa_reviews_kind"),
    CheckConstraint("status IN ('pending', 'reviewed')", name="ck_qa_reviews_status"),
    CheckConstraint(
        "verdict IS NULL OR verdict IN ('right', 'should_have_escalated', 'should_not_have_escalated', 'wrong_answer')",
        name="ck_qa_reviews_verdict",
    ),
    Index("ux_qa_reviews_kind_subject", "kind", "subject", unique=True),
    Index("ix_qa_reviews_status_queue", "status", "queue"),
    Index("ix_qa_reviews_subject_at", "subject_at"),
)
"""QA sampling's review queue: a conversation the AI handled alone (``subject`` its conversation id), an
approved draft or a closed case (``subject`` the consultation id), sampled once (`backline.governance.sampling`);
a reviewer marks it right or wrong with a note, which feeds the metrics (missed escalations) and the
candidate training data."""
