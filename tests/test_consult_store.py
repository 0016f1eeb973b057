"""The consultation store, the same tests against SQLite (tmp_path) and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator, List

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from backline.consult import store as store_module
from backline.consult.store import (
    VERSION_TABLE,
    Consultation,
    ConsultationClosed,
    ConsultationNotFound,
    ConsultationStore,
    audit_events,
    consultations,
    current_revision,
    database_url,
    main,
    make_engine,
    metadata,
    migrate,
)
from tests.clock import FakeClock

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[ConsultationStore]:
    with ConsultationStore(db_url, clock=clock) as opened:
        yield opened


def new(store: ConsultationStore, **overrides: object) -> Consultation:
    values = dict(
        conversation_id="conv-1",
        mode="consult",
        queue="billing",
        priority="high",
        reasons=["sensitive_topic"],
        detail="refund_over_limit",
    )
    values.update(overrides)
    return store.create(**values)  # type: ignore[arg-type]


def actions(store: ConsultationStore, consultation_id: str) -> List[str]:
    return [event.action for event in store.audit_trail(consultation_id)]


# --- migrations ------------------------------------------------------------------------------


def test_migrations_apply_from_empty_and_are_idempotent(db_url: str) -> None:
    assert current_revision(db_url) is None
    head = migrate(db_url)
    assert head == "0006"
    assert current_revision(db_url) == head
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {
            "consultations",
            "consultation_messages",
            "audit_events",
            "expert_threads",
            "webhook_deliveries",
            "verdicts",
            "overrides",
            "csat_responses",
            "qa_reviews",
            VERSION_TABLE,
        } <= tables
        assert "alembic_version" not in tables  # its own version table: can share a database
    finally:
        engine.dispose()

    with ConsultationStore(db_url, clock=FakeClock(T0)) as opened:  # migrates on start: a no-op now
        kept = new(opened)
    assert migrate(db_url) == head
    with ConsultationStore(db_url) as reopened:
        assert reopened.get(kept.id) == kept
        assert len(reopened.list()) == 1


def test_migrated_schema_matches_the_table_definitions(db_url: str) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_command_line_migrates_and_reports_the_revision(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["current", "--url", db_url]) == 0
    assert capsys.readouterr().out.strip() == "none"
    assert main(["migrate", "--url", db_url]) == 0
    assert "revision 0006" in capsys.readouterr().out
    assert main(["current", "--url", db_url]) == 0
    assert capsys.readouterr().out.strip() == "0006"


def test_concurrent_migrations_do_not_collide(db_url: str) -> None:
    errors: List[BaseException] = []

    def run() -> None:
        try:
            migrate(db_url)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(db_url) == "0006"


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(store_module.ENV_URL, raising=False)
    assert database_url() == f"sqlite:///{store_module.PROJECT_ROOT / 'var' / 'consultations.db'}"
    monkeypatch.setenv(store_module.ENV_URL, "postgresql://backline@db/consult")
    assert database_url() == "postgresql://backline@db/consult"


# --- consultations ----------------------------------------------------------------------------


def test_create_stores_the_record_and_derives_brief_transcript_draft_from_the_context(
    store: ConsultationStore,
) -> None:
    package = {
        "package": "review",
        "brief": {
            "intent": "product_question/warranty",
            "amount": None,
            "product": "Kestrel Hub X1",
            "user_claim": "Is the hub covered?",
            "risk": {"level": "medium", "grounds": ["confidence 0.55"]},
        },
        "ai_draft": "The Hub X1 has a two-year warranty.",
        "transcript": [{"role": "customer", "text": "Is the hub covered?", "at": "2026-11-23T08:59:00+00:00"}],
    }
    created = store.create(
        conversation_id="conv-9",
        mode="consult",
        queue="support",
        priority="normal",
        reasons=["medium_confidence", "medium_confidence", "negative_sentiment"],
        detail="draft_review",
        context=package,
        routing={"action": "consult", "confidence": 0.55},
        sla_due_at=at(120),
    )
    assert created.id.startswith("c_") and len(created.id) == 14
    assert created.status == "open" and created.assignee is None
    assert created.reasons == ("medium_confidence", "negative_sentiment")
    assert created.brief["product"] == "Kestrel Hub X1"
    assert created.ai_draft == "The Hub X1 has a two-year warranty."
    assert created.transcript[0]["text"] == "Is the hub covered?"
    assert created.created_at == T0 and created.created_at.tzinfo is not None
    assert store.get(created.id) == created
    assert store.get("c_doesnotexist") is None
    with pytest.raises(ConsultationNotFound):
        store.require("c_doesnotexist")
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.status = "closed"  # type: ignore[misc]

    record = created.as_dict()
    json.dumps(record)  # JSON-ready
    for key in (
        "id",
        "conversation_id",
        "mode",
        "status",
        "queue",
        "priority",
        "reasons",
        "brief",
        "ai_draft",
        "transcript",
        "created_at",
        "first_reply_at",
        "closed_at",
        "sla_due_at",
        "assignee",
        "channel",
        "context",
    ):
        assert key in record
    assert record["created_at"] == "2026-11-23T09:00:00+00:00"
    assert record["sla_due_at"] == "2026-11-23T11:00:00+00:00"
    assert record["first_reply_at"] is None and record["closed_at"] is None
    assert record["context"]["package"] == "review"
    record["brief"]["product"] = "changed"
    assert created.brief["product"] == "Kestrel Hub X1"  # as_dict hands out copies


def test_sensitive_numbers_are_masked_before_they_are_stored(store: ConsultationStore) -> None:
    card = "4242 4242 4242 4242"
    created = store.create(
        conversation_id="conv-3",
        mode="handoff",
        queue="billing",
        transcript=[{"role": "customer", "text": f"charge my card {card}", "at": None}],
        brief={"user_claim": f"charge my card {card}"},
        ai_draft=f"Refund to {card}?",
        routing={"evidence": {"no_convergence": {"last_question": f"card {card}"}}},
        context={"transcript": [{"role": "customer", "text": "IBAN DE89 3704 0044 0532 0130 00"}]},
    )
    stored = json.dumps(store.get(created.id).as_dict())
    assert "4242 4242 4242 4242" not in stored and "3704 0044" not in stored
    assert stored.count("**** **** **** 4242") == 4 and "DE** **** **** **** **30 00" in stored


def test_ids_are_unique(store: ConsultationStore) -> None:
    ids = {new(store, conversation_id=f"conv-{n}").id for n in range(25)}
    assert len(ids) == 25


def test_invalid_input_is_refused_and_writes_nothing(store: ConsultationStore) -> None:
    for bad in (
        dict(mode="chat"),
        dict(priority="asap"),
        dict(conversation_id=""),
        dict(queue=" "),
        dict(reasons="sensitive_topic"),
        dict(reasons=[None]),
        dict(context={"x": float("nan")}),
    ):
        with pytest.raises(ValueError):
            new(store, **bad)
    assert store.list() == []


def test_times_are_stored_in_utc(store: ConsultationStore) -> None:
    berlin = timezone(timedelta(hours=1))
    created = new(store, now=datetime(2026, 11, 23, 10, 30, tzinfo=berlin), sla_due_at=datetime(2026, 11, 23, 12, 0))
    assert created.created_at == datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
    assert created.sla_due_at == datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)  # naive taken as UTC
    assert store.get(created.id).created_at.utcoffset() == timedelta(0)


# --- the audit trail ------------------------------------------------------------------------


def test_audit_trail_records_every_step_in_order(store: ConsultationStore, clock: FakeClock) -> None:
    case = new(store, sla_due_at=at(240))
    clock.advance(seconds=5)
    store.assign(case.id, "mara", "slack", detail={"load": 0})
    store.audit(case.id, "channel:slack", "delivery_failed", {"error": "HTTP 500", "attempts": 3})
    store.audit(case.id, "channel:slack", "fallback", {"to": "email"})
    store.audit(case.id, "channel:email", "notified", {"message_id": "<abc@kestrel>"}, at=at(1))
    clock.advance(hours=4)
    store.audit(case.id, "sla", "sla_next_person", {"from": "mara", "to": "jonas"})
    store.assign(case.id, "jonas", "telegram", actor="sla")
    store.set_sla_due(case.id, at(360), actor="sla")
    clock.advance(minutes=10)
    store.add_message(case.id, "from_expert", "jonas", "telegram", "Approved, refund it.")
    store.record_first_reply(case.id)
    store.record_first_reply(case.id, at(500))  # only the first reply counts
    clock.advance(minutes=1)
    store.close(case.id, resolution="approved", actor="jonas")
    store.close(case.id, resolution="denied", actor="mara")  # a late double click is kept, not applied

    trail = store.audit_trail(case.id)
    assert [e.action for e in trail] == [
        "created",
        "assigned",
        "delivery_failed",
        "fallback",
        "notified",
        "sla_next_person",
        "assigned",
        "sla_due_changed",
        "message",
        "first_reply",
        "closed",
        "close_ignored",
    ]
    assert [e.actor for e in trail][:3] == ["system", "system", "channel:slack"]
    assert (
        trail[0].at == T0
        and trail[0].detail["queue"] == "billing"
        and trail[0].detail["reasons"] == ["sensitive_topic"]
    )
    assert trail[1].detail == {
        "assignee": "mara",
        "channel": "slack",
        "previous_assignee": None,
        "previous_channel": None,
        "load": 0,
    }
    assert trail[2].detail == {"error": "HTTP 500", "attempts": 3}
    assert trail[4].at == at(1)
    assert trail[6].actor == "sla" and trail[6].detail["previous_assignee"] == "mara"
    assert trail[9].detail["seconds"] == pytest.approx(4 * 3600 + 5 + 600)
    assert trail[-1].detail["resolution"] == "denied"
    ids = [e.id for e in trail]
    assert ids == sorted(ids)
    json.dumps([e.as_dict() for e in trail])

    final = store.get(case.id)
    assert final.status == "closed" and final.resolution == "approved" and final.assignee == "jonas"
    assert final.channel == "telegram" and final.first_reply_at == T0 + timedelta(hours=4, seconds=5, minutes=10)
    assert final.closed_at == final.first_reply_at + timedelta(minutes=1)
    assert final.sla_due_at == at(360)


def test_audit_refuses_bad_actions_and_unknown_cases(store: ConsultationStore) -> None:
    case = new(store)
    for action in ("", "Delivery Failed", "1st", "x" * 65):
        with pytest.raises(ValueError):
            store.audit(case.id, "system", action)
    with pytest.raises(ValueError):
        store.audit(case.id, "", "notified")
    for call in (
        lambda: store.audit("c_missing", "system", "notified"),
        lambda: store.assign("c_missing", "mara", "slack"),
        lambda: store.add_message("c_missing", "to_expert", "system", "slack", "hi"),
        lambda: store.record_first_reply("c_missing", T0),
        lambda: store.close("c_missing", T0, "x"),
    ):
        with pytest.raises(ConsultationNotFound):
            call()
    assert actions(store, case.id) == ["created"]
    assert store.audit_trail("c_missing") == []


def test_a_failing_step_rolls_back_completely(store: ConsultationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    case = new(store)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(ConsultationStore, "_update", boom)
        with pytest.raises(RuntimeError):
            store.assign(case.id, "mara", "slack")  # its audit event was written, then the update failed
    assert store.get(case.id).assignee is None
    assert actions(store, case.id) == ["created"]

    with monkeypatch.context() as patch:
        patch.setattr(ConsultationStore, "_append", staticmethod(boom))
        with pytest.raises(RuntimeError):
            new(store, conversation_id="conv-2")  # no consultation without its "created" event
    assert [c.conversation_id for c in store.list()] == ["conv-1"]


def test_messages_are_kept_in_order_even_after_closing(store: ConsultationStore, clock: FakeClock) -> None:
    case = new(store)
    store.add_message(case.id, "to_expert", "system", "slack", "New case: refund of €780", meta={"ts": "1.2"})
    clock.advance(minutes=3)
    store.add_message(case.id, "from_expert", "mara", "slack", "Checking with finance", internal=True)
    store.close(case.id, at(5), "answered")
    late = store.add_message(case.id, "from_expert", "mara", "slack", "Sorry, one more thing", at=at(7))
    messages = store.messages(case.id)
    assert [m.text for m in messages] == ["New case: refund of €780", "Checking with finance", "Sorry, one more thing"]
    assert [m.internal for m in messages] == [False, True, False]
    assert messages[0].meta == {"ts": "1.2"} and messages[1].at == at(3) and messages[2] == late
    assert actions(store, case.id) == ["created", "message", "message", "closed", "message"]
    assert store.audit_trail(case.id)[2].detail == {
        "message_id": messages[1].id,
        "direction": "from_expert",
        "channel": "slack",
        "internal": True,
    }
    with pytest.raises(ValueError):
        store.add_message(case.id, "sideways", "mara", "slack", "x")
    with pytest.raises(ValueError):
        store.add_message(case.id, "to_expert", "mara", "slack", None)  # type: ignore[arg-type]
    json.dumps([m.as_dict() for m in messages])


def test_state_changes(store: ConsultationStore) -> None:
    case = new(store, mode="consult")
    assert store.assign(case.id, "mara", "dashboard").status == "assigned"
    moved = store.set_queue(case.id, "support", actor="sla", detail={"step": "backup_queue"})
    assert moved.queue == "support"
    taken = store.set_mode(case.id, "handoff", actor="mara")
    assert taken.mode == "handoff"
    with pytest.raises(ValueError):
        store.set_mode(case.id, "chat")
    replied = store.record_first_reply(case.id, at(30))
    assert replied.status == "replied"
    assert store.assign(case.id, "jonas", "slack").status == "replied"  # a re-assignment keeps the reply
    store.close(case.id, at(40), "handed_back")
    for call in (
        lambda: store.assign(case.id, "mara", "slack"),
        lambda: store.set_queue(case.id, "legal"),
        lambda: store.set_mode(case.id, "consult"),
    ):
        with pytest.raises(ConsultationClosed):
            call()
    trail = store.audit_trail(case.id)
    assert [e.action for e in trail] == [
        "created",
        "assigned",
        "queue_changed",
        "mode_changed",
        "first_reply",
        "assigned",
        "closed",
    ]
    assert trail[2].detail == {"queue": "support", "previous_queue": "billing", "step": "backup_queue"}
    assert trail[3].detail == {"mode": "handoff", "previous_mode": "consult"}
    assert trail[-1].detail == {"resolution": "handed_back", "previous_status": "replied"}


# --- queries ---------------------------------------------------------------------------------


def test_list_filters(store: ConsultationStore) -> None:
    a = new(store, conversation_id="conv-a", queue="billing", now=at(0))
    b = new(store, conversation_id="conv-b", queue="legal", mode="handoff", now=at(1))
    c = new(store, conversation_id="conv-a", queue="support", now=at(2))
    d = new(store, conversation_id="conv-c", queue="billing", now=at(-5))
    store.assign(b.id, "anna", "email")
    store.close(c.id, at(3), "answered")

    def ids(**filters: object) -> List[str]:
        return [x.id for x in store.list(**filters)]  # type: ignore[arg-type]

    assert ids() == [d.id, a.id, b.id, c.id]  # oldest first
    assert ids(conversation_id="conv-a") == [a.id, c.id]
    assert ids(status="open") == [d.id, a.id]
    assert ids(status="assigned") == [b.id]
    assert ids(status="closed") == [c.id]
    assert ids(queue="billing") == [d.id, a.id]
    assert ids(conversation_id="conv-a", status="open") == [a.id]
    assert ids(conversation_id="conv-a", queue="legal") == []
    assert ids(assignee="anna") == [b.id]
    assert ids(limit=2) == [d.id, a.id]
    assert ids(conversation_id="nobody") == []
    with pytest.raises(ValueError):
        store.list(status="pending")


def test_first_reply_times(store: ConsultationStore) -> None:
    since = at(0)
    replies = {}
    for minutes_after, reply_after, queue in (
        (0, 12, "billing"),
        (10, 3, "billing"),
        (20, None, "billing"),
        (30, 45, "support"),
        (-60, 1, "billing"),
    ):
        case = new(store, queue=queue, now=at(minutes_after))
        if reply_after is not None:
            store.record_first_reply(case.id, at(minutes_after + reply_after))
            replies[case.id] = reply_after
    assert store.first_reply_times("billing", since) == [12 * 60, 3 * 60]  # oldest first, unanswered left out
    assert store.first_reply_times("billing", at(-90)) == [60, 12 * 60, 3 * 60]
    assert store.first_reply_times("billing", since, until=at(5)) == [12 * 60]
    assert store.first_reply_times("support", since) == [45 * 60]
    assert store.first_reply_times("support", since, mode="handoff") == []
    assert store.first_reply_times("legal", since) == []
    assert all(isinstance(x, float) for x in store.first_reply_times("billing", since))


def test_open_load_counts_the_cases_a_person_holds(store: ConsultationStore) -> None:
    first, second, third = (new(store, conversation_id=f"conv-{n}") for n in range(3))
    assert store.open_load("mara") == 0
    store.assign(first.id, "mara", "slack")
    store.assign(second.id, "mara", "slack")
    store.assign(third.id, "jonas", "email")
    store.record_first_reply(second.id, at(10))  # replied: still hers until closed
    assert (store.open_load("mara"), store.open_load("jonas")) == (2, 1)
    store.close(first.id, at(20), "approved")
    store.assign(third.id, "mara", "slack")  # re-routed from jonas to mara
    assert (store.open_load("mara"), store.open_load("jonas")) == (2, 0)
    assert store.open_load("nobody") == 0
    assert sorted(store.open_for("mara")) == sorted([second.id, third.id])  # created at the same moment
    assert store.open_for("jonas") == []


def test_expert_threads_find_the_consultation_a_reply_is_about(store: ConsultationStore) -> None:
    first, second = new(store), new(store, conversation_id="conv-2")
    store.link_thread(first.id, "slack", "D024BE91L", "1700000000.000100")
    store.link_thread(first.id, "slack", "D024BE91L", "1700000000.000100")  # again: no duplicate, no error
    store.link_thread(second.id, "telegram", "4242", "17")
    assert store.find_thread("slack", "D024BE91L", "1700000000.000100") == first.id
    assert store.find_thread("telegram", "4242", "17") == second.id
    assert store.find_thread("telegram", "4243", "17") is None  # same message id, another chat
    assert store.find_thread("slack", "4242", "17") is None  # same ids, another channel
    with pytest.raises(ConsultationNotFound):
        store.link_thread("nope", "slack", "D1", "1.0")


def test_overdue_lists_unanswered_cases_past_their_deadline(store: ConsultationStore) -> None:
    late = new(store, sla_due_at=at(15))
    later = new(store, sla_due_at=at(30))
    answered = new(store, sla_due_at=at(10))
    store.record_first_reply(answered.id, at(5))
    closed = new(store, sla_due_at=at(10))
    store.close(closed.id, at(6), "withdrawn")
    new(store)  # no deadline
    assert store.overdue(at(14)) == []
    assert [c.id for c in store.overdue(at(15))] == [late.id]
    assert [c.id for c in store.overdue(at(60))] == [late.id, later.id]


def test_concurrent_writers_lose_nothing(store: ConsultationStore) -> None:
    case = new(store)
    errors: List[BaseException] = []

    def writer(name: str) -> None:
        try:
            for n in range(10):
                store.add_message(case.id, "from_expert", name, "dashboard", f"{name} {n}")
                store.audit(case.id, name, "notified", {"n": n})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"expert{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.messages(case.id)) == 40
    assert actions(store, case.id).count("notified") == 40
    assert actions(store, case.id).count("message") == 40


def test_raw_rows_hold_naive_utc(store: ConsultationStore) -> None:
    """Portable storage: no time zone in the column, UTC by convention."""
    case = new(store, now=datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    with store.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT created_at FROM consultations WHERE id = :id"), {"id": case.id}
        ).scalar_one()
        events = connection.execute(
            select(audit_events.c.action).where(audit_events.c.consultation_id == case.id)
        ).all()
        count = connection.execute(select(consultations.c.id)).all()
    assert str(raw).startswith("2026-11-23 09:00:00")
    assert [e.action for e in events] == ["created"] and len(count) == 1


def test_a_conversations_open_case_and_its_further_escalations(store: ConsultationStore) -> None:
    assert store.open_for_conversation("conv-1") is None
    case = new(store, priority="normal")
    assert store.open_for_conversation("conv-1").id == case.id and store.open_for_conversation("conv-2") is None

    raised = store.escalated_again(
        case.id,
        reason="explicit_request",
        priority="urgent",
        at=at(5),
        detail={"action": "handoff", "intent": "refund_request"},
    )
    lowered = store.escalated_again(case.id, reason="sensitive_topic", priority="low", at=at(6))
    assert (raised.reasons, raised.priority) == (("sensitive_topic", "explicit_request"), "urgent")
    assert (lowered.reasons, lowered.priority) == (("sensitive_topic", "explicit_request"), "urgent")
    first, second = [e for e in store.audit_trail(case.id) if e.action == "escalated_again"]
    assert first.at == at(5) and first.detail == {
        "action": "handoff",
        "intent": "refund_request",
        "reason": "explicit_request",
        "reasons": ["sensitive_topic", "explicit_request"],
        "previous_reasons": ["sensitive_topic"],
        "priority": "urgent",
        "previous_priority": "normal",
    }
    assert (second.detail["priority"], second.detail["previous_priority"]) == ("urgent", "urgent")
    with pytest.raises(ValueError, match="priority"):
        store.escalated_again(case.id, priority="asap")

    store.close(case.id, at(10), "answered", actor="mara")
    assert store.open_for_conversation("conv-1") is None
    with pytest.raises(ConsultationClosed):
        store.escalated_again(case.id, reason="low_confidence")
    assert store.require(case.id).reasons == ("sensitive_topic", "explicit_request")
