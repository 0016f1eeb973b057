"""Consultation orchestration end to end over the real pieces: store (SQLite and PostgreSQL),
experts.yml, the loopback Slack and Telegram API servers, an injectable clock."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Dict, Iterator, List

import pytest

from backline.consult import ladder
from backline.consult.outbox import Outbox
from backline.consult.quotas import EscalationLimited, EscalationLimits
from backline.consult.replies import SLA_DELAY
from backline.consult.service import ConsultationService, transcript_from_events
from backline.consult.store import ConsultationStore
from backline.experts import DashboardChannel, RetryPolicy, SlackChannel, TelegramChannel, UnavailableChannel
from backline.governance.service import GovernanceService
from backline.routing.directory import ExpertDirectory, load_experts
from tests.clock import FakeClock
from tests.expert_apis import FakeSlack, FakeTelegram
from tests.servers import PROJECT_ROOT

TUESDAY_10 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)  # 10:00 in Berlin: mara on duty, jonas not
TUESDAY_13 = TUESDAY_10 + dt.timedelta(hours=3)  # both billing specialists on duty
SUNDAY_10 = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.timezone.utc)  # closed
CARD = "4111 1111 1111 1111"
REFUND = {
    "action": "handoff",
    "mode": "human",
    "reason": "sensitive_topic",
    "detail": "refund_over_limit",
    "tier": "high",
    "intent": "refund_request",
    "confidence": 0.94,
    "thresholds": {"high": 0.8, "low": 0.4},
    "queue": "billing",
    "priority": "high",
    "sla_minutes": 240,
    "context_package": "billing",
    "row": "refund_request",
    "triggers": ["sensitive_topic"],
    "modifiers": [],
    "evidence": {
        "sensitive_topic": {
            "category": "refund_over_limit",
            "amount": 780.0,
            "currency": "EUR",
            "amount_eur": 780.0,
            "limit_eur": 500.0,
        }
    },
}
TRANSCRIPT = [
    {"role": "customer", "text": "Hi, I need a refund", "at": "2026-11-24T08:59:00+00:00"},
    {"role": "assistant", "text": "Which order is it about?", "at": "2026-11-24T08:59:05+00:00"},
    {
        "role": "customer",
        "text": f"order 10023, I want 780 EUR back, my card {CARD}",
        "at": "2026-11-24T08:59:40+00:00",
    },
]
SLOTS = {"order_id": "10023", "amount": 780.0, "currency": "EUR"}


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    api = FakeSlack("xoxb-test").start()
    yield api
    api.stop()


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegram]:
    api = FakeTelegram("42:test").start()
    yield api
    api.stop()


@pytest.fixture
def dashboard() -> List[Dict[str, Any]]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY_10)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[ConsultationStore]:
    with ConsultationStore(db_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def service(
    store: ConsultationStore,
    directory: ExpertDirectory,
    slack_api: FakeSlack,
    telegram_api: FakeTelegram,
    dashboard: List[Dict[str, Any]],
    clock: FakeClock,
    business_url_fixed_day: str,
) -> ConsultationService:
    channels = {
        "slack": SlackChannel("xoxb-test", base_url=f"{slack_api.url}/api/"),
        "telegram": TelegramChannel("42:test", base_url=telegram_api.url),
        "email": UnavailableChannel("email", "no SMTP server configured"),
        "dashboard": DashboardChannel(dashboard),
    }
    return ConsultationService(
        store,
        directory,
        channels,
        clock=clock,
        retry=RetryPolicy(max_attempts=2),
        sleep=lambda seconds: None,
        hub_url="http://hub.test",
        business_db_url=business_url_fixed_day,
    )


def actions(store: ConsultationStore, consultation_id: str) -> List[str]:
    return [event.action for event in store.audit_trail(consultation_id)]


def test_a_handoff_reaches_the_chosen_expert_on_slack_with_its_brief(
    service: ConsultationService, slack_api: FakeSlack, store: ConsultationStore
) -> None:
    opened = service.open("conv-1", REFUND, transcript=TRANSCRIPT, slots=SLOTS)

    case = store.require(opened.consultation.id)
    assert (case.mode, case.status, case.queue, case.assignee, case.channel) == (
        "handoff",
        "assigned",
        "billing",
        "mara",
        "slack",
    )
    assert case.brief["intent"] == "refund_request"
    assert case.brief["amount"]["value"] == 780.0
    assert "780 EUR back" in case.brief["user_claim"] and CARD not in case.brief["user_claim"]
    assert case.sla_due_at == TUESDAY_10 + dt.timedelta(minutes=240)
    post = slack_api.posts()[0]
    assert post["channel"] == "U07KESTR02"
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["value"] for b in buttons} == {case.id}
    assert CARD not in str(slack_api.requests[0].body.decode())
    assert actions(store, case.id) == ["created", "selected", "notified", "assigned", "customer_told"]
    assert opened.delivery is not None and opened.delivery.channel == "slack"


def test_the_customer_hears_the_queue_sla_while_there_are_too_few_cases(service: ConsultationService) -> None:
    opened = service.open("conv-1", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    assert opened.customer_text == "I am connecting you to a colleague. They typically reply in 4 hours."
    assert (opened.wait.basis, opened.wait.cases) == ("sla", 0)


def test_the_wait_is_the_median_first_reply_of_the_last_30_days(
    service: ConsultationService, store: ConsultationStore, clock: FakeClock
) -> None:
    clock.now = TUESDAY_10 - dt.timedelta(days=40)
    old = store.create(conversation_id="old", mode="handoff", queue="billing")
    store.record_first_reply(old.id, clock.now + dt.timedelta(hours=9))  # outside the window: ignored
    for minutes in (4, 6, 7, 9, 30):
        clock.now = TUESDAY_10 - dt.timedelta(days=minutes)
        case = store.create(conversation_id=f"c{minutes}", mode="handoff", queue="billing")
        store.record_first_reply(case.id, clock.now + dt.timedelta(minutes=minutes))
    clock.now = TUESDAY_10

    opened = service.open("conv-1", REFUND, transcript=TRANSCRIPT, slots=SLOTS)

    assert (opened.wait.basis, opened.wait.cases, opened.wait.minutes) == ("median_30d", 5, 7.0)
    assert opened.customer_text == "I am connecting you to a colleague. They typically reply in 10 minutes."


def test_a_consultation_tells_the_customer_a_specialist_is_checking(
    service: ConsultationService, store: ConsultationStore
) -> None:
    record = {
        **REFUND,
        "action": "consult",
        "mode": "consulting",
        "reason": "medium_confidence",
        "detail": None,
        "tier": "medium",
        "confidence": 0.61,
        "triggers": [],
    }
    opened = service.open("conv-2", record, transcript=TRANSCRIPT, slots=SLOTS, ai_draft="Your refund is on its way.")
    assert opened.consultation.mode == "consult"
    assert opened.consultation.ai_draft == "Your refund is on its way."
    assert opened.customer_text == (
        "A specialist from our billing team is checking this; that usually takes about 4 hours."
    )


def test_off_hours_the_customer_hears_when_a_colleague_is_back(
    service: ConsultationService, clock: FakeClock, store: ConsultationStore
) -> None:
    clock.now = SUNDAY_10
    opened = service.open("conv-3", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    assert opened.customer_text == (
        "I am connecting you to a colleague. Our billing team is away right now; a colleague will be in touch "
        "on Monday at 08:00 (Berlin time). Until then I am here for information questions."
    )
    monday_8 = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.timezone.utc)
    assert opened.consultation.sla_due_at == monday_8 + dt.timedelta(minutes=240)  # the clock starts at opening


def test_a_failing_channel_falls_back_to_the_next_person_and_is_audited(
    service: ConsultationService,
    slack_api: FakeSlack,
    telegram_api: FakeTelegram,
    clock: FakeClock,
    store: ConsultationStore,
) -> None:
    clock.now = TUESDAY_13
    slack_api.fail_next(500, {"ok": False, "error": "internal_error"}, times=2)
    opened = service.open("conv-4", REFUND, transcript=TRANSCRIPT, slots=SLOTS)

    case = store.require(opened.consultation.id)
    assert (case.assignee, case.channel) == ("jonas", "telegram")
    assert telegram_api.messages()[0]["chat_id"] in (5100000001, "5100000001")
    failures = [e.detail for e in store.audit_trail(case.id) if e.action == "delivery_failed"]
    assert [(f["person_id"], f["channel"]) for f in failures] == [
        ("mara", "slack"),
        ("mara", "slack"),
        ("mara", "email"),
    ]


def test_nothing_reachable_still_leaves_the_case_on_the_dashboard(
    service: ConsultationService, slack_api: FakeSlack, dashboard: List[Dict[str, Any]], store: ConsultationStore
) -> None:
    slack_api.fail_next(200, {"ok": False, "error": "invalid_auth"})
    opened = service.open("conv-5", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    assert dashboard and dashboard[0]["consultation_id"] == opened.consultation.id and dashboard[0]["fallback"]
    assert store.require(opened.consultation.id).channel == "dashboard"


def test_the_sla_ladder_reroutes_and_tells_the_customer_once_the_promise_passed(
    service: ConsultationService,
    telegram_api: FakeTelegram,
    slack_api: FakeSlack,
    clock: FakeClock,
    store: ConsultationStore,
) -> None:
    opened = service.open("conv-6", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    case_id = opened.consultation.id
    assert service.run_sla(TUESDAY_10 + dt.timedelta(minutes=239)) == []

    first = service.run_sla(TUESDAY_10 + dt.timedelta(minutes=240))
    assert [(o.step.step, o.delivery.person_id) for o in first] == [("next_person", "jonas")]
    assert first[0].customer_text and "taking longer than usual" in first[0].customer_text
    assert telegram_api.messages()[-1]["chat_id"] in (5100000001, "5100000001")
    again = service.run_sla(TUESDAY_10 + dt.timedelta(minutes=250))
    assert [(o.step, o.customer_text) for o in again] == [(None, None)]

    backup = service.run_sla(TUESDAY_10 + dt.timedelta(minutes=360))
    assert backup[0].step.step == "backup_queue" and store.require(case_id).queue == "support"
    boss = service.run_sla(TUESDAY_10 + dt.timedelta(minutes=480))
    assert (boss[0].step.step, boss[0].delivery.person_id) == ("supervisor", "petra")
    assert "U07KESTR01" in [p["channel"] for p in slack_api.posts()]
    trail = actions(store, case_id)
    assert [a for a in trail if a.startswith("sla_")] == ["sla_next_person", "sla_backup_queue", "sla_supervisor"]
    # The notice waits in the outbox once; "told" is recorded only when it reached the customer.
    [notice] = Outbox(store).for_consultation(case_id)
    assert (notice.intent, notice.status, notice.notice) == (SLA_DELAY, "pending", first[0].customer_text)
    assert "customer_delay_told" not in trail
    outbox = Outbox(store)
    [leased] = outbox.claim_due("hub-a", at=TUESDAY_10 + dt.timedelta(minutes=481))
    assert outbox.succeeded(leased, at=TUESDAY_10 + dt.timedelta(minutes=481)) is True
    assert actions(store, case_id).count("customer_delay_told") == 1
    assert [o.customer_text for o in service.run_sla(TUESDAY_10 + dt.timedelta(minutes=600))] in ([], [None])
    assert len(Outbox(store).for_consultation(case_id)) == 1


def test_two_hubs_ticking_at_once_take_each_step_once(
    service: ConsultationService, store: ConsultationStore, db_url: str
) -> None:
    opened = service.open("conv-6b", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    other = ConsultationStore(db_url)
    twin = ConsultationService(
        other,
        service.directory,
        service.channels,
        clock=service.clock,
        retry=service.retry,
        sleep=service.sleep,
        hub_url=None,
    )
    barrier = threading.Barrier(2)
    errors: List[BaseException] = []

    def tick(svc: ConsultationService) -> None:
        barrier.wait()
        try:
            for minutes in (240, 360, 480):
                svc.run_sla(TUESDAY_10 + dt.timedelta(minutes=minutes))
        except BaseException as error:  # surfaced below
            errors.append(error)

    try:
        threads = [threading.Thread(target=tick, args=(svc,)) for svc in (service, twin)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.dispose()
    assert errors == []
    trail = actions(store, opened.consultation.id)
    assert [a for a in trail if a.startswith("sla_")] == ["sla_next_person", "sla_backup_queue", "sla_supervisor"]
    assert trail.count("queue_changed") == 1
    assert len(Outbox(store).for_consultation(opened.consultation.id)) == 1


def test_one_broken_case_does_not_stop_the_tick(
    service: ConsultationService, store: ConsultationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = service.open("conv-6c", REFUND, transcript=TRANSCRIPT, slots=SLOTS).consultation.id
    fine = service.open("conv-6d", REFUND, transcript=TRANSCRIPT, slots=SLOTS).consultation.id
    climb = ladder.climb

    def failing(on: ConsultationService, consultation_id: str, now: dt.datetime):
        if consultation_id == broken:
            raise RuntimeError("corrupt trail")
        return climb(on, consultation_id, now)

    monkeypatch.setattr(ladder, "climb", failing)
    outcomes = service.run_sla(TUESDAY_10 + dt.timedelta(minutes=240))
    assert [o.consultation_id for o in outcomes] == [fine]
    assert "sla_next_person" in actions(store, fine) and "sla_next_person" not in actions(store, broken)


def test_a_replied_case_leaves_the_ladder(service: ConsultationService, store: ConsultationStore) -> None:
    opened = service.open("conv-7", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    store.record_first_reply(opened.consultation.id, TUESDAY_10 + dt.timedelta(minutes=30))
    assert service.run_sla(TUESDAY_10 + dt.timedelta(minutes=500)) == []


def test_an_urgent_security_case_gets_half_the_sla_and_the_backup_at_once(
    service: ConsultationService, store: ConsultationStore
) -> None:
    record = {
        **REFUND,
        "detail": "account_security",
        "queue": "security",
        "priority": "urgent",
        "sla_minutes": 15,
        "intent": "account_compromised",
    }
    opened = service.open("conv-8", record, transcript=TRANSCRIPT, slots={})
    assert opened.consultation.sla_due_at == TUESDAY_10 + dt.timedelta(minutes=7.5)
    assert [c.reason for c in opened.selection][-1] == "supervisor"


def test_a_queue_experts_yml_does_not_know_is_refused(service: ConsultationService) -> None:
    with pytest.raises(ValueError, match="queue 'nowhere'"):
        service.open("conv-9", {**REFUND, "queue": "nowhere"}, transcript=TRANSCRIPT)


def test_the_transcript_comes_from_the_tracker_events() -> None:
    events = [
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {"event": "user", "text": "hello", "timestamp": 1764000000.0},
        {"event": "bot", "text": "Hi! How can I help?", "timestamp": 1764000001.5},
        {"event": "bot", "text": None, "timestamp": 1764000002.0},
        {"event": "slot", "name": "x", "value": 1},
    ]
    assert transcript_from_events(events) == [
        {"role": "customer", "text": "hello", "at": "2025-11-24T16:00:00+00:00"},
        {"role": "assistant", "text": "Hi! How can I help?", "at": "2025-11-24T16:00:01.500000+00:00"},
    ]


def test_in_human_mode_customer_messages_reach_the_experts_thread(
    service: ConsultationService, slack_api: FakeSlack, store: ConsultationStore
) -> None:
    opened = service.open("conv-10", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    first_ts = slack_api.posts()[0]
    delivery = service.relay_to_expert(opened.consultation.id, "Any news on my refund?", "rest")

    post = slack_api.posts()[-1]
    assert (post["channel"], post["text"]) == ("U07KESTR02", "Customer: Any news on my refund?")
    assert post["thread_ts"] == opened.delivery.thread_id and delivery is not None
    assert "thread_ts" not in first_ts
    [message] = store.messages(opened.consultation.id)
    assert (message.direction, message.channel, message.text) == ("from_customer", "rest", "Any news on my refund?")


def test_metrics_count_escalations_and_reply_times(service: ConsultationService, store: ConsultationStore) -> None:
    for minutes in (10, 20, 30):
        opened = service.open(f"m{minutes}", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
        store.record_first_reply(opened.consultation.id, TUESDAY_10 + dt.timedelta(minutes=minutes))
    service.open("m-open", {**REFUND, "reason": "explicit_request", "queue": "support"}, transcript=TRANSCRIPT)

    governance = GovernanceService(store, service.directory, None, clock=lambda: TUESDAY_10 + dt.timedelta(hours=1))
    metrics = governance.metrics()
    assert metrics["consultations"] == 4
    assert metrics["by_reason"] == {"sensitive_topic": 3, "explicit_request": 1}
    assert metrics["by_queue"] == {"billing": 3, "support": 1}
    assert metrics["first_reply_seconds"] == {
        "count": 3,
        "median": 1200.0,
        "p90": 1800.0,
        "business_hours": {"count": 3, "median": 1200.0, "p90": 1800.0},  # Tuesday 10:00 is within hours
        "off_hours": {"count": 0, "median": None, "p90": None},
    }


# --- one open consultation per conversation ------------------------------------------------------

CONSULT = {
    **REFUND,
    "action": "consult",
    "mode": "consulting",
    "reason": "medium_confidence",
    "detail": None,
    "tier": "medium",
    "confidence": 0.61,
    "triggers": [],
    "priority": "normal",
}
LATER = [
    *TRANSCRIPT,
    {
        "role": "assistant",
        "text": "A specialist from our billing team is checking this.",
        "at": "2026-11-24T09:00:05+00:00",
    },
    {"role": "customer", "text": "I was charged twice as well", "at": "2026-11-24T09:03:00+00:00"},
    {"role": "customer", "text": "I want to talk to a person now", "at": "2026-11-24T09:04:00+00:00"},
]


def top_level(slack_api: FakeSlack) -> List[Dict[str, Any]]:
    """The Slack posts that notify someone of a case (not the transcript in its thread)."""
    return [p for p in slack_api.posts() if "thread_ts" not in p]


def test_escalating_again_adds_to_the_open_case_and_upgrades_it_to_a_handoff(
    service: ConsultationService, store: ConsultationStore, slack_api: FakeSlack, clock: FakeClock
) -> None:
    first = service.open("conv-again", CONSULT, transcript=TRANSCRIPT, slots=SLOTS, ai_draft="Refund on its way.")
    assert len(top_level(slack_api)) == 1
    clock.now = TUESDAY_10 + dt.timedelta(minutes=5)

    again = service.open(
        "conv-again", {**REFUND, "reason": "explicit_request", "detail": None}, transcript=LATER, slots=SLOTS
    )

    assert (again.merged, again.consultation.id) == (True, first.consultation.id)
    [case] = store.list("conv-again")
    assert (case.mode, case.priority, case.reasons, case.status) == (
        "handoff",
        "high",
        ("medium_confidence", "explicit_request"),
        "assigned",
    )
    assert [(m.direction, m.channel, m.text) for m in store.messages(case.id)] == [
        ("from_customer", "escalated_again", "I was charged twice as well"),
        ("from_customer", "escalated_again", "I want to talk to a person now"),
    ]
    trail = store.audit_trail(case.id)
    assert [e.action for e in trail][5:] == [
        "message",
        "message",
        "escalated_again",
        "mode_changed",
        "notified",
        "assigned",
        "customer_told_again",
    ]
    [event] = [e for e in trail if e.action == "escalated_again"]
    assert event.detail == {
        "detail": None,
        "action": "handoff",
        "intent": "refund_request",
        "queue": "billing",
        "messages_added": 2,
        "reason": "explicit_request",
        "reasons": ["medium_confidence", "explicit_request"],
        "previous_reasons": ["medium_confidence"],
        "priority": "high",
        "previous_priority": "normal",
    }
    [mode] = [e.detail for e in trail if e.action == "mode_changed"]
    assert (mode["mode"], mode["previous_mode"]) == ("handoff", "consult")
    renotified = top_level(slack_api)
    assert len(renotified) == 2 and renotified[1]["channel"] == "U07KESTR02"  # mara again, now a handoff
    assert again.delivery is not None and again.delivery.person_id == "mara"
    assert again.customer_text == (
        "Your request is already with our billing team, and I have added this to it. "
        "I have asked for a colleague to take over; they typically reply in 4 hours."
    )


def test_escalating_again_in_the_same_mode_pings_no_one_and_never_lowers_anything(
    service: ConsultationService, store: ConsultationStore, slack_api: FakeSlack
) -> None:
    first = service.open("conv-same", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    posts = len(slack_api.posts())

    again = service.open("conv-same", {**CONSULT, "priority": "low"}, transcript=LATER[:4], slots=SLOTS)
    third = service.open("conv-same", {**CONSULT, "priority": "low"}, transcript=LATER[:4], slots=SLOTS)

    assert again.consultation.id == third.consultation.id == first.consultation.id
    case = store.require(first.consultation.id)
    assert (case.mode, case.priority, case.reasons) == ("handoff", "high", ("sensitive_topic", "medium_confidence"))
    assert len(slack_api.posts()) == posts and again.delivery is None
    assert [m.text for m in store.messages(case.id)] == []  # the assistant's turn is not the customer's
    assert [e.action for e in store.audit_trail(case.id)].count("escalated_again") == 2
    assert "mode_changed" not in [e.action for e in store.audit_trail(case.id)]
    assert again.customer_text == (
        "Your request is already with our billing team, and I have added this to it. They will answer you here."
    )


def test_a_customer_message_is_added_once_however_often_the_conversation_escalates(
    service: ConsultationService, store: ConsultationStore
) -> None:
    first = service.open("conv-once", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    service.open("conv-once", REFUND, transcript=LATER[:5], slots=SLOTS)
    service.relay_to_expert(first.consultation.id, "hello?", "rest")
    service.open(
        "conv-once", REFUND, transcript=[*LATER, {"role": "customer", "text": "hello?", "at": None}], slots=SLOTS
    )
    assert [m.text for m in store.messages(first.consultation.id)] == [
        "I was charged twice as well",
        "hello?",
        "I want to talk to a person now",
    ]


def test_once_the_case_is_closed_the_next_escalation_opens_a_new_one(
    service: ConsultationService, store: ConsultationStore, clock: FakeClock
) -> None:
    first = service.open("conv-next", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
    store.close(first.consultation.id, resolution="answered", actor="mara")
    clock.now = TUESDAY_10 + dt.timedelta(minutes=1)
    second = service.open("conv-next", REFUND, transcript=LATER, slots=SLOTS)
    assert second.merged is False and second.consultation.id != first.consultation.id
    assert [c.status for c in store.list("conv-next")] == ["closed", "assigned"]
    assert store.open_for_conversation("conv-next").id == second.consultation.id
    assert store.open_for_conversation("nobody") is None


def limited_service(service: ConsultationService, per_conversation: int, per_address: int) -> ConsultationService:
    return ConsultationService(
        service.store,
        service.directory,
        service.channels,
        clock=service.clock,
        retry=service.retry,
        sleep=service.sleep,
        hub_url=None,
        limits=EscalationLimits(per_conversation, per_address),
    )


def test_the_conversation_limit_counts_new_cases_only(service: ConsultationService, store: ConsultationStore) -> None:
    limited = limited_service(service, per_conversation=2, per_address=0)
    cases = []
    for _ in range(2):
        opened = limited.open("conv-limit", REFUND, transcript=TRANSCRIPT, slots=SLOTS)
        for _ in range(3):  # escalating again while the case is open: added to it, not counted
            assert limited.open("conv-limit", REFUND, transcript=LATER, slots=SLOTS).merged is True
        store.close(opened.consultation.id, resolution="answered", actor="mara")
        cases.append(opened.consultation.id)

    with pytest.raises(EscalationLimited) as refused:
        limited.open(
            "conv-limit", REFUND, transcript=[*LATER, {"role": "customer", "text": "third time!"}], slots=SLOTS
        )

    assert refused.value.limit == "conversation" and refused.value.consultation.id == cases[1]
    assert refused.value.text.startswith("Your request is already with our billing team")
    assert len(store.list("conv-limit")) == 2
    assert store.messages(cases[1])[-1].text == "third time!"
    assert [e.detail["limit"] for e in store.audit_trail(cases[1]) if e.action == "escalation_limited"] == [
        "conversation"
    ]


def test_the_address_limit_refuses_new_cases_but_adds_to_an_open_one(
    service: ConsultationService, store: ConsultationStore
) -> None:
    limited = limited_service(service, per_conversation=0, per_address=2)
    for n in range(2):
        limited.open(f"web-{n}", REFUND, transcript=TRANSCRIPT, slots=SLOTS, client="k" * 32)
    with pytest.raises(EscalationLimited) as refused:
        limited.open("web-2", REFUND, transcript=TRANSCRIPT, slots=SLOTS, client="k" * 32)
    assert (refused.value.limit, refused.value.consultation) == ("address", None)
    assert limited.open("web-1", REFUND, transcript=LATER, slots=SLOTS, client="k" * 32).merged is True
    assert store.list("web-2") == [] and len(store.list("web-1")) == 1
