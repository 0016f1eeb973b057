"""Wait times and what the customer is told while an expert is consulted.

The typical wait is the median time to the first expert reply in the queue over the last 30
days, or the queue's SLA while there are fewer than ``min_cases`` such cases. Customers hear it
rounded to a figure people say (1, 2, 5, 10, 15, 20, 30, 45, 60 minutes, then hours).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from backline.consult.selection import Selection, next_opening, require_aware
from backline.routing.directory import ExpertDirectory
from backline.utc import as_utc

WINDOW = dt.timedelta(days=30)
MIN_CASES = 5
STEPS = (1, 2, 5, 10, 15, 20, 30, 45, 60)
"""Minute figures a wait is rounded up to; above an hour, whole hours."""
MEDIAN = "median_30d"
SLA = "sla"
CONSULT = "consult"
HANDOFF = "handoff"
MODES = (CONSULT, HANDOFF)
STILL_HERE = "Until then I am here for information questions."

FirstReply = Union[float, Tuple[dt.datetime, float]]
"""Seconds to first reply; or ``(when, seconds)``, ``when`` the case's time, filtered to the window."""


@dataclass(frozen=True)
class WaitEstimate:
    """``minutes``: the exact median (or the SLA); ``basis``: "median_30d" or "sla";
    ``cases``: how many first replies in the window were counted."""

    minutes: float
    basis: str
    cases: int

    @property
    def promised_minutes(self) -> int:
        """The rounded figure the customer is told (see `round_minutes`)."""
        return round_minutes(self.minutes)

    @property
    def phrase(self) -> str:
        """``"5 minutes"``, ``"1 minute"``, ``"2 hours"``."""
        return wait_phrase(self.minutes)


def window_start(now: dt.datetime, window: dt.timedelta = WINDOW) -> dt.datetime:
    """The start of the median's window: what to pass the store as ``since``."""
    return as_utc(require_aware(now)) - window


def typical_wait(
    queue: str,
    first_reply_seconds: Sequence[FirstReply],
    sla_minutes: float,
    min_cases: int = MIN_CASES,
    *,
    now: Optional[dt.datetime] = None,
    window: dt.timedelta = WINDOW,
) -> WaitEstimate:
    """The queue's typical wait: median of the last 30 days' first-reply times, else the SLA.

    Plain numbers are taken as already limited to the window (the store's ``since``);
    ``(when, seconds)`` pairs are kept when ``now - window <= when <= now`` (``now`` required).
    Negative, NaN and infinite durations are ignored. ``queue`` names the queue in errors only.
    """
    kept = []
    for item in first_reply_seconds:
        if isinstance(item, tuple):
            when, seconds = item
            if now is None:
                raise ValueError(f"typical_wait({queue!r}): timestamped first replies need now=")
            require_aware(now)
            moment = as_utc(require_aware(when, "when"))
            if not (window_start(now, window) <= moment <= as_utc(now)):
                continue
        else:
            seconds = item
        value = float(seconds)
        if math.isfinite(value) and value >= 0:
            kept.append(value)
    if len(kept) < min_cases:
        return WaitEstimate(minutes=float(sla_minutes), basis=SLA, cases=len(kept))
    return WaitEstimate(minutes=statistics.median(kept) / 60.0, basis=MEDIAN, cases=len(kept))


def round_minutes(minutes: float) -> int:
    """Up to the next of 1, 2, 5, 10, 15, 20, 30, 45, 60; above an hour, the nearest whole hour."""
    if not math.isfinite(minutes):
        raise ValueError(f"a wait must be a finite number of minutes, got {minutes!r}")
    for step in STEPS:
        if minutes <= step:
            return step
    return 60 * math.floor(minutes / 60 + 0.5)


def wait_phrase(minutes: float) -> str:
    """The rounded wait in words: ``"1 minute"``, ``"15 minutes"``, ``"1 hour"``, ``"3 hours"``."""
    rounded = round_minutes(minutes)
    if rounded < 60:
        return f"{rounded} minute{'s' if rounded != 1 else ''}"
    hours = rounded // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"


def when_back(back_at: dt.datetime, now: dt.datetime, directory: ExpertDirectory) -> str:
    """``"today at 08:00"``, ``"on Monday at 08:00"``, beyond a week ``"on Monday 29 December at 08:00"``,
    in the company time zone, followed by its city (``"(Berlin time)"``)."""
    tz = directory.tz
    local, today = back_at.astimezone(tz), now.astimezone(tz).date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        day = "today"
    elif (local.date() - today).days < 7:
        day = f"on {local:%A}"
    else:
        day = f"on {local:%A} {local.day} {local:%B}"
    city = directory.timezone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{day} at {clock} ({city} time)"


def customer_message(
    mode: str,
    team_name: str,
    estimate: WaitEstimate,
    directory: ExpertDirectory,
    now: dt.datetime,
    selection: Optional[Selection] = None,
) -> str:
    """What the customer is told when the consultation starts.

    Off hours — the ``selection``'s ``off_hours`` when given (its ``opens_at`` is when someone
    is back), otherwise outside the directory's business hours — the message says when a
    colleague is back and that the AI stays available for information questions.
    """
    require_aware(now)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if selection is not None:
        off_hours, back_at = selection.off_hours, selection.opens_at
    else:
        back_at = next_opening(directory, now)
        off_hours = back_at is None or back_at > now
    if not off_hours:
        if mode == HANDOFF:
            return f"I am connecting you to a colleague. They typically reply in {estimate.phrase}."
        return f"A specialist from our {team_name} team is checking this; that usually takes about {estimate.phrase}."
    when = when_back(back_at, now, directory) if back_at is not None else "as soon as possible"
    if mode == HANDOFF:
        return (
            f"I am connecting you to a colleague. Our {team_name} team is away right now; "
            f"a colleague will be in touch {when}. {STILL_HERE}"
        )
    return f"A specialist from our {team_name} team will check this when they are back, {when}. {STILL_HERE}"


def delay_message(mode: str, team_name: str) -> str:
    """What the customer is told once the promised wait has passed (see `sla.customer_should_hear`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    who = "a colleague" if mode == HANDOFF else "a specialist"
    return (
        f"I am sorry, this is taking longer than usual. I have asked {who} from our {team_name} team "
        f"to pick it up and will come back to you as soon as they reply. "
        f"Meanwhile I am here for information questions."
    )
