"""Typical waits (30-day median, SLA fallback) and what the customer is told, clock injected."""

import dataclasses
import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backline.consult.selection import choose_experts
from backline.consult.waits import (
    MEDIAN,
    SLA,
    STILL_HERE,
    WaitEstimate,
    customer_message,
    delay_message,
    round_minutes,
    typical_wait,
    wait_phrase,
    window_start,
)
from backline.routing import Holiday, load_experts

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 15, 10, tzinfo=BERLIN)  # a Monday, open


def berlin(year, month, day, hour, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def directory():
    return load_experts(ROOT / "experts.yml")


# --- the estimate -----------------------------------------------------------------------

MEDIAN_CASES = [
    # (id, seconds, sla_minutes, min_cases, minutes, basis, cases)
    ("five cases: the median", [60, 120, 180, 240, 300], 120, 5, 3.0, MEDIAN, 5),
    ("four cases: the SLA", [60, 120, 180, 240], 120, 5, 120.0, SLA, 4),
    ("no cases: the SLA", [], 240, 5, 240.0, SLA, 0),
    ("even count: mean of the middle two", [60, 120, 180, 240, 300, 360], 120, 5, 3.5, MEDIAN, 6),
    ("the median, not the mean", [60, 60, 60, 60, 60, 36000], 120, 5, 1.0, MEDIAN, 6),
    ("unordered input", [300, 60, 240, 120, 180], 120, 5, 3.0, MEDIAN, 5),
    ("lower min_cases", [600, 1200, 1800], 120, 3, 20.0, MEDIAN, 3),
    ("junk is not a case", [60, 120, -5, math.nan, math.inf, 180, 240], 120, 5, 120.0, SLA, 4),
    ("zero seconds is a case", [0, 0, 0, 0, 0], 120, 5, 0.0, MEDIAN, 5),
]


@pytest.mark.parametrize(
    "seconds,sla,min_cases,minutes,basis,cases", [c[1:] for c in MEDIAN_CASES], ids=[c[0] for c in MEDIAN_CASES]
)
def test_typical_wait_median_or_sla(seconds, sla, min_cases, minutes, basis, cases):
    estimate = typical_wait("support", seconds, sla, min_cases)
    assert estimate == WaitEstimate(minutes=minutes, basis=basis, cases=cases)


def test_only_the_last_30_days_count():
    day = dt.timedelta(days=1)
    recent = [(NOW - day * i, 120.0) for i in (1, 2, 3, 4)]  # 2 minutes each
    old = [(NOW - day * 31, 6000.0), (NOW - day * 30 - dt.timedelta(seconds=1), 6000.0)]
    future = [(NOW + day, 6000.0)]
    estimate = typical_wait("billing", recent + old + future, 240, now=NOW)
    assert estimate == WaitEstimate(minutes=240.0, basis=SLA, cases=4)  # 4 recent: still the SLA

    boundary = [(NOW - day * 30, 120.0)]  # exactly 30 days ago: inside
    estimate = typical_wait("billing", recent + boundary + old + future, 240, now=NOW)
    assert estimate == WaitEstimate(minutes=2.0, basis=MEDIAN, cases=5)


def test_window_start_is_what_the_store_gets_as_since():
    assert window_start(NOW) == NOW - dt.timedelta(days=30)
    with pytest.raises(ValueError):
        window_start(dt.datetime(2026, 6, 15))


def test_timestamped_cases_need_the_clock():
    with pytest.raises(ValueError, match="now="):
        typical_wait("billing", [(NOW, 60.0)], 240)


# --- rounding ---------------------------------------------------------------------------

ROUNDING = [
    (0, 1, "1 minute"),
    (0.4, 1, "1 minute"),
    (1, 1, "1 minute"),
    (1.01, 2, "2 minutes"),
    (3, 5, "5 minutes"),
    (4, 5, "5 minutes"),
    (5, 5, "5 minutes"),
    (6, 10, "10 minutes"),
    (12, 15, "15 minutes"),
    (17.5, 20, "20 minutes"),
    (25, 30, "30 minutes"),
    (31, 45, "45 minutes"),
    (46, 60, "1 hour"),
    (60, 60, "1 hour"),
    (89, 60, "1 hour"),
    (90, 120, "2 hours"),
    (240, 240, "4 hours"),
    (1440, 1440, "24 hours"),
]


@pytest.mark.parametrize("minutes,rounded,phrase", ROUNDING)
def test_round_minutes(minutes, rounded, phrase):
    assert round_minutes(minutes) == rounded
    assert wait_phrase(minutes) == phrase
    assert WaitEstimate(minutes, MEDIAN, 5).promised_minutes == rounded


def test_round_rejects_nan():
    with pytest.raises(ValueError):
        round_minutes(math.nan)


# --- in business hours ------------------------------------------------------------------


def test_handoff_wording_from_the_issue(directory):
    estimate = typical_wait("support", [240] * 5, 120)
    message = customer_message("handoff", "customer support", estimate, directory, NOW)
    assert message == "I am connecting you to a colleague. They typically reply in 5 minutes."


def test_consultation_wording(directory):
    estimate = typical_wait("billing", [600, 660, 720, 780, 840], 240)  # median 12 minutes
    message = customer_message("consult", "billing", estimate, directory, NOW)
    assert message == "A specialist from our billing team is checking this; that usually takes about 15 minutes."


def test_sla_fallback_in_the_message(directory):
    estimate = typical_wait("billing", [60, 60, 60, 60], 240)
    message = customer_message("handoff", "billing", estimate, directory, NOW)
    assert message == "I am connecting you to a colleague. They typically reply in 4 hours."


# --- outside business hours -------------------------------------------------------------

OFF_HOURS_CASES = [
    # (id, now, expected "when")
    ("before opening", berlin(2026, 6, 15, 7, 30), "today at 08:00 (Berlin time)"),
    ("after closing", berlin(2026, 6, 15, 18, 0), "on Tuesday at 08:00 (Berlin time)"),
    ("Friday night: Saturday hours", berlin(2026, 6, 19, 19), "on Saturday at 10:00 (Berlin time)"),
    ("Saturday afternoon: Monday", berlin(2026, 6, 20, 14), "on Monday at 08:00 (Berlin time)"),
    ("Sunday", berlin(2026, 6, 21, 23, 59), "on Monday at 08:00 (Berlin time)"),
    ("holiday", berlin(2026, 5, 1, 10), "on Saturday at 10:00 (Berlin time)"),
    ("Easter weekend", berlin(2026, 4, 4, 15), "on Tuesday at 08:00 (Berlin time)"),
    (
        "DST starts in between (clock in UTC)",
        dt.datetime(2026, 3, 28, 14, tzinfo=UTC),
        "on Monday at 08:00 (Berlin time)",
    ),
    (
        "DST ends in between (clock in UTC)",
        dt.datetime(2026, 10, 24, 13, tzinfo=UTC),
        "on Monday at 08:00 (Berlin time)",
    ),
    (
        "late Saturday in UTC is already Sunday in Berlin",
        dt.datetime(2026, 6, 20, 22, 30, tzinfo=UTC),
        "on Monday at 08:00 (Berlin time)",
    ),
]


@pytest.mark.parametrize("now,when", [c[1:] for c in OFF_HOURS_CASES], ids=[c[0] for c in OFF_HOURS_CASES])
def test_off_hours_messages_name_the_reopening(directory, now, when):
    estimate = typical_wait("support", [240] * 5, 120)
    handoff = customer_message("handoff", "customer support", estimate, directory, now)
    assert handoff == (
        "I am connecting you to a colleague. Our customer support team is away right now; "
        f"a colleague will be in touch {when}. Until then I am here for information questions."
    )
    consult = customer_message("consult", "customer support", estimate, directory, now)
    assert consult == (
        f"A specialist from our customer support team will check this when they are back, {when}. {STILL_HERE}"
    )
    assert "typically reply" not in handoff and "usually takes" not in consult


def test_the_selection_decides_who_is_back(directory):
    estimate = typical_wait("legal", [], 1440)
    friday = berlin(2026, 6, 19, 10)  # the business is open; legal counsel works Monday to Thursday
    selection = choose_experts(directory, "legal", "high", friday)
    assert customer_message("handoff", "legal", estimate, directory, friday, selection).endswith(
        "a colleague will be in touch on Monday at 09:00 (Berlin time). Until then I am here for information questions."
    )
    assert customer_message("handoff", "legal", estimate, directory, friday) == (
        "I am connecting you to a colleague. They typically reply in 24 hours."
    )


def test_on_call_queue_is_not_off_hours_at_night(directory):
    estimate = typical_wait("security", [300] * 5, 15)
    night = berlin(2026, 6, 21, 3)  # Sunday night: the business is closed, tariq is on call
    selection = choose_experts(directory, "security", "urgent", night)
    assert customer_message("consult", "account security", estimate, directory, night, selection) == (
        "A specialist from our account security team is checking this; that usually takes about 5 minutes."
    )
    assert "on Monday at 08:00" in customer_message("consult", "account security", estimate, directory, night)


def test_jonas_is_back_at_noon(directory):
    sunday = berlin(2026, 6, 21, 11)
    selection = choose_experts(directory, "billing", "normal", sunday, {})
    billing = dataclasses.replace(directory.queue("billing"), members=("jonas",))
    only_jonas = dataclasses.replace(directory, queues={**directory.queues, "billing": billing})
    jonas_selection = choose_experts(only_jonas, "billing", "normal", sunday)
    estimate = WaitEstimate(30, MEDIAN, 12)
    assert "on Monday at 08:00" in customer_message("handoff", "billing", estimate, directory, sunday, selection)
    assert "on Monday at 12:00" in customer_message("handoff", "billing", estimate, only_jonas, sunday, jonas_selection)


def test_a_reopening_beyond_a_week_names_the_date(directory):
    company_break = tuple(Holiday(dt.date(2026, 12, 24) + dt.timedelta(days=i), "company break") for i in range(9))
    closed = dataclasses.replace(directory, holidays=directory.holidays + company_break)
    now = berlin(2026, 12, 23, 18, 30)  # Wednesday evening; closed 24 Dec to 1 Jan
    message = customer_message("handoff", "billing", WaitEstimate(5, MEDIAN, 9), closed, now)
    assert "a colleague will be in touch on Saturday 2 January at 10:00 (Berlin time)." in message
    within_a_week = customer_message("handoff", "billing", WaitEstimate(5, MEDIAN, 9), closed, berlin(2026, 12, 28, 9))
    assert "on Saturday at 10:00 (Berlin time)" in within_a_week


def test_never_open_says_as_soon_as_possible(directory):
    closed = dataclasses.replace(
        directory, holidays=tuple(Holiday(dt.date(2026, 1, 1) + dt.timedelta(days=i), "x") for i in range(800))
    )
    message = customer_message("consult", "billing", WaitEstimate(5, MEDIAN, 9), closed, NOW)
    assert message == (
        "A specialist from our billing team will check this when they are back, as soon as possible. "
        "Until then I am here for information questions."
    )


def test_bad_mode_and_naive_clock(directory):
    estimate = WaitEstimate(5, MEDIAN, 9)
    with pytest.raises(ValueError, match="mode"):
        customer_message("chat", "billing", estimate, directory, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        customer_message("handoff", "billing", estimate, directory, dt.datetime(2026, 6, 15, 10))


def test_delay_message():
    assert delay_message("handoff", "billing") == (
        "I am sorry, this is taking longer than usual. I have asked a colleague from our billing team to pick it "
        "up and will come back to you as soon as they reply. Meanwhile I am here for information questions."
    )
    assert "a specialist from our legal team" in delay_message("consult", "legal")
    with pytest.raises(ValueError):
        delay_message("other", "legal")


def test_the_30_day_window_is_elapsed_time_across_dst():
    now = berlin(2026, 4, 10, 12)  # CEST; 30 days earlier is CET: 30 x 24 h back is 11:00 on 11 March
    inside = [(berlin(2026, 3, 11, 11, 30), 60.0)] * 5
    outside = [(berlin(2026, 3, 11, 10, 59), 60.0)] * 5
    assert typical_wait("support", inside, 120, now=now) == WaitEstimate(1.0, MEDIAN, 5)
    assert typical_wait("support", outside, 120, now=now) == WaitEstimate(120.0, SLA, 0)
