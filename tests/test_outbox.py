"""The delivery outbox and the hub's delivery worker against a loopback server that speaks Rasa's
trigger_intent API: retries with backoff, the retry budget, confirmation through the tracker,
exactly-once under lost answers, per-conversation order, leases shared by two hubs (SQLite and
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Iterator, List

import pytest

from backline.consult.outbox import Outbox, RetryBudget, confirmed
from backline.consult.replies import EXPERT_REPLY, Reply, record_reply
from backline.consult.store import Consultation, ConsultationStore
from backline.hub.delivery_worker import NOT_CONFIRMED, DeliveryWorker
from backline.hub.rasa_client import RasaClient
from tests.clock import FakeClock
from tests.rasa_api import TOKEN, FakeRasa
from tests.servers import free_port

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    server = FakeRasa().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[ConsultationStore]:
    with ConsultationStore(db_url, clock=clock) as opened:
        yield opened


def open_case(store: ConsultationStore, conversation: str = "conv") -> Consultation:
    created = store.create(conversation_id=conversation, mode="handoff", queue="billing", reasons=["sensitive_topic"])
    return store.assign(created.id, "mara", "dashboard")


def worker(store: ConsultationStore, url: str, budget: RetryBudget = RetryBudget(), **kwargs: Any) -> DeliveryWorker:
    return DeliveryWorker(Outbox(store, budget), RasaClient(url, TOKEN), attempt_timeout=1.0, **kwargs)


def test_backoff_doubles_up_to_the_cap() -> None:
    budget = RetryBudget(first_delay=1, max_delay=30)
    assert [budget.delay(n).total_seconds() for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_reply_is_delivered_confirmed_and_audited(store: ConsultationStore, rasa: FakeRasa) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    answer = worker(store, rasa.url).deliver_now(resume.delivery_id)
    assert answer is not None and confirmed(answer, resume.delivery_id)
    [delivery] = Outbox(store).for_consultation(case.id)
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("delivered", 1, T0)
    assert rasa.shown("conv") == [resume.delivery_id]
    assert store.require(case.id).delivery_status == "delivered"
    assert [e.detail for e in store.audit_trail(case.id) if e.action == "delivered"] == [
        {"delivery_id": resume.delivery_id, "intent": "EXTERNAL_human_takeover", "attempts": 1}
    ]


def test_rasa_down_then_back_delivers_once_with_backoff(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Approved."))
    down = worker(store, f"http://127.0.0.1:{free_port()}")
    for attempts, wait in ((1, 1), (2, 2), (3, 4)):
        assert down.run_once() == []
        [delivery] = Outbox(store).pending()
        assert (delivery.attempts, delivery.next_attempt_at) == (attempts, clock.now + dt.timedelta(seconds=wait))
        assert down.run_once() == []  # not due yet: nothing is attempted
        clock.advance(seconds=wait)
    assert TOKEN not in (delivery.last_error or "") and "cannot reach Rasa" in delivery.last_error
    trail = store.audit_trail(case.id)
    assert [e.action for e in trail].count("delivery_retrying") == 1
    assert all(TOKEN not in str(e.detail) for e in trail)
    assert store.require(case.id).delivery_status == "awaiting_delivery"
    assert worker(store, rasa.url).run_once() == [resume.delivery_id]
    assert rasa.shown("conv") == [resume.delivery_id]
    assert store.require(case.id).delivery_status == "delivered"


def test_a_lost_answer_is_retried_and_shown_once(store: ConsultationStore, rasa: FakeRasa, clock: FakeClock) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Approved."))
    rasa.hang_after_apply = 1  # Rasa applies it, the answer comes after the hub gave up waiting
    hub = worker(store, rasa.url)
    assert hub.deliver_now(resume.delivery_id) is None
    assert Outbox(store).get(resume.delivery_id).status == "pending"
    clock.advance(seconds=1)
    assert hub.run_once() == [resume.delivery_id]
    assert rasa.shown("conv") == [resume.delivery_id]  # the customer saw it once
    assert len(rasa.requests) == 2


def test_an_unconfirmed_run_is_not_counted_as_delivered(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Approved."))
    rasa.no_action_server = 1  # Rasa ran the intent, but the action server was down: no message
    hub = worker(store, rasa.url)
    assert hub.deliver_now(resume.delivery_id) is None
    assert Outbox(store).get(resume.delivery_id).last_error == NOT_CONFIRMED
    clock.advance(seconds=1)
    assert hub.run_once() == [resume.delivery_id] and rasa.shown("conv") == [resume.delivery_id]


def test_past_the_budget_a_reply_is_an_alert_not_a_silent_answer(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("deny", text="No."))
    down = worker(store, f"http://127.0.0.1:{free_port()}", RetryBudget(max_delay=10, budget=60))
    for _ in range(12):
        down.run_once()
        clock.advance(seconds=10)
    delivery = Outbox(store).get(resume.delivery_id)
    assert delivery.status == "undeliverable" and delivery.attempts == 7  # at t = 0, 10, … 60 s: the budget
    case_now = store.require(case.id)
    assert (case_now.status, case_now.delivery_status) == ("closed", "undeliverable")
    [alert] = [e for e in store.audit_trail(case.id) if e.action == "delivery_undeliverable"]
    assert alert.detail["delivery_id"] == resume.delivery_id and alert.detail["budget_seconds"] == 60
    assert Outbox(store).undeliverable() == [delivery]
    again = Outbox(store).requeue(resume.delivery_id, actor="mara")
    assert (again.status, again.attempts) == ("pending", 0)
    assert worker(store, rasa.url).run_once() == [resume.delivery_id]


def test_replies_reach_a_conversation_in_the_order_they_were_given(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    first = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    clock.advance(seconds=1)
    second = record_reply(store, case.id, "mara", "dashboard", Reply("message", text="Which card?"))
    other = record_reply(store, open_case(store, "other").id, "mara", "dashboard", Reply("take_over"))
    hub = worker(store, rasa.url)
    assert hub.deliver_now(second.delivery_id) is None  # the take-over has not reached the customer yet
    assert Outbox(store).get(second.delivery_id).attempts == 0
    assert hub.run_once() == [first.delivery_id, other.delivery_id]
    assert hub.run_once() == [second.delivery_id]
    assert rasa.shown("conv") == [first.delivery_id, second.delivery_id]


def test_two_hubs_share_the_outbox_without_sending_twice(
    db_url: str, store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    ids = [
        record_reply(store, open_case(store, f"conv-{i}").id, "mara", "dashboard", Reply("take_over")).delivery_id
        for i in range(12)
    ]
    twin = ConsultationStore(db_url, clock=clock)
    claimed: List[List[str]] = [[], []]
    barrier = threading.Barrier(2)

    def claim(i: int, outbox: Outbox) -> None:
        barrier.wait()
        for _ in range(6):
            claimed[i].extend(d.id for d in outbox.claim_due(f"hub-{i}", limit=2))

    try:
        threads = [threading.Thread(target=claim, args=(i, Outbox(s))) for i, s in enumerate((store, twin))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        twin.dispose()
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)  # every delivery leased once, none twice
    assert set(claimed[0]).isdisjoint(claimed[1])


def test_a_dead_hubs_lease_runs_out_and_another_hub_delivers(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    assert [d.id for d in Outbox(store).claim_due("hub-that-dies")] == [resume.delivery_id]
    survivor = worker(store, rasa.url)
    assert survivor.run_once() == []  # leased: not taken while the lease holds
    clock.advance(seconds=61)
    assert survivor.run_once() == [resume.delivery_id]
    assert rasa.shown("conv") == [resume.delivery_id]


def test_the_dead_hubs_late_failure_does_not_undo_a_delivery(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    [stale] = Outbox(store).claim_due("hub-slow")
    clock.advance(seconds=61)
    assert worker(store, rasa.url).run_once() == [resume.delivery_id]
    assert Outbox(store).failed(stale, "timed out") is None
    assert Outbox(store).succeeded(stale) is False
    assert Outbox(store).get(resume.delivery_id).status == "delivered"
    assert [e.action for e in store.audit_trail(case.id)].count("delivered") == 1


def test_a_delivery_names_its_intent_and_entities(store: ConsultationStore) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Sure."))
    delivery = Outbox(store).get(resume.delivery_id)
    assert delivery.intent == EXPERT_REPLY and delivery.entities["delivery_id"] == resume.delivery_id
    assert delivery.as_dict()["status"] == "pending"


def test_a_reply_sent_at_once_is_not_taken_by_a_round_in_between(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    # the hub's API records a reply and sends it at once; its own delivery round, running on another
    # thread, used to claim it in between, and the API answered "could not be reached yet" (202)
    case = open_case(store)
    sender = worker(store, rasa.url, owner="hub-a")
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"), sender="hub-a")
    assert sender.run_once() == []  # the round skips what its own hub is about to send
    assert worker(store, rasa.url, owner="hub-b").run_once() == []  # and so does another hub's
    answer = sender.deliver_now(resume.delivery_id)
    assert answer is not None and confirmed(answer, resume.delivery_id)
    assert rasa.shown("conv") == [resume.delivery_id]


def test_a_reply_leased_to_a_hub_that_died_before_sending_it_goes_out_after_the_lease(
    store: ConsultationStore, rasa: FakeRasa, clock: FakeClock
) -> None:
    case = open_case(store)
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"), sender="hub-a")
    other = worker(store, rasa.url, owner="hub-b")
    assert other.run_once() == []
    clock.advance(seconds=RetryBudget().lease + 1)
    assert other.run_once() == [resume.delivery_id]
    assert rasa.shown("conv") == [resume.delivery_id]
