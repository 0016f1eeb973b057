"""Time, one policy for the whole project: aware datetimes in UTC; naive input is taken as UTC.

- Every datetime the project hands around is aware and in UTC (`utcnow`, `as_utc`).
- A naive datetime means UTC, never local time: databases give naive UTC back, and `as_utc` reads
  it that way (``datetime.astimezone`` would read it as the machine's local time: do not call it on
  a value that may be naive).
- What is stored goes in as naive UTC (`naive_utc`), so SQLite and PostgreSQL compare alike.
- Epoch seconds are UTC instants (`from_timestamp`).
- Written out, a moment is ISO-8601 in UTC (`iso`; `iso_any` also reads what a transcript or a
  tracker may hold: dates, epoch seconds, ISO strings with ``Z`` or an offset).

Code that must refuse naive input (a clock that has to say its zone) says so itself
(`backline.consult.selection.require_aware`). ``backline.routing`` keeps its own copy of the policy:
it imports nothing outside itself.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any, Optional


def utcnow() -> datetime:
    """The real clock (aware UTC)."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; naive input is taken as UTC."""
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def naive_utc(moment: datetime) -> datetime:
    """The naive UTC datetime a database stores for ``moment`` (naive input is taken as UTC)."""
    return as_utc(moment).replace(tzinfo=None)


def from_timestamp(seconds: float) -> datetime:
    """The aware UTC datetime of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def iso(moment: Optional[datetime]) -> Optional[str]:
    """ISO-8601 in UTC, or None."""
    return None if moment is None else as_utc(moment).isoformat()


def iso_any(value: Any) -> Optional[str]:
    """An ISO-8601 string for datetimes (in UTC; naive taken as UTC), dates, epoch seconds and ISO
    strings (``Z`` accepted); None for anything else."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is not None and not isinstance(value, (bool, str)):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
        if math.isnan(seconds) or math.isinf(seconds):
            return None
        try:
            return from_timestamp(seconds).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            return iso_any(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None
