"""The expert directory (experts.yml): queues, people, channels, business hours, SLA ladder."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backline.routing.source import ExpertsError, PathLike, YamlSource, check_schema, read_yaml

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNEL_TYPES = ("slack", "telegram", "email", "dashboard")
LADDER_STEPS = ("next_person", "backup_queue", "supervisor")
DEFAULT_TEAM_QUEUE = "support"
"""Whose team a customer hears about when a case has no queue yet."""

_ID = r"^[a-z][a-z0-9_.-]*$"
_QUEUE = r"^[a-z][a-z0-9_]*$"
_SPAN = r"^(([01][0-9]|2[0-3]):[0-5][0-9])-((([01][0-9]|2[0-3]):[0-5][0-9])|24:00)$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_SLACK_ID = r"^[UW][A-Z0-9]{6,}$"
_PASSWORD_HASH = r"^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[A-Za-z0-9_=-]+\$[A-Za-z0-9_=-]+$"
_DAY_HOURS = {
    "description": "'HH:MM-HH:MM', a list of such ranges, or 'closed'",
    "anyOf": [
        {"const": "closed"},
        {"type": "string", "pattern": _SPAN},
        {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": _SPAN}},
    ],
}
_HOURS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {day: _DAY_HOURS for day in WEEKDAYS},
}


def _channel_rule(kind: str, required: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": kind}}},
        "then": {"required": list(required), "properties": required},
    }


SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "timezone", "business_hours", "queues", "people", "sla_ladder", "supervisor"],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "timezone": {"type": "string", "minLength": 1},
        "business_hours": {**_HOURS, "required": list(WEEKDAYS)},
        "holidays": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["date", "name"],
                "properties": {
                    "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                    "name": {"type": "string", "minLength": 1},
                },
            },
        },
        "supervisor": {"type": "string", "pattern": _ID},
        "sla_ladder": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["step", "at_sla"],
                "properties": {
                    "step": {"enum": list(LADDER_STEPS)},
                    "at_sla": {"type": "number", "exclusiveMinimum": 0},
                    "description": {"type": "string"},
                },
            },
        },
        "queues": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _QUEUE},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["members", "sla_minutes", "description"],
                "properties": {
                    "team": {"type": "string", "minLength": 1, "pattern": r"\S"},
                    "description": {"type": "string", "minLength": 1},
                    "members": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}},
                    "backup": {"type": ["string", "null"]},
                    "supervisor": {"type": "string"},
                    "sla_minutes": {"type": "integer", "minimum": 1},
                },
            },
        },
        "people": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _ID},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "email", "channels", "preferred", "max_load"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "email": {"type": "string", "pattern": _EMAIL},
                    "title": {"type": "string"},
                    "preferred": {"enum": list(CHANNEL_TYPES)},
                    "max_load": {"type": "integer", "minimum": 1},
                    "hours": _HOURS,
                    "channels": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"enum": list(CHANNEL_TYPES)},
                                "user_id": {"type": "string"},
                                "chat_id": {"type": "integer"},
                                "address": {"type": "string"},
                                "username": {"type": "string"},
                                "password_hash": {"type": "string", "pattern": _PASSWORD_HASH},
                            },
                            "allOf": [
                                _channel_rule("slack", {"user_id": {"type": "string", "pattern": _SLACK_ID}}),
                                _channel_rule("telegram", {"chat_id": {"type": "integer"}}),
                                _channel_rule("email", {"address": {"type": "string", "pattern": _EMAIL}}),
                                {
                                    "if": {"properties": {"type": {"not": {"const": "dashboard"}}}},
                                    "then": {"not": {"required": ["password_hash"]}},
                                },
                            ],
                        },
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class TimeRange:
    start: dt.time
    end: Optional[dt.time]  # None means midnight at the end of the day (24:00)

    def contains(self, moment: dt.time) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{'24:00' if self.end is None else format(self.end, '%H:%M')}"


Hours = Mapping[str, Tuple[TimeRange, ...]]


@dataclass(frozen=True)
class Channel:
    """How to reach a person: ``address`` is the Slack user id, Telegram chat id, e-mail or dashboard user.
    ``password_hash``: the dashboard sign-in (`backline.hub.operators`), dashboard channels only."""

    type: str
    address: str
    password_hash: Optional[str] = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    channels: Tuple[Channel, ...]
    preferred: str
    max_load: int
    title: Optional[str] = None
    hours: Optional[Hours] = None

    def channel(self, kind: Optional[str] = None) -> Optional[Channel]:
        """The channel of type ``kind`` (default: the preferred one), if the person has it."""
        wanted = kind or self.preferred
        return next((c for c in self.channels if c.type == wanted), None)


@dataclass(frozen=True)
class Queue:
    name: str
    description: str
    members: Tuple[str, ...]
    sla_minutes: int
    supervisor: str
    backup: Optional[str] = None
    team: str = ""
    """What customers are told ("our account security team"); the queue's name when not set."""

    def __post_init__(self) -> None:
        if not self.team:
            object.__setattr__(self, "team", self.name)


@dataclass(frozen=True)
class LadderStep:
    """When ``at_sla`` times the SLA has passed without a reply, take ``step``."""

    step: str
    at_sla: float
    description: Optional[str] = None


@dataclass(frozen=True)
class Holiday:
    date: dt.date
    name: str


@dataclass(frozen=True)
class ExpertDirectory:
    path: str
    version: int
    timezone: str
    business_hours: Hours
    holidays: Tuple[Holiday, ...]
    queues: Mapping[str, Queue]
    people: Mapping[str, Person]
    sla_ladder: Tuple[LadderStep, ...]
    supervisor: str
    source: Optional[YamlSource] = field(default=None, compare=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def team_name(self, queue: Optional[str]) -> str:
        """The customer-facing name of a queue's team (`Queue.team`); a queue not in the directory
        keeps its own name, and no queue is the default queue's team (``support``) or "customer support"."""
        if queue and queue in self.queues:
            return self.queues[queue].team
        if not queue and DEFAULT_TEAM_QUEUE in self.queues:
            return self.queues[DEFAULT_TEAM_QUEUE].team
        return queue or "customer support"

    def queue(self, name: str) -> Queue:
        return self.queues[name]

    def person(self, person_id: str) -> Person:
        return self.people[person_id]

    def members(self, queue: str) -> List[Person]:
        return [self.people[p] for p in self.queues[queue].members]

    def is_holiday(self, day: dt.date) -> bool:
        return any(h.date == day for h in self.holidays)

    def is_open(self, at: dt.datetime) -> bool:
        """Whether ``at`` (timezone-aware; naive means the directory's timezone) is within business hours."""
        return self._within(self.business_hours, at)

    def is_on_duty(self, person_id: str, at: dt.datetime) -> bool:
        """Within the person's own hours, or the business hours when they have none."""
        person = self.people[person_id]
        return self._within(person.hours or self.business_hours, at)

    def _within(self, hours: Hours, at: dt.datetime) -> bool:
        local = at.replace(tzinfo=self.tz) if at.tzinfo is None else at.astimezone(self.tz)
        if self.is_holiday(local.date()):
            return False
        ranges = hours.get(WEEKDAYS[local.weekday()], ())
        return any(r.contains(local.time()) for r in ranges)


def load_experts(path: PathLike) -> ExpertDirectory:
    """Load and check experts.yml; raises `ExpertsError` listing every problem with its line."""
    source = read_yaml(path)
    if source.problems:
        raise ExpertsError(source.problems)
    schema_problems = check_schema(source, SCHEMA)
    if schema_problems:
        raise ExpertsError(schema_problems)
    directory = _build(source)
    if source.problems:
        raise ExpertsError(source.problems)
    return directory


def _parse_hours(
    source: YamlSource, keys: Tuple[Any, ...], data: Mapping[str, Any]
) -> Dict[str, Tuple[TimeRange, ...]]:
    hours: Dict[str, Tuple[TimeRange, ...]] = {}
    for day in WEEKDAYS:
        value = data.get(day, "closed")
        spans = [] if value == "closed" else ([value] if isinstance(value, str) else list(value))
        ranges: List[TimeRange] = []
        for i, span in enumerate(spans):
            where = keys + (day,) if isinstance(value, str) else keys + (day, i)
            start_text, end_text = span.split("-")
            start = dt.time.fromisoformat(start_text)
            end = None if end_text == "24:00" else dt.time.fromisoformat(end_text)
            if end is not None and end <= start:
                source.add(where, f"{'.'.join(map(str, keys))}.{day}: {span!r} ends before it starts")
                continue
            current = TimeRange(start, end)
            for other in ranges:
                if current.start < (other.end or dt.time.max) and other.start < (end or dt.time.max):
                    source.add(where, f"{'.'.join(map(str, keys))}.{day}: {span!r} overlaps {other}")
            ranges.append(current)
        hours[day] = tuple(sorted(ranges, key=lambda r: r.start))
    return hours


def _channel(data: Mapping[str, Any], person_id: str) -> Channel:
    kind = data["type"]
    address = {
        "slack": data.get("user_id"),
        "telegram": data.get("chat_id"),
        "email": data.get("address"),
        "dashboard": data.get("username", person_id),
    }[kind]
    return Channel(kind, str(address), data.get("password_hash"))


def _build(source: YamlSource) -> ExpertDirectory:
    data = source.data
    timezone = str(data["timezone"])
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        source.add(("timezone",), f"timezone: unknown time zone {timezone!r}")
    business_hours = _parse_hours(source, ("business_hours",), data["business_hours"])
    holidays: List[Holiday] = []
    for i, h in enumerate(data.get("holidays") or ()):
        try:
            holidays.append(Holiday(dt.date.fromisoformat(h["date"]), str(h["name"])))
        except ValueError:
            source.add(("holidays", i, "date"), f"holidays[{i}]: invalid date {h['date']!r}")
    people: Dict[str, Person] = {}
    for pid, p in data["people"].items():
        keys = ("people", pid)
        channels = tuple(_channel(c, pid) for c in p["channels"])
        kinds = [c.type for c in channels]
        for i, kind in enumerate(kinds):
            if kind in kinds[:i]:
                source.add(keys + ("channels", i), f"people.{pid}: channel type {kind!r} listed twice")
        if p["preferred"] not in kinds:
            source.add(
                keys + ("preferred",),
                f"people.{pid}: preferred channel {p['preferred']!r} is not among the person's channels",
            )
        people[pid] = Person(
            id=pid,
            name=str(p["name"]),
            email=str(p["email"]),
            channels=channels,
            preferred=p["preferred"],
            max_load=int(p["max_load"]),
            title=p.get("title"),
            hours=_parse_hours(source, keys + ("hours",), p["hours"]) if "hours" in p else None,
        )
    supervisor = str(data["supervisor"])
    if supervisor not in people:
        source.add(("supervisor",), f"supervisor: unknown person {supervisor!r}")
    queues: Dict[str, Queue] = {}
    for name, q in data["queues"].items():
        keys = ("queues", name)
        for i, member in enumerate(q["members"]):
            if member not in people:
                source.add(keys + ("members", i), f"queues.{name}: unknown person {member!r} in members")
        backup = q.get("backup")
        if backup is not None and backup not in data["queues"]:
            source.add(keys + ("backup",), f"queues.{name}: unknown backup queue {backup!r}")
        elif backup == name:
            source.add(keys + ("backup",), f"queues.{name}: a queue cannot be its own backup")
        queue_supervisor = str(q.get("supervisor", supervisor))
        if "supervisor" in q and queue_supervisor not in people:
            source.add(keys + ("supervisor",), f"queues.{name}: unknown supervisor {queue_supervisor!r}")
        queues[name] = Queue(
            name=name,
            description=str(q["description"]).strip(),
            members=tuple(q["members"]),
            sla_minutes=int(q["sla_minutes"]),
            supervisor=queue_supervisor,
            backup=backup,
            team=" ".join(str(q.get("team") or name).split()),
        )
    ladder = tuple(LadderStep(s["step"], float(s["at_sla"]), s.get("description")) for s in data["sla_ladder"])
    for i, step in enumerate(ladder):
        if step.step in [s.step for s in ladder[:i]]:
            source.add(("sla_ladder", i, "step"), f"sla_ladder[{i}]: step {step.step!r} listed twice")
        elif i and step.at_sla <= ladder[i - 1].at_sla:
            source.add(("sla_ladder", i, "at_sla"), f"sla_ladder[{i}]: at_sla must increase along the ladder")
    return ExpertDirectory(
        path=source.path,
        version=int(data["version"]),
        timezone=timezone,
        business_hours=business_hours,
        holidays=tuple(holidays),
        queues=queues,
        people=people,
        sla_ladder=ladder,
        supervisor=supervisor,
        source=source,
    )
