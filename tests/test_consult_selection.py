"""Expert selection against the demo experts.yml, with the clock injected (Europe/Berlin).

Calendar used: 2026-06-15 is a Monday; 2026-05-01 (Labour Day) and 2026-04-03 (Good Friday)
are holidays in experts.yml; Berlin switches to summer time on 2026-03-29 and back on 2026-10-25.
"""

import dataclasses
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backline.consult.selection import (
    AT_CAPACITY,
    BACKUP_QUEUE,
    OFF_DUTY,
    QUEUE_MEMBER,
    SUPERVISOR,
    choose_experts,
    next_on_duty,
    next_opening,
    ordered_channels,
)
from backline.routing import Holiday, load_experts

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc


def berlin(year, month, day, hour, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def directory():
    return load_experts(ROOT / "experts.yml")


def ids(selection):
    return [c.person.id for c in selection]


def reasons(selection):
    return [c.reason for c in selection]


# --- who is on duty ---------------------------------------------------------------------

ON_DUTY_CASES = [
    # (id, now, queue, load, expected people in order)
    ("weekday, all on duty, ties in members order", berlin(2026, 6, 15, 10), "support", {}, ["felix", "sofia", "mara"]),
    ("Saturday hours 10-14", berlin(2026, 6, 20, 11), "support", {}, ["felix", "sofia", "mara"]),
    ("sofia's lunch break", berlin(2026, 6, 15, 12, 30), "support", {}, ["felix", "mara"]),
    ("sofia ends at 17:00", berlin(2026, 6, 15, 17), "support", {}, ["felix", "mara"]),
    ("business opens 08:00 sharp", berlin(2026, 6, 15, 8), "support", {}, ["felix", "sofia", "mara"]),
    ("jonas starts at 12:00", berlin(2026, 6, 15, 10), "billing", {}, ["mara"]),
    ("jonas after business hours", berlin(2026, 6, 15, 19), "billing", {}, ["jonas"]),
    ("both billing people", berlin(2026, 6, 15, 13), "billing", {"mara": 2, "jonas": 1}, ["jonas", "mara"]),
    ("on-call security at night", berlin(2026, 6, 15, 3), "security", {}, ["tariq"]),
    (
        "now given in UTC: 06:30Z is 08:30 in Berlin",
        dt.datetime(2026, 6, 15, 6, 30, tzinfo=UTC),
        "support",
        {},
        ["felix", "sofia", "mara"],
    ),
]


@pytest.mark.parametrize("now,queue,load,expected", [c[1:] for c in ON_DUTY_CASES], ids=[c[0] for c in ON_DUTY_CASES])
def test_on_duty_members(directory, now, queue, load, expected):
    selection = choose_experts(directory, queue, "normal", now, load)
    assert ids(selection) == expected
    assert set(reasons(selection)) == {QUEUE_MEMBER}
    assert selection.off_hours is False and selection.opens_at is None
    assert all(c.on_duty and c.available_at == now.astimezone(UTC) for c in selection)


# --- load and max_load ------------------------------------------------------------------

LOAD_CASES = [
    ("least loaded first", {"felix": 3, "sofia": 1, "mara": 2}, ["sofia", "mara", "felix"]),
    ("ties keep experts.yml order", {"felix": 3, "sofia": 1, "mara": 1}, ["sofia", "mara", "felix"]),
    ("missing load counts as zero", {"felix": 1}, ["sofia", "mara", "felix"]),
    ("at max_load is left out", {"felix": 8, "sofia": 2}, ["mara", "sofia"]),
    ("one below max_load stays", {"felix": 7, "sofia": 2, "mara": 5}, ["sofia", "mara", "felix"]),
    ("above max_load is left out", {"mara": 9}, ["felix", "sofia"]),
]


@pytest.mark.parametrize("load,expected", [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES])
def test_least_loaded_first_respecting_max_load(directory, load, expected):
    selection = choose_experts(directory, "support", "normal", berlin(2026, 6, 15, 10), load)
    assert ids(selection) == expected
    assert [c.load for c in selection] == [load.get(p, 0) for p in expected]


def test_full_queue_without_backup_goes_to_the_supervisor(directory):
    load = {"felix": 8, "sofia": 8, "mara": 6}
    selection = choose_experts(directory, "support", "normal", berlin(2026, 6, 15, 10), load)
    assert ids(selection) == ["petra"]
    assert reasons(selection) == [SUPERVISOR]
    assert "has capacity" in selection[0].why


def test_full_queue_uses_the_backup_queue_then_the_supervisor(directory):
    selection = choose_experts(directory, "billing", "normal", berlin(2026, 6, 15, 10), {"mara": 6, "felix": 2})
    assert ids(selection) == ["sofia", "felix", "petra"]
    assert reasons(selection) == [BACKUP_QUEUE, BACKUP_QUEUE, SUPERVISOR]
    assert [c.queue for c in selection] == ["support", "support", "billing"]


def test_everyone_full_still_returns_the_queue_least_loaded_first(directory):
    load = {"felix": 10, "sofia": 9, "mara": 6, "petra": 5}
    selection = choose_experts(directory, "support", "normal", berlin(2026, 6, 15, 10), load)
    assert ids(selection) == ["mara", "sofia", "felix"]
    assert reasons(selection) == [AT_CAPACITY] * 3
    assert selection.off_hours is False


# --- urgent priority and high-value customers -------------------------------------------

ESCALATED_CASES = [
    # (id, queue, priority, high_value, now, people, reasons)
    (
        "security urgent: backup queue and supervisor at once",
        "security",
        "urgent",
        False,
        berlin(2026, 6, 15, 10),
        ["tariq", "felix", "sofia", "mara", "petra"],
        [QUEUE_MEMBER, QUEUE_MEMBER, BACKUP_QUEUE, BACKUP_QUEUE, SUPERVISOR],
    ),
    (
        "security at normal priority: queue only",
        "security",
        "normal",
        False,
        berlin(2026, 6, 15, 10),
        ["tariq", "felix"],
        [QUEUE_MEMBER, QUEUE_MEMBER],
    ),
    ("high priority is not urgent", "billing", "high", False, berlin(2026, 6, 15, 10), ["mara"], [QUEUE_MEMBER]),
    (
        "high-value billing customer",
        "billing",
        "high",
        True,
        berlin(2026, 6, 15, 10),
        ["mara", "felix", "sofia", "petra"],
        [QUEUE_MEMBER, BACKUP_QUEUE, BACKUP_QUEUE, SUPERVISOR],
    ),
    (
        "high value, no backup queue: the supervisor",
        "support",
        "normal",
        True,
        berlin(2026, 6, 15, 10),
        ["felix", "sofia", "mara", "petra"],
        [QUEUE_MEMBER] * 3 + [SUPERVISOR],
    ),
    (
        "urgent at night: only who is on duty",
        "security",
        "urgent",
        False,
        berlin(2026, 6, 15, 3),
        ["tariq"],
        [QUEUE_MEMBER],
    ),
    (
        "urgent legal on a Friday: the supervisor now, counsel when back",
        "legal",
        "urgent",
        False,
        berlin(2026, 6, 19, 10),
        ["petra", "anna"],
        [SUPERVISOR, OFF_DUTY],
    ),
    (
        "high-value legal on a Friday",
        "legal",
        "normal",
        True,
        berlin(2026, 6, 19, 10),
        ["petra", "anna"],
        [SUPERVISOR, OFF_DUTY],
    ),
]


@pytest.mark.parametrize(
    "queue,priority,high_value,now,people,why", [c[1:] for c in ESCALATED_CASES], ids=[c[0] for c in ESCALATED_CASES]
)
def test_urgent_and_high_value_bring_in_backup_and_supervisor(directory, queue, priority, high_value, now, people, why):
    selection = choose_experts(directory, queue, priority, now, {}, high_value=high_value)
    assert ids(selection) == people
    assert reasons(selection) == why
    assert selection.off_hours is False


def test_escalated_extras_respect_duty_and_max_load(directory):
    # petra at max_load, sofia at max_load: neither is offered an urgent case
    selection = choose_experts(directory, "security", "urgent", berlin(2026, 6, 15, 10), {"petra": 5, "sofia": 8})
    assert ids(selection) == ["tariq", "felix", "mara"]


def test_backup_members_already_in_the_queue_appear_once(directory):
    selection = choose_experts(directory, "security", "urgent", berlin(2026, 6, 15, 10), {"felix": 1})
    assert ids(selection).count("felix") == 1
    assert ids(selection) == ["tariq", "felix", "sofia", "mara", "petra"]
    assert selection[1].queue == "security" and selection[1].reason == QUEUE_MEMBER


def test_reasons_say_why(directory):
    selection = choose_experts(directory, "billing", "high", berlin(2026, 6, 15, 10), {"mara": 2}, high_value=True)
    assert selection[0].why == "billing member on duty, load 2/6"
    assert "high-value customer" in selection[1].why
    urgent = choose_experts(directory, "security", "urgent", berlin(2026, 6, 15, 10))
    assert "urgent" in urgent[2].why and "support" in urgent[2].why


# --- nobody on duty ---------------------------------------------------------------------

OFF_HOURS_CASES = [
    # (id, now, queue, priority, load, people in order, opens_at in Berlin)
    (
        "before opening",
        berlin(2026, 6, 15, 7, 30),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 6, 15, 8),
    ),
    (
        "after closing on a weekday",
        berlin(2026, 6, 15, 18),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 6, 16, 8),
    ),
    (
        "Saturday afternoon: back on Monday",
        berlin(2026, 6, 20, 15),
        "support",
        "normal",
        {"felix": 4},
        ["sofia", "mara", "felix"],
        berlin(2026, 6, 22, 8),
    ),
    (
        "Sunday: first back first, whatever the load",
        berlin(2026, 6, 21, 11),
        "billing",
        "normal",
        {"mara": 5, "jonas": 0},
        ["mara", "jonas"],
        berlin(2026, 6, 22, 8),
    ),
    (
        "Friday night: jonas has no weekend hours",
        berlin(2026, 6, 19, 20, 30),
        "billing",
        "normal",
        {},
        ["mara", "jonas"],
        berlin(2026, 6, 20, 10),
    ),
    (
        "holiday (Labour Day, a Friday)",
        berlin(2026, 5, 1, 10),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 5, 2, 10),
    ),
    (
        "on-call security is off on holidays too",
        berlin(2026, 5, 1, 10),
        "security",
        "urgent",
        {},
        ["tariq", "felix"],
        berlin(2026, 5, 2, 0),
    ),
    (
        "legal counsel works Monday to Thursday",
        berlin(2026, 6, 19, 10),
        "legal",
        "normal",
        {},
        ["anna"],
        berlin(2026, 6, 22, 9),
    ),
    (
        "Easter: Good Friday, weekend, Easter Monday",
        berlin(2026, 4, 4, 15),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 4, 7, 8),
    ),
    (
        "Christmas: three holidays",
        berlin(2025, 12, 23, 20, 30),
        "billing",
        "normal",
        {},
        ["mara", "jonas"],
        berlin(2025, 12, 27, 10),
    ),
    (
        "DST starts overnight Sunday",
        berlin(2026, 3, 28, 15),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 3, 30, 8),
    ),
    (
        "DST ends overnight Sunday",
        berlin(2026, 10, 24, 15),
        "support",
        "normal",
        {},
        ["felix", "sofia", "mara"],
        berlin(2026, 10, 26, 8),
    ),
]


@pytest.mark.parametrize(
    "now,queue,priority,load,people,opens_at", [c[1:] for c in OFF_HOURS_CASES], ids=[c[0] for c in OFF_HOURS_CASES]
)
def test_off_hours_lists_the_queue_and_when_it_opens(directory, now, queue, priority, load, people, opens_at):
    selection = choose_experts(directory, queue, priority, now, load)
    assert selection.off_hours is True
    assert ids(selection) == people
    assert set(reasons(selection)) == {OFF_DUTY}
    assert not any(c.on_duty for c in selection)
    assert selection.opens_at == opens_at
    assert selection.opens_at.tzinfo is not None and selection.opens_at.utcoffset() == dt.timedelta(0)
    assert min(c.available_at for c in selection) == opens_at


def test_dst_reopening_is_local_wall_clock(directory):
    spring = choose_experts(directory, "support", "normal", berlin(2026, 3, 28, 15))
    autumn = choose_experts(directory, "support", "normal", berlin(2026, 10, 24, 15))
    assert spring.opens_at == dt.datetime(2026, 3, 30, 6, tzinfo=UTC)  # 08:00 CEST
    assert autumn.opens_at == dt.datetime(2026, 10, 26, 7, tzinfo=UTC)  # 08:00 CET


def test_off_duty_candidates_know_when_each_is_back(directory):
    selection = choose_experts(directory, "billing", "normal", berlin(2026, 6, 21, 11))
    assert {c.person.id: c.available_at for c in selection} == {
        "mara": berlin(2026, 6, 22, 8),
        "jonas": berlin(2026, 6, 22, 12),
    }


# --- next time on duty ------------------------------------------------------------------

NEXT_CASES = [
    ("jonas", berlin(2026, 6, 15, 10), berlin(2026, 6, 15, 12)),
    ("jonas", berlin(2026, 6, 15, 13), berlin(2026, 6, 15, 13)),
    ("jonas", berlin(2026, 6, 19, 18, 30), berlin(2026, 6, 22, 12)),
    ("anna", berlin(2026, 6, 18, 17), berlin(2026, 6, 22, 9)),
    ("sofia", berlin(2026, 6, 15, 12), berlin(2026, 6, 15, 13)),
    ("tariq", berlin(2026, 4, 6, 23, 59), berlin(2026, 4, 7, 0)),
    ("felix", berlin(2026, 4, 2, 18), berlin(2026, 4, 4, 10)),
]


@pytest.mark.parametrize("person,now,expected", NEXT_CASES)
def test_next_on_duty(directory, person, now, expected):
    assert next_on_duty(directory, person, now) == expected


def test_next_opening_of_the_business(directory):
    assert next_opening(directory, berlin(2026, 6, 15, 9)) == berlin(2026, 6, 15, 9)
    assert next_opening(directory, berlin(2026, 6, 20, 14)) == berlin(2026, 6, 22, 8)
    closed_for_good = dataclasses.replace(
        directory,
        holidays=tuple(Holiday(dt.date(2026, 1, 1) + dt.timedelta(days=i), "closed") for i in range(800)),
    )
    assert next_opening(closed_for_good, berlin(2026, 6, 15, 9)) is None
    selection = choose_experts(closed_for_good, "legal", "normal", berlin(2026, 6, 15, 9))
    assert selection.off_hours is True and selection.opens_at is None and ids(selection) == ["anna"]


# --- channels and records ---------------------------------------------------------------


def test_channels_preferred_first_then_listed_order(directory):
    selection = choose_experts(directory, "support", "normal", berlin(2026, 6, 15, 10))
    channels = {c.person.id: [(ch.type, ch.address) for ch in c.channels] for c in selection}
    assert channels["felix"] == [("dashboard", "felix"), ("slack", "U07KESTR05")]
    assert channels["sofia"] == [
        ("telegram", "5100000003"),
        ("email", "sofia.costa@kestrel.example"),
        ("dashboard", "sofia.costa"),
    ]
    assert [ch.type for ch in ordered_channels(directory.person("jonas"))] == ["telegram", "email", "dashboard"]
    assert selection[0].channel.type == "dashboard"


def test_selection_record_is_json(directory):
    selection = choose_experts(directory, "billing", "normal", berlin(2026, 6, 21, 11), {"mara": 1})
    record = json.loads(json.dumps(selection.as_record()))
    assert record["off_hours"] is True
    assert record["opens_at"] == "2026-06-22T06:00:00+00:00"
    assert record["candidates"][0]["person"] == "mara"
    assert record["candidates"][0]["load"] == 1 and record["candidates"][0]["max_load"] == 6
    assert record["candidates"][0]["channels"][0] == {"type": "slack", "address": "U07KESTR02"}


def test_selection_is_a_list(directory):
    selection = choose_experts(directory, "security", "normal", berlin(2026, 6, 15, 10))
    assert isinstance(selection, list) and len(selection) == 2
    assert selection == list(selection)


def test_rejects_naive_clock_and_unknown_queue(directory):
    with pytest.raises(ValueError, match="timezone-aware"):
        choose_experts(directory, "support", "normal", dt.datetime(2026, 6, 15, 10))
    with pytest.raises(KeyError, match="nope"):
        choose_experts(directory, "nope", "normal", berlin(2026, 6, 15, 10))
