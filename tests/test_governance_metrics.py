"""The outcome metrics over a history whose true values are known by construction: six conversations
and five cases over two ISO weeks, each metric stated as the number it must be (the window, the
reopen window's edge, business hours and the breakdowns included)."""

from __future__ import annotations

import datetime as dt

import pytest

from backline.governance.facts import CaseFact, ConversationFact, Facts, ReviewFact
from backline.governance.metrics import compute, p90, week_of

UTC = dt.timezone.utc
SINCE = dt.datetime(2026, 11, 2, tzinfo=UTC)  # Monday of 2026-W45
UNTIL = dt.datetime(2026, 11, 16, tzinfo=UTC)  # Monday of 2026-W47
NOW = dt.datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
WINDOW = dt.timedelta(hours=72)
QUEUES = {"order_status": "support", "pricing": "support", "refund_request": "billing", "invoice_wrong": "billing"}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


CONVERSATIONS = [
    ConversationFact("c1", "socketio", at(2, 10), "order_status", answered_at=(at(2, 10, 0, 5),)),
    ConversationFact(
        "c2",
        "telegram",
        at(3, 9),
        "refund_request",
        escalated_at=(at(3, 9, 0, 10),),
        # 72 h and 50 s after c2's hand-back: just outside the reopen window
        rejected_at=(at(6, 9, 41),),
    ),
    ConversationFact(
        "c3",
        "socketio",
        at(4, 12),
        "order_status",
        answered_at=(at(4, 12, 0, 5),),
        rejected_at=(at(4, 12, 1),),
        escalated_at=(at(4, 12, 1, 1),),
    ),
    ConversationFact("c4", "slack", at(10, 20), "pricing", answered_at=(at(10, 20, 0, 5),)),
    ConversationFact("c5", "socketio", at(11, 8), "invoice_wrong", escalated_at=(at(11, 8, 0, 10),)),
    # its second answer falls after the window: not a resolution of this window
    ConversationFact("c6", "rest", at(12, 10), "order_status", answered_at=(at(12, 10, 0, 5), at(16, 9))),
]
CASES = [
    CaseFact(
        "k2",
        "c2",
        "handoff",
        "billing",
        "refund_request",
        ("sensitive_topic",),
        "closed",
        at(3, 9, 0, 10),
        first_reply_at=at(3, 9, 10, 10),
        closed_at=at(3, 9, 40, 10),
        resolution="handed_back",
        decision="hand_back",
        verdict="needed",
        csat=4,
        sla_due_at=at(3, 9, 30, 10),
        channel="telegram",
    ),
    CaseFact(
        "k3",
        "c3",
        "handoff",
        "support",
        "order_status",
        ("no_convergence",),
        "closed",
        at(4, 12, 1, 1),
        first_reply_at=at(4, 12, 21, 1),
        closed_at=at(4, 13, 1, 1),
        resolution="closed",
        decision="close",
        verdict="too_late",
        csat=2,
        sla_due_at=at(4, 12, 11, 1),
        ladder_steps=("sla_next_person",),
        channel="socketio",
    ),
    CaseFact(
        "k5",
        "c5",
        "consult",
        "billing",
        "invoice_wrong",
        ("medium_confidence",),
        "closed",
        at(11, 8, 0, 10),
        first_reply_at=at(11, 10, 0, 10),
        closed_at=at(11, 10, 0, 10),
        resolution="answered",
        decision="answer",
        business_hours=False,
        had_draft=True,
        verdict="not_needed",
        override_kind="edited",
        override_reason="wrong_facts",
        csat=5,
        sla_due_at=at(11, 12),
        channel="socketio",
    ),
    CaseFact(
        "k7",
        "c7",
        "consult",
        "billing",
        "invoice_copy",
        ("medium_confidence",),
        "closed",
        at(15, 9),
        first_reply_at=at(15, 9, 5),
        closed_at=at(15, 9, 5),
        resolution="approved",
        decision="approve",
        had_draft=True,
    ),
    CaseFact(
        "k8",
        "c8",
        "handoff",
        "support",
        "legal_threat",
        ("sensitive_topic",),
        "open",
        at(13, 10),
        sla_due_at=at(13, 11),
    ),
]
# After the window, within 72 h of k7's close: it reopens k7.
HISTORY = [CaseFact("k10", "c7", "handoff", "billing", "invoice_copy", ("explicit_request",), "open", at(16, 12))]
REVIEWS = [
    ReviewFact("ai_alone", at(2, 10), "reviewed", "should_have_escalated", "support", "order_status", "socketio", "c1"),
    ReviewFact("ai_alone", at(10, 20), "reviewed", "right", "support", "pricing", "slack", "c4"),
    ReviewFact("ai_alone", at(12, 10), "pending", None, "support", "order_status", "rest", "c6"),
    ReviewFact(
        "closed_case",
        at(4, 12, 1, 1),
        "reviewed",
        "should_not_have_escalated",
        "support",
        "order_status",
        "socketio",
        "c3",
        "k3",
    ),
]


@pytest.fixture(scope="module")
def metrics() -> dict:
    return compute(
        Facts(CONVERSATIONS, CASES, REVIEWS),
        since=SINCE,
        until=UNTIL,
        now=NOW,
        reopen_window=WINDOW,
        queue_of_intent=QUEUES,
        history=HISTORY,
    )


def test_containment_and_escalation(metrics: dict) -> None:
    assert (metrics["conversations"], metrics["contained"]) == (6, 3)
    assert (metrics["containment_rate"], metrics["escalation_rate"]) == (0.5, 0.5)
    assert metrics["consultations"] == 5


def test_escalation_accuracy_from_verdicts_and_missed_escalations_from_reviews(metrics: dict) -> None:
    assert metrics["verdicts"] == {"needed": 1, "not_needed": 1, "too_late": 1}
    assert metrics["escalation_accuracy"] == 0.3333
    assert (metrics["missed_escalations"], metrics["missed_escalation_rate"]) == (1, 0.5)
    assert metrics["unneeded_escalations"] == 2  # k5's verdict and k3's review
    assert metrics["qa"] == {
        "pending": 1,
        "reviewed": 3,
        "by_verdict": {"should_have_escalated": 1, "right": 1, "should_not_have_escalated": 1},
    }


def test_reply_and_resolution_times_with_business_hours_apart(metrics: dict) -> None:
    assert metrics["first_reply_seconds"] == {
        "count": 4,
        "median": 900.0,
        "p90": 7200.0,
        "business_hours": {"count": 3, "median": 600.0, "p90": 1200.0},
        "off_hours": {"count": 1, "median": 7200.0, "p90": 7200.0},
    }
    assert metrics["resolution_seconds"] == {
        "count": 4,
        "median": 3000.0,  # 300 (k7), 2400 (k2), 3600 (k3), 7200 (k5)
        "p90": 7200.0,
        "business_hours": {"count": 3, "median": 2400.0, "p90": 3600.0},
        "off_hours": {"count": 1, "median": 7200.0, "p90": 7200.0},
    }


def test_reopened_within_the_window_only(metrics: dict) -> None:
    # resolutions: answers in c1, c3, c4, c6 and the closes of k2, k3, k5, k7 = 8; reopened: c3's answer
    # (rejected, then escalated) and k7 (k10 after the window); k2's rejection came 50 s too late.
    assert metrics["reopened"] == {"count": 2, "of": 8}
    assert metrics["reopened_rate"] == 0.25


def test_handback_csat_overrides_and_sla(metrics: dict) -> None:
    assert metrics["handback_rate"] == 0.25
    assert metrics["csat"] == 3.667
    assert metrics["csat_responses"] == {"count": 3, "scores": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
    assert (metrics["override_rate"], metrics["override_reasons"]) == (0.5, {"wrong_facts": 1})
    assert (metrics["sla_breaches"], metrics["sla_breach_rate"]) == (2, 0.4)
    assert metrics["ladder_steps"] == {"sla_next_person": 1}
    assert metrics["by_reason"] == {"sensitive_topic": 2, "no_convergence": 1, "medium_confidence": 2}


def test_breakdown_by_queue(metrics: dict) -> None:
    support, billing = metrics["breakdowns"]["queue"]["support"], metrics["breakdowns"]["queue"]["billing"]
    assert (support["conversations"], support["containment_rate"], support["consultations"]) == (4, 0.75, 2)
    assert (billing["conversations"], billing["containment_rate"], billing["consultations"]) == (2, 0.0, 3)
    assert (support["escalation_accuracy"], billing["escalation_accuracy"]) == (0.0, 0.5)
    assert (support["missed_escalations"], support["sla_breaches"], billing["override_rate"]) == (1, 2, 0.5)


def test_breakdown_by_week_channel_intent_and_reason(metrics: dict) -> None:
    weeks = metrics["breakdowns"]["week"]
    assert sorted(weeks) == ["2026-W45", "2026-W46"]
    assert (weeks["2026-W45"]["conversations"], weeks["2026-W45"]["containment_rate"]) == (3, 0.3333)
    assert (weeks["2026-W46"]["conversations"], weeks["2026-W46"]["consultations"]) == (3, 3)
    web = metrics["breakdowns"]["channel"]["socketio"]
    assert (web["conversations"], web["containment_rate"], web["consultations"], web["csat"]) == (3, 0.3333, 2, 3.5)
    assert metrics["breakdowns"]["channel"]["unknown"]["consultations"] == 2
    order = metrics["breakdowns"]["intent"]["order_status"]
    assert (order["conversations"], order["containment_rate"], order["reopened_rate"]) == (3, 0.6667, 0.25)
    sensitive = metrics["breakdowns"]["reason"]["sensitive_topic"]
    assert (sensitive["conversations"], sensitive["containment_rate"], sensitive["consultations"]) == (None, None, 2)
    assert sensitive["sla_breaches"] == 1


def test_empty_history_has_no_rates() -> None:
    empty = compute(Facts(), since=SINCE, until=UNTIL, now=NOW, reopen_window=WINDOW)
    assert (empty["conversations"], empty["containment_rate"], empty["escalation_accuracy"], empty["csat"]) == (
        0,
        None,
        None,
        None,
    )
    assert empty["first_reply_seconds"]["median"] is None and empty["breakdowns"]["queue"] == {}


def test_percentile_and_week_helpers() -> None:
    assert p90([5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]) == 9.0
    assert p90([]) is None
    assert (week_of(at(8, 23, 59)), week_of(at(9, 0))) == ("2026-W45", "2026-W46")
