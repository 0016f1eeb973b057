"""The SLA ladder: deadlines, re-routing steps, delay notices; the clock is injected."""

import dataclasses
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backline.consult.selection import choose_experts
from backline.consult.sla import (
    ConsultationState,
    customer_should_hear,
    next_step,
    sla_deadline,
    sla_window,
)
from backline.consult.waits import typical_wait
from backline.routing import LadderStep as Rung
from backline.routing import load_experts

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)


def berlin(year, month, day, hour, minute=0, second=0):
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def directory():
    return load_experts(ROOT / "experts.yml")


# --- deadlines --------------------------------------------------------------------------

CREATED = berlin(2026, 6, 15, 9)

DEADLINES = [
    # (id, sla_minutes, priority, high_value, expected minutes)
    ("normal", 120, "normal", False, 120),
    ("low", 120, "low", False, 120),
    ("high priority alone does not shorten", 240, "high", False, 240),
    ("urgent halves", 15, "urgent", False, 7.5),
    ("high value: three quarters", 240, "normal", True, 180),
    ("urgent and high value", 240, "urgent", True, 90),
]


@pytest.mark.parametrize("sla,priority,high_value,minutes", [c[1:] for c in DEADLINES], ids=[c[0] for c in DEADLINES])
def test_sla_deadline(sla, priority, high_value, minutes):
    assert sla_deadline(CREATED, sla, priority, high_value=high_value) == CREATED + dt.timedelta(minutes=minutes)
    assert sla_window(sla, priority, high_value) == dt.timedelta(minutes=minutes)


def test_deadline_counts_from_the_reopening_for_off_hours_cases():
    saturday = berlin(2026, 6, 20, 15)
    monday = berlin(2026, 6, 22, 8)
    assert sla_deadline(saturday, 240, "normal", starts_at=monday) == berlin(2026, 6, 22, 12)
    assert sla_deadline(monday, 240, "normal", starts_at=saturday) == berlin(2026, 6, 22, 12)  # earlier: ignored


def test_deadline_across_dst_is_elapsed_time():
    before = berlin(2026, 3, 29, 1, 30)  # 01:30 CET; clocks jump from 02:00 to 03:00
    assert sla_deadline(before, 60, "normal") == berlin(2026, 3, 29, 3, 30)


def test_deadline_rejects_bad_input():
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_deadline(dt.datetime(2026, 6, 15, 9), 120, "normal")
    with pytest.raises(ValueError, match="positive"):
        sla_deadline(CREATED, 0, "normal")


# --- the ladder -------------------------------------------------------------------------


def billing_case(**changes):
    """A billing consultation created Monday 09:00, SLA 240 minutes: due 13:00, 1.5x 15:00, 2x 17:00."""
    state = ConsultationState(
        queue="billing",
        priority="normal",
        created_at=CREATED,
        due_at=sla_deadline(CREATED, 240, "normal"),
        tried=("mara",),
        consultation_id="c-1",
    )
    return dataclasses.replace(state, **changes)


def after(state, step):
    """The state once the step has been taken and its first target offered the case."""
    tried = state.tried + tuple(c.person.id for c in step.targets[:1])
    return dataclasses.replace(state, steps_taken=state.steps_taken + step.taken, tried=tried)


LADDER = [
    # (id, steps taken, now, expected step or None)
    ("a second before the deadline", (), berlin(2026, 6, 15, 12, 59, 59), None),
    ("exactly at the deadline", (), berlin(2026, 6, 15, 13), "next_person"),
    ("after the deadline", (), berlin(2026, 6, 15, 13, 30), "next_person"),
    ("next person taken, before 1.5x", ("next_person",), berlin(2026, 6, 15, 14, 59, 59), None),
    ("exactly 1.5x", ("next_person",), berlin(2026, 6, 15, 15), "backup_queue"),
    ("backup taken, before 2x", ("next_person", "backup_queue"), berlin(2026, 6, 15, 16, 59), None),
    ("exactly 2x", ("next_person", "backup_queue"), berlin(2026, 6, 15, 17), "supervisor"),
    ("all taken", ("next_person", "backup_queue", "supervisor"), berlin(2026, 6, 16, 9), None),
    ("a later step taken: earlier ones never come back", ("backup_queue",), berlin(2026, 6, 15, 16), None),
]


@pytest.mark.parametrize("taken,now,expected", [c[1:] for c in LADDER], ids=[c[0] for c in LADDER])
def test_ladder_progression(directory, taken, now, expected):
    step = next_step(billing_case(steps_taken=taken), directory, now)
    assert (step.step if step else None) == expected


def test_next_person_offers_the_untried_member(directory):
    step = next_step(billing_case(), directory, berlin(2026, 6, 15, 13))
    assert step.queue == "billing" and step.from_queue == "billing"
    assert [c.person.id for c in step.targets] == ["jonas"]
    assert step.targets[0].channels[0].type == "telegram"
    assert step.skipped == ()


def test_backup_queue_step_moves_to_the_backup_and_skips_who_was_tried(directory):
    state = billing_case(steps_taken=("next_person",), tried=("mara", "jonas"), load={"sofia": 3})
    step = next_step(state, directory, berlin(2026, 6, 15, 15))
    assert step.step == "backup_queue"
    assert step.queue == "support" and step.from_queue == "billing"
    assert [c.person.id for c in step.targets] == ["felix", "sofia"]  # mara already tried; sofia busier


def test_supervisor_step_targets_the_queue_supervisor(directory):
    state = billing_case(steps_taken=("next_person", "backup_queue"), tried=("mara", "jonas", "felix"))
    step = next_step(state, directory, berlin(2026, 6, 15, 17))
    assert [(c.person.id, c.reason) for c in step.targets] == [("petra", "supervisor")]
    assert "by hand" in step.targets[0].why


def test_walk_the_clock_each_step_once_at_its_minute(directory):
    state = billing_case()
    taken = []
    now = CREATED
    while now <= CREATED + dt.timedelta(hours=24):
        step = next_step(state, directory, now)
        if step is not None:
            taken.append((step.step, now.astimezone(BERLIN).strftime("%H:%M"), [c.person.id for c in step.targets]))
            state = after(state, step)
        now += MINUTE
    assert taken == [
        ("next_person", "13:00", ["jonas"]),
        ("backup_queue", "15:00", ["felix", "sofia"]),
        ("supervisor", "17:00", ["petra"]),
    ]


def test_overdue_steps_collapse_into_the_furthest(directory):
    late = next_step(billing_case(), directory, berlin(2026, 6, 15, 17, 30))
    assert late.step == "supervisor"
    assert late.skipped == ("next_person", "backup_queue")
    assert late.taken == ("next_person", "backup_queue", "supervisor")
    assert next_step(after(billing_case(), late), directory, berlin(2026, 6, 16, 9)) is None
    middle = next_step(billing_case(), directory, berlin(2026, 6, 15, 15, 1))
    assert (middle.step, middle.skipped) == ("backup_queue", ("next_person",))


def test_no_step_once_replied_or_closed(directory):
    now = berlin(2026, 6, 15, 17)
    assert next_step(billing_case(first_reply_at=berlin(2026, 6, 15, 12)), directory, now) is None
    assert next_step(billing_case(closed_at=berlin(2026, 6, 15, 16)), directory, now) is None
    # a reply recorded with a later timestamp than the clock does not count yet
    assert next_step(billing_case(first_reply_at=berlin(2026, 6, 15, 18)), directory, now).step == "supervisor"


def test_multiples_come_from_the_directory(directory):
    custom = dataclasses.replace(directory, sla_ladder=(Rung("next_person", 0.5), Rung("supervisor", 3.0)))
    state = billing_case()
    assert next_step(state, custom, berlin(2026, 6, 15, 10, 59)) is None
    first = next_step(state, custom, berlin(2026, 6, 15, 11))  # 0.5 x 240 minutes after 09:00
    assert (first.step, first.at_sla) == ("next_person", 0.5)
    state = after(state, first)
    assert next_step(state, custom, berlin(2026, 6, 15, 20, 59)) is None  # no backup_queue rung
    assert next_step(state, custom, berlin(2026, 6, 15, 21)).step == "supervisor"  # 3.0 x 240 minutes


def test_urgent_security_ladder_runs_on_the_halved_sla(directory):
    created = berlin(2026, 6, 15, 10)
    state = ConsultationState(
        queue="security",
        priority="urgent",
        created_at=created,
        due_at=sla_deadline(created, 15, "urgent"),
        tried=("tariq",),
    )
    assert next_step(state, directory, created + dt.timedelta(minutes=7, seconds=29)) is None
    step = next_step(state, directory, created + dt.timedelta(minutes=7, seconds=30))
    assert step.step == "next_person"
    assert [c.person.id for c in step.targets] == ["felix"]  # next member of security, not the urgent extras
    backup = next_step(after(state, step), directory, created + dt.timedelta(minutes=11, seconds=15))
    assert backup.step == "backup_queue"
    assert [c.person.id for c in backup.targets] == ["sofia", "mara"]


def test_single_member_queue_without_backup_still_records_each_step(directory):
    created = berlin(2026, 6, 15, 10)
    state = ConsultationState(
        queue="legal", priority="high", created_at=created, due_at=sla_deadline(created, 1440, "high"), tried=("anna",)
    )
    step = next_step(state, directory, created + dt.timedelta(minutes=1440))
    assert (step.step, step.targets) == ("next_person", ())
    assert "not been tried" in step.note and step.audit["note"] == step.note
    state = after(state, step)
    backup = next_step(state, directory, created + dt.timedelta(minutes=2160))
    assert (backup.step, backup.targets, backup.queue) == ("backup_queue", (), "legal")
    assert backup.note == "legal has no backup queue"
    state = after(state, backup)
    top = next_step(state, directory, created + dt.timedelta(minutes=2880))
    assert [c.person.id for c in top.targets] == ["petra"]


def test_off_hours_case_climbs_from_the_reopening(directory):
    saturday = berlin(2026, 6, 20, 15)
    opens = choose_experts(directory, "billing", "normal", saturday).opens_at
    state = ConsultationState(
        queue="billing",
        priority="normal",
        created_at=saturday,
        started_at=opens,
        due_at=sla_deadline(saturday, 240, "normal", starts_at=opens),
        tried=("mara",),
    )
    assert next_step(state, directory, berlin(2026, 6, 22, 11, 59)) is None
    assert next_step(state, directory, berlin(2026, 6, 22, 12)).step == "next_person"
    assert next_step(state, directory, berlin(2026, 6, 22, 14)).step == "backup_queue"
    assert next_step(state, directory, berlin(2026, 6, 22, 16)).step == "supervisor"


def test_audit_record(directory):
    step = next_step(billing_case(), directory, berlin(2026, 6, 15, 13, 30))
    audit = json.loads(json.dumps(step.audit))
    assert audit["action"] == "sla_next_person"
    assert audit["consultation_id"] == "c-1"
    assert audit["step"] == "next_person" and audit["at_sla"] == 1.0
    assert audit["sla_due_at"] == "2026-06-15T11:00:00+00:00"
    assert audit["step_due_at"] == "2026-06-15T11:00:00+00:00"
    assert audit["at"] == "2026-06-15T11:30:00+00:00"
    assert audit["overdue_minutes"] == 30
    assert audit["from_queue"] == "billing" and audit["queue"] == "billing"
    assert [t["person"] for t in audit["targets"]] == ["jonas"]
    assert audit["targets"][0]["channels"][0] == {"type": "telegram", "address": "5100000001"}
    assert audit["tried"] == ["mara"] and audit["skipped"] == [] and audit["note"] is None


def test_ladder_rejects_a_naive_clock(directory):
    with pytest.raises(ValueError, match="timezone-aware"):
        next_step(billing_case(), directory, dt.datetime(2026, 6, 15, 13))


# --- telling the customer ---------------------------------------------------------------

HEAR = [
    # (id, now offset from creation, promised minutes, already told, expected)
    ("before the promised time", dt.timedelta(minutes=4, seconds=59), 5, False, False),
    ("exactly at the promised time", dt.timedelta(minutes=5), 5, False, True),
    ("after the promised time", dt.timedelta(minutes=40), 5, False, True),
    ("already told", dt.timedelta(minutes=40), 5, True, False),
    ("the SLA fallback promise", dt.timedelta(minutes=239), 240, False, False),
    ("past the SLA fallback promise", dt.timedelta(minutes=240), 240, False, True),
]


@pytest.mark.parametrize("offset,promised,told,expected", [c[1:] for c in HEAR], ids=[c[0] for c in HEAR])
def test_customer_should_hear(offset, promised, told, expected):
    assert customer_should_hear(CREATED + offset, promised, CREATED, told) is expected


def test_customer_hears_after_the_rounded_promise_not_the_raw_median():
    estimate = typical_wait("support", [180, 190, 200, 210, 220], 120)  # median 200 s: told "5 minutes"
    assert estimate.promised_minutes == 5
    assert not customer_should_hear(CREATED + dt.timedelta(minutes=4), estimate.promised_minutes, CREATED, False)
    assert customer_should_hear(CREATED + dt.timedelta(minutes=5), estimate.promised_minutes, CREATED, False)


def test_customer_should_hear_in_any_zone():
    created_utc = CREATED.astimezone(UTC)
    assert customer_should_hear(CREATED + dt.timedelta(minutes=5), 5, created_utc, False)
    with pytest.raises(ValueError):
        customer_should_hear(dt.datetime(2026, 6, 15, 10), 5, CREATED, False)


def test_ladder_across_the_dst_jump_uses_elapsed_time(directory):
    created = berlin(2026, 3, 29, 1, 30)  # 01:30 CET; at 02:00 the clocks jump to 03:00
    state = ConsultationState(
        queue="security",
        priority="normal",
        created_at=created,
        due_at=sla_deadline(created, 60, "normal"),
        tried=("tariq",),
    )
    assert next_step(state, directory, berlin(2026, 3, 29, 3, 29)) is None
    assert next_step(state, directory, berlin(2026, 3, 29, 3, 30)).step == "next_person"
    assert customer_should_hear(berlin(2026, 3, 29, 3, 30), 60, created, False)
    assert not customer_should_hear(berlin(2026, 3, 29, 3, 29), 60, created, False)
