"""Governance over the real stores: conversations written by Rasa's own SQLTrackerStore (real events),
cases, replies, overrides, verdicts and satisfaction answers in the consultation store; the metrics, the
caller's queues, QA sampling and a conversation's routing decisions, each with the value it must have."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict

import pytest

from backline import configuration
from backline.access import access_for
from backline.consult.store import ConsultationStore
from backline.governance.facts import TrackerReader
from backline.governance.sampling import chosen, sample
from backline.governance.service import GovernanceService, parse_when
from tests.governance_history import NOW, T0, UTC, seed, write_trackers


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    tmp = tmp_path_factory.mktemp("governance")
    tracker_url = f"sqlite:///{tmp / 'tracker.db'}"
    write_trackers(tracker_url)
    store = ConsultationStore(f"sqlite:///{tmp / 'consult.db'}", clock=lambda: NOW)
    k1, k2, k3 = seed(store)
    minute = dt.timedelta(minutes=1)
    governance = GovernanceService(store, configuration.experts(), TrackerReader(tracker_url), clock=lambda: NOW)
    governance.record_verdict(k1, "needed", actor="mara", source="slack")
    governance.record_verdict(k2, "Not needed", actor="jonas", source="telegram")  # a label works too
    store.record_csat(k1, 5, conversation_id="t-tg-1", channel="telegram", at=T0 + 16 * minute)
    return {"store": store, "governance": governance, "cases": (k1, k2, k3), "tracker_url": tracker_url}


def test_conversation_facts_come_from_rasas_tracker_store(seeded: Dict[str, Any]) -> None:
    facts = seeded["governance"].facts(None, T0 - dt.timedelta(days=1), NOW)
    by_id = {c.conversation_id: c for c in facts.conversations}
    assert sorted(by_id) == ["t-rest-1", "t-slack-1", "t-tg-1", "t-web-1", "t-web-2"]
    assert [
        (c.channel, c.intent, c.escalated, len(c.answered_at), len(c.rejected_at))
        for c in (by_id["t-web-1"], by_id["t-tg-1"], by_id["t-web-2"])
    ] == [
        ("socketio", "order_status", False, 1, 0),
        ("telegram", "refund_request", True, 0, 0),
        ("socketio", "order_status", True, 1, 1),
    ]
    assert {c.consultation_id: c.channel for c in facts.cases} == dict(
        zip(seeded["cases"], ("telegram", "rest", "socketio"))
    )


def test_metrics_over_the_seeded_stores(seeded: Dict[str, Any]) -> None:
    metrics = seeded["governance"].metrics(None, T0 - dt.timedelta(days=1), NOW)
    assert (metrics["conversations"], metrics["contained"], metrics["containment_rate"]) == (5, 2, 0.4)
    assert (metrics["consultations"], metrics["escalation_accuracy"]) == (3, 0.5)
    assert metrics["verdicts"] == {"needed": 1, "not_needed": 1, "too_late": 0}
    assert (metrics["override_rate"], metrics["override_reasons"]) == (1.0, {"policy": 1})
    assert (metrics["handback_rate"], metrics["csat"]) == (0.3333, 5.0)
    # resolutions: 3 AI answers and 3 closes; t-web-2's answer was rejected within the window
    assert metrics["reopened"] == {"count": 1, "of": 6}
    assert metrics["first_reply_seconds"]["business_hours"] == {"count": 3, "median": 600.0, "p90": 1800.0}
    assert metrics["breakdowns"]["channel"]["telegram"]["csat"] == 5.0
    assert sorted(metrics["breakdowns"]["week"]) == ["2026-W45", "2026-W46"]


def test_the_override_keeps_draft_and_final_text_side_by_side(seeded: Dict[str, Any]) -> None:
    override = seeded["store"].override(seeded["cases"][1])
    assert (override.kind, override.reason, override.actor, override.source, override.intent) == (
        "denied",
        "policy",
        "jonas",
        "telegram",
        "invoice_wrong",
    )
    assert (override.ai_draft, override.final_text) == (
        "Your invoice is correct.",
        "We cannot change invoices after 30 days.",
    )
    trail = [e.action for e in seeded["store"].audit_trail(seeded["cases"][1])]
    assert trail.count("override") == 1 and trail.count("verdict") == 1


def test_a_queue_member_sees_only_their_queues(seeded: Dict[str, Any]) -> None:
    governance = seeded["governance"]
    felix = access_for(governance.directory, "felix")  # support and security
    metrics = governance.metrics(felix, T0 - dt.timedelta(days=1), NOW)
    assert (metrics["conversations"], metrics["consultations"], metrics["by_queue"]) == (2, 1, {"support": 1})
    petra = access_for(governance.directory, "petra")  # the supervisor
    assert governance.metrics(petra, T0 - dt.timedelta(days=1), NOW)["consultations"] == 3


def test_filters_and_windows(seeded: Dict[str, Any]) -> None:
    governance = seeded["governance"]
    telegram = governance.metrics(None, T0 - dt.timedelta(days=1), NOW, {"channel": "telegram"})
    assert (telegram["conversations"], telegram["consultations"]) == (1, 1)
    first_week = governance.metrics(None, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=5))
    assert (first_week["conversations"], first_week["containment_rate"]) == (4, 0.25)
    with pytest.raises(ValueError, match="unknown filter"):
        governance.metrics(None, None, None, {"colour": "red"})
    with pytest.raises(ValueError, match="since must be before until"):
        governance.metrics(None, NOW, T0)


def test_verdicts_and_reasons_are_checked_against_governance_yml(seeded: Dict[str, Any]) -> None:
    governance, (k1, k2, _) = seeded["governance"], seeded["cases"]
    with pytest.raises(ValueError, match="verdict must be one of needed, not_needed, too_late"):
        governance.record_verdict(k1, "maybe", actor="mara", source="api")
    with pytest.raises(ValueError, match="override reason must be one of"):
        governance.set_override_reason(k2, "bad mood", actor="jonas", source="api")
    with pytest.raises(LookupError, match="has no override"):
        governance.set_override_reason(k1, "tone", actor="mara", source="api")
    with pytest.raises(ValueError, match="not a row of escalation.yml"):
        governance.set_override_reason(k2, "wrong intent", actor="jonas", source="api", corrected_intent="nonsense")


def test_a_conversations_routing_decisions_are_its_audit_trail(seeded: Dict[str, Any]) -> None:
    decisions = seeded["governance"].decisions("t-web-2")
    assert [(d["text"], d["intent"], d["action"], d.get("reason")) for d in decisions] == [
        ("order status please", "order_status", "answer", None),
        ("that does not help", "answer_rejected", "handoff", "no_convergence"),
    ]


def test_sampling_takes_the_configured_share_and_each_subject_once(seeded: Dict[str, Any]) -> None:
    ids = [f"conversation-{i}" for i in range(4000)]
    for share in (0.1, 0.25, 0.5):
        taken = sum(chosen("ai_alone", cid, share) for cid in ids)
        assert abs(taken / len(ids) - share) < 0.02, (share, taken)
    assert [chosen("ai_alone", "x", 0.0), chosen("ai_alone", "x", 1.0)] == [False, True]

    governance = seeded["governance"]
    everything = GovernanceService(
        governance.store,
        governance.directory,
        governance.tracker,
        clock=lambda: NOW,
        rules=_shares(governance.rules, 1.0),
    )
    first = sample(everything, NOW, days=14)
    assert first == {"ai_alone": 2, "accepted_draft": 0, "closed_case": 3}  # t-web-1, t-slack-1; k1, k2, k3
    assert sample(everything, NOW, days=14) == {"ai_alone": 0, "accepted_draft": 0, "closed_case": 0}
    pending = governance.reviews(None, "pending")
    assert sorted((r.kind, r.subject) for r in pending if r.kind == "ai_alone") == [
        ("ai_alone", "t-slack-1"),
        ("ai_alone", "t-web-1"),
    ]
    review = next(r for r in pending if r.subject == "t-web-1")
    assert review.queue == "support" and review.channel == "socketio" and review.intent == "order_status"
    detail = governance.review_detail(None, review.id)
    assert [line["speaker"] for line in detail["transcript"]] == ["customer", "assistant"]
    done = governance.record_review(
        access_for(governance.directory, "felix"), review.id, "should_have_escalated", "asked twice"
    )
    assert (done.status, done.reviewer, done.verdict) == ("reviewed", "felix", "should_have_escalated")
    metrics = governance.metrics(None, T0 - dt.timedelta(days=1), NOW)
    assert (metrics["missed_escalations"], metrics["missed_escalation_rate"]) == (1, 1.0)
    with pytest.raises(PermissionError):
        governance.record_review(
            access_for(governance.directory, "anna"), next(r.id for r in pending if r.subject == "t-slack-1"), "right"
        )


def _shares(rules: Any, share: float) -> Any:
    from dataclasses import replace

    sampling = replace(rules.sampling, ai_alone=share, accepted_drafts=share, closed_cases={"default": share})
    return replace(rules, sampling=sampling)


def test_parse_when() -> None:
    now = dt.datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert parse_when("30d", now) == dt.datetime(2026, 11, 4, 12, tzinfo=UTC)
    assert parse_when("2w", now) == dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert parse_when("2026-11-01", now) == dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01T09:30:00Z", now) == dt.datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert parse_when("", now) is None
    for bad in ("yesterday", "30x", "2026-13-01"):
        with pytest.raises(ValueError, match="since must be like 30d"):
            parse_when(bad, now)


def test_business_hours_follow_experts_yml(tmp_path: Any) -> None:
    """Berlin, Mon-Fri 08:00-18:00, Sunday closed (experts.yml): Tuesday 09:59 UTC is within, 17:00 UTC
    (18:00 Berlin) and Sunday are not."""
    store = ConsultationStore(f"sqlite:///{tmp_path / 'hours.db'}")
    opened = {
        "within": dt.datetime(2026, 11, 3, 9, 59, tzinfo=UTC),
        "evening": dt.datetime(2026, 11, 3, 17, 0, tzinfo=UTC),
        "sunday": dt.datetime(2026, 11, 8, 10, 0, tzinfo=UTC),
    }
    ids = {
        name: store.create(
            conversation_id=name, mode="handoff", queue="support", reasons=["explicit_request"], now=at
        ).id
        for name, at in opened.items()
    }
    for name, case_id in ids.items():
        store.record_first_reply(case_id, opened[name] + dt.timedelta(minutes=10 if name == "within" else 50))
    governance = GovernanceService(store, configuration.experts(), None, clock=lambda: NOW)
    facts = governance.facts(None, T0 - dt.timedelta(days=1), NOW)
    assert {c.conversation_id: c.business_hours for c in facts.cases} == {
        "within": True,
        "evening": False,
        "sunday": False,
    }
    first = governance.metrics(None, T0 - dt.timedelta(days=1), NOW)["first_reply_seconds"]
    assert (first["business_hours"], first["off_hours"]) == (
        {"count": 1, "median": 600.0, "p90": 600.0},
        {"count": 2, "median": 3000.0, "p90": 3000.0},
    )
