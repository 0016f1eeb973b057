"""The SLA ladder: deadlines, re-routing when no expert has replied, and when the customer hears.

Deadline: the SLA from when the clock starts (creation, or the queue's next opening for a
case that arrives off hours), halved for urgent priority and shortened for high-value
customers. When no expert has replied by ``start + at_sla x SLA`` the ladder of experts.yml
(``next_person`` 1.0, ``backup_queue`` 1.5, ``supervisor`` 2.0 by default) re-routes the case:
the next person of the queue, the backup queue, then the supervisor. Each step is taken at
most once and returns its audit record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from backline.consult.selection import SUPERVISOR, Candidate, choose_experts, make_candidate, require_aware
from backline.routing.directory import ExpertDirectory
from backline.utc import as_utc  # SLA arithmetic in UTC: aware datetimes sharing a tzinfo subtract as wall clocks

URGENT_FACTOR = 0.5
"""Urgent priority halves the SLA."""
HIGH_VALUE_FACTOR = 0.75
"""A high-value customer gets three quarters of it (on top of the priority's factor)."""
NEXT_PERSON = "next_person"
BACKUP_QUEUE = "backup_queue"


def sla_window(sla_minutes: float, priority: str, high_value: bool = False) -> dt.timedelta:
    """The effective SLA: ``sla_minutes`` x 0.5 for urgent x 0.75 for a high-value customer."""
    if sla_minutes <= 0:
        raise ValueError(f"sla_minutes must be positive, got {sla_minutes!r}")
    factor = (URGENT_FACTOR if priority == "urgent" else 1.0) * (HIGH_VALUE_FACTOR if high_value else 1.0)
    return dt.timedelta(minutes=sla_minutes * factor)


def sla_deadline(
    created_at: dt.datetime,
    sla_minutes: float,
    priority: str,
    high_value: bool = False,
    starts_at: Optional[dt.datetime] = None,
) -> dt.datetime:
    """When the first expert reply is due (``sla_due_at``).

    ``starts_at``: when the clock starts if later than ``created_at`` — pass the selection's
    ``opens_at`` for a case created off hours, so the SLA counts from the reopening.
    """
    start = as_utc(require_aware(created_at, "created_at"))
    if starts_at is not None and as_utc(require_aware(starts_at, "starts_at")) > start:
        start = as_utc(starts_at)
    return start + sla_window(sla_minutes, priority, high_value)


@dataclass(frozen=True)
class ConsultationState:
    """What the ladder needs to know about an open consultation (plain values from the store).

    ``due_at``: the deadline (`sla_deadline`); ``started_at``: when the SLA clock started
    (default ``created_at``; the reopening for an off-hours case); ``tried``: person ids the
    case has been offered to, the current assignee included; ``steps_taken``: ladder steps
    already taken (by name); ``load``: open consultations per person id.
    """

    queue: str
    priority: str
    created_at: dt.datetime
    due_at: dt.datetime
    started_at: Optional[dt.datetime] = None
    tried: Tuple[str, ...] = ()
    steps_taken: Tuple[str, ...] = ()
    high_value: bool = False
    load: Mapping[str, int] = field(default_factory=dict)
    first_reply_at: Optional[dt.datetime] = None
    closed_at: Optional[dt.datetime] = None
    consultation_id: Optional[Any] = None

    @property
    def clock_start(self) -> dt.datetime:
        """When the SLA clock started, in UTC."""
        return as_utc(self.started_at or self.created_at)

    def step_due_at(self, at_sla: float) -> dt.datetime:
        """``at_sla`` times the SLA after the clock started (1.0 is ``due_at``), in UTC."""
        span = max(as_utc(self.due_at) - self.clock_start, dt.timedelta(0))
        return self.clock_start + span * at_sla


@dataclass(frozen=True)
class LadderStep:
    """A ladder step to take now.

    ``step``: next_person | backup_queue | supervisor; ``queue``: where the case goes;
    ``targets``: whom to offer it to, in order (empty when nobody is left: the step is still
    recorded so that it is not taken again); ``skipped``: earlier steps that fell due at the
    same time and are superseded by this one (record them as taken too).
    """

    step: str
    at_sla: float
    due_at: dt.datetime
    now: dt.datetime
    queue: str
    from_queue: str
    targets: Tuple[Candidate, ...]
    skipped: Tuple[str, ...]
    tried: Tuple[str, ...]
    sla_due_at: dt.datetime
    note: Optional[str] = None
    consultation_id: Optional[Any] = None

    @property
    def taken(self) -> Tuple[str, ...]:
        """The steps to add to ``steps_taken``: the skipped ones and this one."""
        return self.skipped + (self.step,)

    @property
    def audit(self) -> Dict[str, Any]:
        """The audit record of the step (JSON-serialisable)."""
        return {
            "action": f"sla_{self.step}",
            "consultation_id": self.consultation_id,
            "step": self.step,
            "at_sla": self.at_sla,
            "sla_due_at": self.sla_due_at.isoformat(),
            "step_due_at": self.due_at.isoformat(),
            "at": self.now.isoformat(),
            "overdue_minutes": round((as_utc(self.now) - as_utc(self.sla_due_at)).total_seconds() / 60, 2),
            "from_queue": self.from_queue,
            "queue": self.queue,
            "targets": [c.as_record() for c in self.targets],
            "tried": list(self.tried),
            "skipped": list(self.skipped),
            "note": self.note,
        }


def _untried(candidates: List[Candidate], tried: Tuple[str, ...], members: Tuple[str, ...]) -> Tuple[Candidate, ...]:
    return tuple(c for c in candidates if c.person.id in members and c.person.id not in tried)


def next_step(state: ConsultationState, directory: ExpertDirectory, now: dt.datetime) -> Optional[LadderStep]:
    """The ladder step due at ``now`` and not yet taken, or None.

    None once an expert has replied or the case is closed (by ``now``), before the first step
    is due, and after the last. Steps are read from the directory's ``sla_ladder``; a step is
    due at ``started_at + at_sla x (due_at - started_at)``, inclusive. When several fell due
    (the timer was down), the furthest is returned and the others are listed as skipped;
    steps before one already taken are never returned.
    """
    now = as_utc(require_aware(now))
    for done in (state.first_reply_at, state.closed_at):
        if done is not None and as_utc(done) <= now:
            return None
    ladder = directory.sla_ladder
    taken = set(state.steps_taken)
    last_taken = max((i for i, s in enumerate(ladder) if s.step in taken), default=-1)
    due = [s for s in ladder[last_taken + 1 :] if s.step not in taken and state.step_due_at(s.at_sla) <= now]
    if not due:
        return None
    rung, skipped = due[-1], tuple(s.step for s in due[:-1])
    row = directory.queue(state.queue)
    tried = tuple(state.tried)
    note: Optional[str] = None
    target_queue = state.queue
    if rung.step == NEXT_PERSON:
        selection = choose_experts(directory, state.queue, state.priority, now, state.load, state.high_value)
        targets = _untried(list(selection), tried, row.members)
        if not targets:
            note = f"nobody in {state.queue} has not been tried yet"
    elif rung.step == BACKUP_QUEUE:
        if row.backup is None:
            targets, note = (), f"{state.queue} has no backup queue"
        else:
            target_queue = row.backup
            selection = choose_experts(directory, row.backup, state.priority, now, state.load, state.high_value)
            targets = _untried(list(selection), tried, directory.queue(row.backup).members)
            if not targets:
                note = f"everyone in the backup queue {row.backup} has been tried"
    else:
        boss = directory.person(row.supervisor)
        why = f"no expert reply {rung.at_sla:g}x the SLA after it started: the supervisor assigns it by hand"
        targets = (make_candidate(directory, boss, state.queue, SUPERVISOR, why, now, state.load),)
    return LadderStep(
        step=rung.step,
        at_sla=rung.at_sla,
        due_at=state.step_due_at(rung.at_sla),
        now=now,
        queue=target_queue,
        from_queue=state.queue,
        targets=targets,
        skipped=skipped,
        tried=tried,
        sla_due_at=as_utc(state.due_at),
        note=note,
        consultation_id=state.consultation_id,
    )


def customer_should_hear(
    now: dt.datetime, promised_minutes: float, created_at: dt.datetime, already_told: bool
) -> bool:
    """Whether to tell the customer about the delay now: once, when the promised wait has passed.

    ``promised_minutes``: what the customer was told (`WaitEstimate.promised_minutes`; for an
    off-hours case, the minutes from ``created_at`` to the promised return).
    """
    require_aware(now)
    require_aware(created_at, "created_at")
    if already_told:
        return False
    return as_utc(now) >= as_utc(created_at) + dt.timedelta(minutes=promised_minutes)
