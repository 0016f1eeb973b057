"""What the operator dashboard and the customer web chat show of consultations.

- the queue: handoffs (a customer waits for a person) first, then by priority, then oldest
  first; closed cases last; filtered by queue and status (``active``: not closed, or closed with
  a reply that has not reached the customer: awaiting delivery or undeliverable);
- a consultation's view: the record, its timeline (the transcript when it opened, then the
  customer's and the experts' messages) and whether a person has taken the conversation over;
- a conversation's state for the customer: ``ai``, ``checking`` (a specialist is on it) or
  ``human`` (with the person's name).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import func, select

from backline.consult.store import AWAITING_DELIVERY, STATUSES, Consultation, ConsultationStore, Message, audit_events
from backline.routing.directory import ExpertDirectory
from backline.routing.matrix import PRIORITIES

STATUS_FILTERS = ("active", *STATUSES, "all")
HUMAN_ACTIONS = ("take_over", "message")
"""Expert replies after which a person talks to the customer."""


def queue_order(case: Consultation) -> tuple:
    """Sort key: open before closed, handoffs first, higher priority first, then oldest first."""
    return (
        not needs_attention(case),
        case.mode != "handoff",
        -PRIORITIES.index(case.priority),
        case.created_at,
        case.id,
    )


def needs_attention(case: Consultation) -> bool:
    """Open, or closed with a reply that has not reached the customer (awaiting delivery, undeliverable)."""
    return case.is_open or case.delivery_status in (AWAITING_DELIVERY, "undeliverable")


def select_cases(
    cases: Iterable[Consultation], queue: Optional[str] = None, status: str = "active"
) -> List[Consultation]:
    """The cases of ``queue`` (all when None) with ``status`` (one of `STATUS_FILTERS`), in queue order."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"status must be one of {', '.join(STATUS_FILTERS)}")
    kept = [
        c
        for c in cases
        if (queue is None or c.queue == queue)
        and (status == "all" or (needs_attention(c) if status == "active" else c.status == status))
    ]
    return sorted(kept, key=queue_order)


def _name(directory: ExpertDirectory, person_id: Optional[str]) -> Optional[str]:
    person = directory.people.get(person_id or "")
    return person.name if person else person_id


def sla_seconds_left(case: Consultation, now: dt.datetime) -> Optional[float]:
    """Seconds until the first reply is due (negative: overdue); None once replied, closed or without SLA."""
    if case.sla_due_at is None or case.first_reply_at is not None or not case.is_open:
        return None
    return (case.sla_due_at - now).total_seconds()


def queue_row(case: Consultation, directory: ExpertDirectory, now: dt.datetime) -> Dict[str, Any]:
    """One line of the queue: the record without the heavy parts, plus names and the SLA countdown."""
    record = case.as_dict()
    for heavy in ("context", "routing", "transcript"):
        record.pop(heavy)
    return {
        **record,
        "team": directory.team_name(case.queue),
        "assignee_name": _name(directory, case.assignee),
        "sla_seconds_left": sla_seconds_left(case, now),
    }


def human_agent(messages: Sequence[Message]) -> Optional[str]:
    """The person id of whoever took the conversation over (the latest), if anyone did."""
    taken = [
        m.author for m in messages if m.direction == "from_expert" and (m.meta or {}).get("action") in HUMAN_ACTIONS
    ]
    return taken[-1] if taken else None


def timeline(case: Consultation, messages: Sequence[Message], directory: ExpertDirectory) -> List[Dict[str, Any]]:
    """The conversation as the operator follows it: ``{"role", "author", "text", "at", ...}`` entries."""
    entries = [
        {"role": t.get("role", ""), "author": t.get("role", ""), "text": t.get("text", ""), "at": t.get("at")}
        for t in case.transcript
    ]
    for message in messages:
        meta = message.meta or {}
        if message.direction == "from_customer":
            entries.append(
                {"role": "customer", "author": "customer", "text": message.text, "at": message.as_dict()["at"]}
            )
        elif message.direction == "from_expert":
            entries.append(
                {
                    "role": "expert",
                    "author": _name(directory, message.author),
                    "action": meta.get("action"),
                    "text": meta.get("customer_text", message.text),
                    "notes": list(meta.get("internal_notes") or []),
                    "at": message.as_dict()["at"],
                }
            )
    return entries


def case_view(
    case: Consultation, messages: Sequence[Message], directory: ExpertDirectory, now: dt.datetime
) -> Dict[str, Any]:
    """Everything the consultation page shows."""
    agent = human_agent(messages) if case.is_open else None
    return {
        **case.as_dict(),
        "team": directory.team_name(case.queue),
        "assignee_name": _name(directory, case.assignee),
        "sla_seconds_left": sla_seconds_left(case, now),
        "human_mode": agent is not None,
        "human_agent": _name(directory, agent),
        "timeline": timeline(case, messages, directory),
    }


def chat_state(case: Optional[Consultation], messages: Sequence[Message], directory: ExpertDirectory) -> Dict[str, Any]:
    """What the customer's chat shows about the conversation's latest consultation ``case``."""
    if case is None or not case.is_open:
        return {"state": "ai"}
    agent = human_agent(messages)
    if agent is None:
        return {"state": "checking", "team": directory.team_name(case.queue)}
    return {"state": "human", "team": directory.team_name(case.queue), "agent": _name(directory, agent)}


def store_version(store: ConsultationStore) -> int:
    """A number that grows with every change to the store: its latest audit event (every write adds one)."""
    with store.engine.connect().execution_options(backline_read_only=True) as connection:
        return int(connection.execute(select(func.max(audit_events.c.id))).scalar() or 0)
