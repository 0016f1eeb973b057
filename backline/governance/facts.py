"""The facts the outcome metrics are computed from, read from the stores as they are.

- Conversations come from Rasa's tracker store (its SQL ``events`` table, the same one Rasa's own
  ``SQLTrackerStore`` writes: ``sender_id, type_name, timestamp, intent_name, action_name, data``),
  read-only: when a conversation started, on which channel, the topic (its first intent with a topic),
  the routing decision of every user turn (the ``routing_decision`` slot: tier, confidence, triggers,
  evidence, action), when it escalated, when the AI answered alone and when the customer rejected an
  answer. `TrackerReader` also gives a conversation's transcript and decisions (the audit trail of
  turns the AI took alone).
- Cases come from the consultation store: the consultation, its final decision, verdict, override,
  satisfaction answer, SLA breach and ladder steps (`case_facts`).

Nothing here computes a metric (`backline.governance.metrics` does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, and_, create_engine, func, inspect, select
from sqlalchemy.engine import Engine

from backline import paths
from backline.consult.masking import mask
from backline.consult.replies import RESOLUTIONS, case_intent
from backline.consult.schema import (
    audit_events,
    consultation_messages,
    consultations,
    csat_responses,
    overrides,
    verdicts,
)
from backline.utc import as_utc

ENV_TRACKER_URL = "BACKLINE_TRACKER_DB_URL"
ENV_TRACKER_PATH = "BACKLINE_TRACKER_DB"
ESCALATING_ACTIONS = ("action_handoff", "action_consult", "action_route_collected")
"""Actions that open (or add to) a consultation: a conversation that ran one escalated."""
ESCALATING_DECISIONS = ("handoff", "consult")
REJECTED_INTENT = "answer_rejected"
ROUTING_SLOT = "routing_decision"
LADDER_ACTIONS = ("sla_next_person", "sla_backup_queue", "sla_supervisor")
BATCH = 500

_events = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("type_name", String(255)),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
"""Rasa 3.6's ``SQLTrackerStore`` table (rasa/core/tracker_store.py, ``SQLEvent``), read-only here."""


def tracker_url(env: Optional[Mapping[str, str]] = None) -> str:
    """The tracker store's SQLAlchemy URL: ``BACKLINE_TRACKER_DB_URL`` (the scale profile), else the SQLite
    file ``BACKLINE_TRACKER_DB`` (default var/tracker.db), as endpoints.yml configures Rasa."""
    env = os.environ if env is None else env
    if env.get(ENV_TRACKER_URL):
        return env[ENV_TRACKER_URL]
    return f"sqlite:///{env.get(ENV_TRACKER_PATH) or paths.VAR / 'tracker.db'}"


@dataclass(frozen=True)
class ConversationFact:
    """One conversation as the tracker store saw it."""

    conversation_id: str
    channel: str
    started_at: dt.datetime
    intent: Optional[str]
    """The first intent with a topic (not greetings, thanks, yes/no), or None."""
    escalated_at: Tuple[dt.datetime, ...] = ()
    answered_at: Tuple[dt.datetime, ...] = ()
    """Turns the AI answered alone (a topical intent, routing action ``answer``)."""
    rejected_at: Tuple[dt.datetime, ...] = ()
    last_at: Optional[dt.datetime] = None
    reasons: Tuple[str, ...] = ()

    @property
    def escalated(self) -> bool:
        return bool(self.escalated_at)


@dataclass(frozen=True)
class CaseFact:
    """One consultation with what became of it."""

    consultation_id: str
    conversation_id: str
    mode: str
    queue: str
    intent: Optional[str]
    reasons: Tuple[str, ...]
    status: str
    created_at: dt.datetime
    first_reply_at: Optional[dt.datetime] = None
    closed_at: Optional[dt.datetime] = None
    resolution: Optional[str] = None
    business_hours: bool = True
    had_draft: bool = False
    decision: Optional[str] = None
    """The final decision's action (approve, deny, answer, close, hand_back), if closed by an expert."""
    verdict: Optional[str] = None
    override_kind: Optional[str] = None
    override_reason: Optional[str] = None
    csat: Optional[int] = None
    sla_due_at: Optional[dt.datetime] = None
    ladder_steps: Tuple[str, ...] = ()
    channel: str = "unknown"
    """The customer's channel (from the conversation), ``unknown`` when the tracker has no record."""

    def sla_breached(self, now: dt.datetime) -> bool:
        """No expert reply by the deadline (replied late, or still waiting past it)."""
        if self.sla_due_at is None:
            return False
        return (self.first_reply_at or now) > self.sla_due_at


@dataclass(frozen=True)
class ReviewFact:
    kind: str
    subject_at: dt.datetime
    status: str
    verdict: Optional[str]
    queue: Optional[str]
    intent: Optional[str]
    channel: Optional[str]
    conversation_id: str = ""
    consultation_id: Optional[str] = None


@dataclass
class Facts:
    conversations: List[ConversationFact] = field(default_factory=list)
    cases: List[CaseFact] = field(default_factory=list)
    reviews: List[ReviewFact] = field(default_factory=list)


def _at(timestamp: Optional[float]) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(timestamp or 0), tz=dt.timezone.utc)


def _epoch(moment: dt.datetime) -> float:
    return as_utc(moment).timestamp()


class TrackerReader:
    """Rasa's SQL tracker store, read-only. ``url``: a SQLAlchemy URL (`tracker_url`)."""

    def __init__(self, url: Optional[str] = None, *, conversational: Sequence[str] = ()) -> None:
        self.url = url or tracker_url()
        self.engine: Engine = create_engine(self.url, future=True)
        self.conversational = frozenset(conversational)

    def dispose(self) -> None:
        self.engine.dispose()

    def _has_events(self) -> bool:
        """Whether Rasa has written its table yet (a SQLite file that does not exist is not created here)."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
            return False
        return inspect(self.engine).has_table("events")

    def started_between(self, since: dt.datetime, until: dt.datetime) -> List[str]:
        """Conversations whose first customer message falls in [since, until)."""
        if not self._has_events():
            return []
        first = func.min(_events.c.timestamp)
        statement = (
            select(_events.c.sender_id)
            .where(_events.c.type_name == "user")
            .group_by(_events.c.sender_id)
            .having(and_(first >= _epoch(since), first < _epoch(until)))
        )
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(statement)]

    def events(self, conversation_ids: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
        """Every event of these conversations, in order, as Rasa's JSON."""
        found: Dict[str, List[Dict[str, Any]]] = {cid: [] for cid in conversation_ids}
        if not conversation_ids or not self._has_events():
            return found
        with self.engine.connect() as connection:
            for start in range(0, len(conversation_ids), BATCH):
                chunk = list(conversation_ids[start : start + BATCH])
                statement = (
                    select(_events.c.sender_id, _events.c.data)
                    .where(_events.c.sender_id.in_(chunk))
                    .order_by(_events.c.id)
                )
                for sender_id, data in connection.execute(statement):
                    try:
                        found[sender_id].append(json.loads(data))
                    except (TypeError, ValueError):
                        continue
        return found

    def conversations(self, since: dt.datetime, until: dt.datetime) -> List[ConversationFact]:
        """The conversations that started in [since, until), with their facts."""
        ids = self.started_between(since, until)
        return [conversation_fact(cid, events, self.conversational) for cid, events in self.events(ids).items()]

    def transcript(self, conversation_id: str) -> List[Dict[str, Any]]:
        """``[{"at", "speaker" (customer | assistant | agent name), "text"}]``, masked."""
        lines = []
        for event in self.events([conversation_id]).get(conversation_id, []):
            if event.get("event") == "user" and event.get("text"):
                lines.append(
                    {
                        "at": _at(event.get("timestamp")).isoformat(),
                        "speaker": "customer",
                        "text": mask(str(event["text"])),
                    }
                )
            elif event.get("event") == "bot" and event.get("text"):
                sender = (event.get("metadata") or {}).get("sender_name") or "assistant"
                lines.append(
                    {"at": _at(event.get("timestamp")).isoformat(), "speaker": sender, "text": mask(str(event["text"]))}
                )
        return lines

    def decisions(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Each user turn's routing decision (the audit trail of the turns, AI-only ones included): when, the
        customer's text (masked), and the decision record (intent, confidence, tier, triggers, evidence, action)."""
        turns: List[Dict[str, Any]] = []
        text: Optional[str] = None
        for event in self.events([conversation_id]).get(conversation_id, []):
            if event.get("event") == "user":
                text = mask(str(event.get("text") or ""))
            elif (
                event.get("event") == "slot"
                and event.get("name") == ROUTING_SLOT
                and isinstance(event.get("value"), dict)
            ):
                turns.append({"at": _at(event.get("timestamp")).isoformat(), "text": text, **event["value"]})
        return turns


def conversation_fact(
    conversation_id: str, events: Sequence[Mapping[str, Any]], conversational: Iterable[str] = ()
) -> ConversationFact:
    """The facts of one conversation from its Rasa events (JSON dicts, in order)."""
    skip = frozenset(conversational)
    channel, started, last, intent = "unknown", None, None, None
    escalated: List[dt.datetime] = []
    answered: List[dt.datetime] = []
    rejected: List[dt.datetime] = []
    reasons: List[str] = []
    for event in events:
        kind, at = event.get("event"), _at(event.get("timestamp"))
        if kind == "user":
            started = started or at
            last = at
            channel = str(event.get("input_channel") or channel)
            name = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if name == REJECTED_INTENT:
                rejected.append(at)
        elif kind == "slot" and event.get("name") == ROUTING_SLOT and isinstance(event.get("value"), dict):
            record = event["value"]
            topic = record.get("intent")
            topical = isinstance(topic, str) and topic not in skip and not topic.startswith("EXTERNAL_")
            if topical and intent is None:
                intent = str(topic).split("/", 1)[0]
            if record.get("action") in ESCALATING_DECISIONS:
                escalated.append(at)
                if record.get("reason") and record["reason"] not in reasons:
                    reasons.append(str(record["reason"]))
            elif record.get("action") == "answer" and topical and topic != REJECTED_INTENT:
                answered.append(at)
        elif kind == "action" and event.get("name") in ESCALATING_ACTIONS:
            if not escalated or (at - escalated[-1]).total_seconds() > 5:
                escalated.append(at)
    return ConversationFact(
        conversation_id=conversation_id,
        channel=channel,
        started_at=started or _at(0),
        intent=intent,
        escalated_at=tuple(escalated),
        answered_at=tuple(answered),
        rejected_at=tuple(rejected),
        last_at=last,
        reasons=tuple(reasons),
    )


def case_facts(
    engine: Engine,
    since: dt.datetime,
    until: dt.datetime,
    is_open: Any = None,
    channels: Optional[Mapping[str, str]] = None,
) -> List[CaseFact]:
    """The consultations opened in [since, until) with their outcomes, from the consultation store's
    database. ``is_open(at)``: whether a moment is within business hours (the expert directory's);
    ``channels``: the customer channel per conversation id."""
    channels = channels or {}
    window = and_(
        consultations.c.created_at >= as_utc(since).replace(tzinfo=None),
        consultations.c.created_at < as_utc(until).replace(tzinfo=None),
    )
    with engine.connect() as connection:
        rows = list(connection.execute(select(consultations).where(window)))
        ids = [row.id for row in rows]
        by_id: Dict[str, Dict[str, Any]] = {cid: {"ladder": [], "decision": None} for cid in ids}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            for row in connection.execute(select(verdicts).where(verdicts.c.consultation_id.in_(chunk))):
                by_id[row.consultation_id]["verdict"] = row.verdict
            for row in connection.execute(select(overrides).where(overrides.c.consultation_id.in_(chunk))):
                by_id[row.consultation_id]["override"] = (row.kind, row.reason)
            for row in connection.execute(select(csat_responses).where(csat_responses.c.consultation_id.in_(chunk))):
                by_id[row.consultation_id]["csat"] = row.score
            ladder = (
                select(audit_events.c.consultation_id, audit_events.c.action)
                .where(and_(audit_events.c.consultation_id.in_(chunk), audit_events.c.action.in_(LADDER_ACTIONS)))
                .order_by(audit_events.c.id)
            )
            for cid, action in connection.execute(ladder):
                by_id[cid]["ladder"].append(action)
            decisions = (
                select(consultation_messages.c.consultation_id, consultation_messages.c.meta)
                .where(
                    and_(
                        consultation_messages.c.consultation_id.in_(chunk),
                        consultation_messages.c.direction == "from_expert",
                    )
                )
                .order_by(consultation_messages.c.id)
            )
            for cid, meta in connection.execute(decisions):
                action = (meta or {}).get("action")
                if action in RESOLUTIONS:
                    by_id[cid]["decision"] = action
    facts = []
    for row in rows:
        extra = by_id[row.id]
        created = as_utc(row.created_at)
        override = extra.get("override") or (None, None)
        intent = case_intent(_Case(row.brief, row.routing))  # type: ignore[arg-type]
        facts.append(
            CaseFact(
                consultation_id=row.id,
                conversation_id=row.conversation_id,
                mode=row.mode,
                queue=row.queue,
                intent=intent,
                reasons=tuple(row.reasons or ()),
                status=row.status,
                created_at=created,
                first_reply_at=as_utc(row.first_reply_at) if row.first_reply_at else None,
                closed_at=as_utc(row.closed_at) if row.closed_at else None,
                resolution=row.resolution,
                business_hours=bool(is_open(created)) if is_open else True,
                had_draft=bool(row.ai_draft),
                decision=extra["decision"],
                verdict=extra.get("verdict"),
                override_kind=override[0],
                override_reason=override[1],
                csat=extra.get("csat"),
                sla_due_at=as_utc(row.sla_due_at) if row.sla_due_at else None,
                ladder_steps=tuple(extra["ladder"]),
                channel=channels.get(row.conversation_id, "unknown"),
            )
        )
    return facts


@dataclass(frozen=True)
class _Case:
    brief: Any
    routing: Any
