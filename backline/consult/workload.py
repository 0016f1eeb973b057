"""How busy the experts are and how fast they answer, from the consultation store: a person's open
cases (`Workload.open_for`, `Workload.open_load`) and a queue's first-reply times
(`Workload.first_reply_times`), which expert selection and the promised wait use.
"""

from __future__ import annotations

from datetime import datetime
from typing import List, Optional

from sqlalchemy import func, select

from backline.consult.records import ACTIVE_STATUSES, MODES
from backline.consult.rows import checked_choice
from backline.consult.schema import consultations
from backline.consult.transactions import StoreBase
from backline.utc import naive_utc


class Workload(StoreBase):
    """Operator load and reply-time queries (part of `ConsultationStore`)."""

    def open_for(self, person_id: str) -> List[str]:
        """Ids of the cases assigned to the person that are not closed, oldest first."""
        statement = (
            select(consultations.c.id)
            .where(consultations.c.assignee == person_id, consultations.c.status.in_(ACTIVE_STATUSES))
            .order_by(consultations.c.created_at, consultations.c.id)
        )
        with self._read() as connection:
            return list(connection.execute(statement).scalars())

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
            consultations.c.created_at >= naive_utc(since),
        )
        if until is not None:
            statement = statement.where(consultations.c.created_at < naive_utc(until))
        if mode is not None:
            statement = statement.where(consultations.c.mode == checked_choice("mode", mode, MODES))
        statement = statement.order_by(consultations.c.created_at, consultations.c.id)
        with self._read() as connection:
            return [(row.first_reply_at - row.created_at).total_seconds() for row in connection.execute(statement)]

    def open_load(self, person_id: str) -> int:
        """How many cases that are not closed are assigned to the person."""
        statement = (
            select(func.count())
            .select_from(consultations)
            .where(consultations.c.assignee == person_id, consultations.c.status.in_(ACTIVE_STATUSES))
        )
        with self._read() as connection:
            return int(connection.execute(statement).scalar_one())
