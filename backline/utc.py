"""Time, one policy for the whole project: aware datetimes in UTC; naive input is taken as UTC."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


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


def iso(moment: Optional[datetime]) -> Optional[str]:
    """ISO-8601 in UTC, or None."""
    return None if moment is None else as_utc(moment).isoformat()
