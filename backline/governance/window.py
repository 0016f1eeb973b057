"""The moments a governance window is given in, one rule for the API, the dashboard and the commands:
``30d`` / ``12w`` / ``24h`` (that long before now), an ISO date (its midnight, UTC; as the end of a
window, the next midnight: an ``until`` date includes its day) or an ISO date and time (naive or ``Z``:
UTC). Each caller words its own error (a query parameter, a command-line option)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from backline.utc import as_utc

_SPAN = re.compile(r"^(\d{1,5})([hdw])$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
MAX_CHARS = 40


def parse_moment(value: Optional[str], now: dt.datetime, *, end_of_day: bool = False) -> Optional[dt.datetime]:
    """The moment ``value`` names (None for None or blank); ValueError (no message) for anything else."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if len(text) > MAX_CHARS:
        raise ValueError
    span = _SPAN.match(text)
    if span:
        return now - dt.timedelta(**{_UNITS[span.group(2).lower()]: int(span.group(1))})
    if _DATE.match(text):
        day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.timezone.utc)
        return day + dt.timedelta(days=1) if end_of_day else day
    return as_utc(dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text))
