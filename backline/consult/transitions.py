"""What happens to an open case: assigned, moved to another queue, given a new SLA deadline, switched
between consult and handoff, escalated again, first replied to, closed. Each is one transaction on
the locked case with its audit event (`backline.consult.transactions.StoreBase`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from backline.consult.records import MODES, Consultation, ConsultationClosed
from backline.consult.rows import checked_choice, checked_text, to_consultation
from backline.consult.transactions import StoreBase
from backline.routing.matrix import PRIORITIES
from backline.utc import as_utc
from backline.utc import iso as _iso


class CaseTransitions(StoreBase):
    """The changes of an existing case, each audited (part of `ConsultationStore`)."""

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
            checked_choice("priority", priority, PRIORITIES)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            reasons = list(row.reasons or ())
            if reason and reason not in reasons:
                reasons.append(checked_text("reason", reason, 64))
            new_priority = row.priority
            if priority is not None and PRIORITIES.index(priority) > PRIORITIES.index(row.priority):
                new_priority = priority
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "escalated_again",
                {
                    **dict(detail or {}),
                    "reason": reason,
                    "reasons": reasons,
                    "previous_reasons": list(row.reasons or ()),
                    "priority": new_priority,
                    "previous_priority": row.priority,
                },
            )
            return self._update(connection, consultation_id, reasons=reasons, priority=new_priority)

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
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "assigned",
                {
                    "assignee": person_id,
                    "channel": channel,
                    "previous_assignee": row.assignee,
                    "previous_channel": row.channel,
                    **dict(detail or {}),
                },
            )
            return self._update(
                connection,
                consultation_id,
                assignee=checked_text("person_id", person_id, 64),
                channel=checked_text("channel", channel, 32),
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
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "queue_changed",
                {"queue": queue, "previous_queue": row.queue, **dict(detail or {})},
            )
            return self._update(connection, consultation_id, queue=checked_text("queue", queue, 64))

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
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "sla_due_changed",
                {"sla_due_at": _iso(due), "previous_sla_due_at": _iso(row.sla_due_at), **dict(detail or {})},
            )
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
        new_mode = checked_choice("mode", mode, MODES)
        with self._write() as connection:
            row = self._locked(connection, consultation_id)
            if row.status == "closed":
                raise ConsultationClosed(consultation_id)
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "mode_changed",
                {"mode": new_mode, "previous_mode": row.mode, **dict(detail or {})},
            )
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
                return to_consultation(row)
            seconds = (moment - row.created_at).total_seconds()
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "first_reply",
                {"seconds": seconds, "assignee": row.assignee},
            )
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
                self._append(
                    connection,
                    consultation_id,
                    moment,
                    actor,
                    "close_ignored",
                    {"resolution": resolution, "closed_at": _iso(row.closed_at)},
                )
                return to_consultation(row)
            self._append(
                connection,
                consultation_id,
                moment,
                actor,
                "closed",
                {"resolution": resolution, "previous_status": row.status, **dict(detail or {})},
            )
            return self._update(connection, consultation_id, status="closed", closed_at=moment, resolution=resolution)
