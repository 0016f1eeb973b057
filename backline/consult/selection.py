"""Expert selection: who gets a consultation, on which channels, and why.

Pure logic over the expert directory (experts.yml): the caller supplies the open load per
person and the clock (``now``, timezone-aware). Order of candidates:

1. members of the queue on duty now with spare capacity (``load < max_load``), least loaded
   first, ties in the order of the queue's ``members`` list;
2. for urgent priority or a high-value customer — and whenever nobody on duty in the queue has
   capacity — the backup queue's members on duty with capacity, then the queue's supervisor;
3. when even that is nobody, the queue's on-duty members at capacity (least loaded first):
   a consultation is never dropped;
4. when nobody in the queue is on duty: every member of the queue, first back first (after
   any backup member or supervisor of step 2 who is on duty); if nobody at all is on duty,
   ``off_hours=True`` and the time the first of them is back (``opens_at``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from backline.routing.directory import WEEKDAYS, Channel, ExpertDirectory, Hours, Person
from backline.utc import as_utc

URGENT = "urgent"
SEARCH_DAYS = 400
"""How far ahead to look for someone's next hours (a year of holidays and closed days)."""

QUEUE_MEMBER = "queue_member"
BACKUP_QUEUE = "backup_queue"
SUPERVISOR = "supervisor"
AT_CAPACITY = "at_capacity"
OFF_DUTY = "off_duty"
REASONS = (QUEUE_MEMBER, BACKUP_QUEUE, SUPERVISOR, AT_CAPACITY, OFF_DUTY)
"""Why a candidate was chosen (``Candidate.reason``)."""


def require_aware(now: dt.datetime, name: str = "now") -> dt.datetime:
    """``now`` unchanged; raises ValueError for a naive datetime (the clock must say its zone)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {now!r}")
    return now


def _within(directory: ExpertDirectory, hours: Hours, at: dt.datetime) -> bool:
    """The directory's rule (`ExpertDirectory.is_open`): inside a range of the day, not a holiday."""
    local = at.astimezone(directory.tz)
    if directory.is_holiday(local.date()):
        return False
    return any(span.contains(local.time()) for span in hours.get(WEEKDAYS[local.weekday()], ()))


def _next_start(directory: ExpertDirectory, hours: Hours, now: dt.datetime) -> Optional[dt.datetime]:
    """``now`` if within ``hours``, else the next start of one of its ranges (UTC); None if never."""
    if _within(directory, hours, now):
        return as_utc(now)
    tz = directory.tz
    today = now.astimezone(tz).date()
    for offset in range(SEARCH_DAYS):
        day = today + dt.timedelta(days=offset)
        if directory.is_holiday(day):
            continue
        for span in hours.get(WEEKDAYS[day.weekday()], ()):
            # Wall-clock time in the company zone; a start inside a DST gap lands just after it.
            start = as_utc(dt.datetime.combine(day, span.start, tzinfo=tz))
            if start > now:
                return start
    return None


def next_on_duty(directory: ExpertDirectory, person_id: str, now: dt.datetime) -> Optional[dt.datetime]:
    """When the person is next on duty (UTC): ``now`` if they are, None if never within a year."""
    require_aware(now)
    person = directory.person(person_id)
    return _next_start(directory, person.hours or directory.business_hours, now)


def next_opening(directory: ExpertDirectory, now: dt.datetime) -> Optional[dt.datetime]:
    """When business hours next begin (UTC): ``now`` if open, None if never within a year."""
    require_aware(now)
    return _next_start(directory, directory.business_hours, now)


def ordered_channels(person: Person) -> Tuple[Channel, ...]:
    """The person's channels, preferred first, the others in the order experts.yml lists them."""
    preferred = [c for c in person.channels if c.type == person.preferred]
    return tuple(preferred + [c for c in person.channels if c.type != person.preferred])


@dataclass(frozen=True)
class Candidate:
    """A person to offer the consultation to, how to reach them, and why they were chosen.

    ``reason``: one of `REASONS`; ``why``: the same in words for the audit trail and dashboard.
    ``queue``: the queue they were drawn from. ``available_at``: when they are (next) on duty, UTC.
    """

    person: Person
    channels: Tuple[Channel, ...]
    reason: str
    why: str
    queue: str
    load: int
    on_duty: bool
    available_at: Optional[dt.datetime]

    @property
    def person_id(self) -> str:
        return self.person.id

    @property
    def channel(self) -> Channel:
        """The preferred channel."""
        return self.channels[0]

    def as_record(self) -> Dict[str, Any]:
        """JSON-serialisable, for the audit trail."""
        return {
            "person": self.person.id,
            "channels": [{"type": c.type, "address": c.address} for c in self.channels],
            "reason": self.reason,
            "why": self.why,
            "queue": self.queue,
            "load": self.load,
            "max_load": self.person.max_load,
            "on_duty": self.on_duty,
            "available_at": self.available_at.isoformat() if self.available_at else None,
        }


class Selection(List[Candidate]):
    """The candidates in order (a list), with what the caller needs to tell the customer.

    ``off_hours``: nobody considered is on duty now; the candidates see the case when back,
    the first at ``opens_at`` (UTC; None when not off hours or nobody ever is).
    """

    def __init__(
        self,
        candidates: Iterable[Candidate],
        *,
        queue: str,
        priority: str,
        high_value: bool,
        now: dt.datetime,
        off_hours: bool = False,
        opens_at: Optional[dt.datetime] = None,
    ) -> None:
        super().__init__(candidates)
        self.queue = queue
        self.priority = priority
        self.high_value = high_value
        self.now = now
        self.off_hours = off_hours
        self.opens_at = opens_at

    def __repr__(self) -> str:
        people = ", ".join(f"{c.person.id}:{c.reason}" for c in self)
        return f"Selection([{people}], queue={self.queue!r}, off_hours={self.off_hours}, opens_at={self.opens_at})"

    def as_record(self) -> Dict[str, Any]:
        """JSON-serialisable, for the audit trail."""
        return {
            "queue": self.queue,
            "priority": self.priority,
            "high_value": self.high_value,
            "at": self.now.isoformat(),
            "off_hours": self.off_hours,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
            "candidates": [c.as_record() for c in self],
        }


def _load_of(load: Mapping[str, int], person_id: str) -> int:
    return int(load.get(person_id, 0))


def _has_capacity(person: Person, load: Mapping[str, int]) -> bool:
    return _load_of(load, person.id) < person.max_load


def _least_loaded(people: Sequence[Person], load: Mapping[str, int]) -> List[Person]:
    """Least loaded first; the sort is stable, so ties keep the given (experts.yml) order."""
    return sorted(people, key=lambda p: _load_of(load, p.id))


def make_candidate(
    directory: ExpertDirectory,
    person: Person,
    queue: str,
    reason: str,
    why: str,
    now: dt.datetime,
    load: Mapping[str, int],
) -> Candidate:
    on_duty = directory.is_on_duty(person.id, now)
    return Candidate(
        person=person,
        channels=ordered_channels(person),
        reason=reason,
        why=why,
        queue=queue,
        load=_load_of(load, person.id),
        on_duty=on_duty,
        available_at=as_utc(now) if on_duty else next_on_duty(directory, person.id, now),
    )


def _load_text(person: Person, load: Mapping[str, int]) -> str:
    return f"load {_load_of(load, person.id)}/{person.max_load}"


def choose_experts(
    directory: ExpertDirectory,
    queue: str,
    priority: str,
    now: dt.datetime,
    load: Optional[Mapping[str, int]] = None,
    high_value: bool = False,
) -> Selection:
    """The people to offer a consultation of ``queue`` to, best first (see the module docstring).

    ``load``: open consultations per person id (missing means 0). ``priority``: the matrix
    priority; ``urgent`` (security) and ``high_value`` bring in the backup queue and the
    supervisor at once instead of waiting for the SLA ladder.
    """
    require_aware(now)
    if queue not in directory.queues:
        raise KeyError(f"unknown queue {queue!r}")
    load = load or {}
    row = directory.queue(queue)
    escalated = priority == URGENT or high_value
    because = "an urgent case" if priority == URGENT else "a high-value customer"
    members = directory.members(queue)
    on_duty = [p for p in members if directory.is_on_duty(p.id, now)]
    free = [p for p in _least_loaded(on_duty, load) if _has_capacity(p, load)]

    chosen: List[Candidate] = [
        make_candidate(directory, p, queue, QUEUE_MEMBER, f"{queue} member on duty, {_load_text(p, load)}", now, load)
        for p in free
    ]
    seen = {p.id for p in free}
    if escalated or (on_duty and not free):
        if not escalated:
            because = f"nobody on duty in {queue} has capacity"
        if row.backup:
            backup_free = [
                p
                for p in _least_loaded(directory.members(row.backup), load)
                if p.id not in seen and directory.is_on_duty(p.id, now) and _has_capacity(p, load)
            ]
            for p in backup_free:
                why = f"backup queue {row.backup} for {queue}: {because}; {_load_text(p, load)}"
                chosen.append(make_candidate(directory, p, row.backup, BACKUP_QUEUE, why, now, load))
                seen.add(p.id)
        boss = directory.person(row.supervisor)
        if boss.id not in seen and directory.is_on_duty(boss.id, now) and _has_capacity(boss, load):
            why = f"supervisor of {queue}: {because}; {_load_text(boss, load)}"
            chosen.append(make_candidate(directory, boss, queue, SUPERVISOR, why, now, load))
            seen.add(boss.id)
    if not chosen and on_duty:
        for p in _least_loaded(on_duty, load):
            why = f"{queue} member on duty at capacity ({_load_text(p, load)}): nobody else is available"
            chosen.append(make_candidate(directory, p, queue, AT_CAPACITY, why, now, load))
    if chosen and on_duty:
        return Selection(chosen, queue=queue, priority=priority, high_value=high_value, now=now)

    # Nobody of the queue on duty: its members anyway (first back first); they see it when back.
    order = {p.id: i for i, p in enumerate(members)}
    back = {p.id: next_on_duty(directory, p.id, now) for p in members}
    never = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    members_by_return = sorted(members, key=lambda p: (back[p.id] or never, _load_of(load, p.id), order[p.id]))
    for p in members_by_return:
        when = back[p.id]
        when_text = when.astimezone(directory.tz).strftime("%a %Y-%m-%d %H:%M") if when else "unknown"
        why = f"nobody in {queue} is on duty; {p.id} is back {when_text} ({directory.timezone})"
        if p.id not in seen:
            chosen.append(make_candidate(directory, p, queue, OFF_DUTY, why, now, load))
    if any(c.on_duty for c in chosen):
        return Selection(chosen, queue=queue, priority=priority, high_value=high_value, now=now)
    known = [t for t in back.values() if t is not None]
    return Selection(
        chosen,
        queue=queue,
        priority=priority,
        high_value=high_value,
        now=now,
        off_hours=True,
        opens_at=min(known) if known else None,
    )
