"""Expert replies: what they change on the consultation and what the customer hears (store on SQLite
and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import pytest

from backline.consult.replies import (
    EXPERT_REPLY,
    HAND_BACK,
    HUMAN_MESSAGE,
    HUMAN_TAKEOVER,
    SLA_DELAY,
    Reply,
    ReplyError,
    allowed_intents,
    customer_update,
    record_reply,
)
from backline.consult.store import Consultation, ConsultationClosed, ConsultationStore
from backline.routing.experts import ExpertDirectory, load_experts
from tests.clock import FakeClock
from tests.servers import PROJECT_ROOT

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)
DRAFT = "Your refund of 780 EUR is on its way."


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


@pytest.fixture
def store(db_url: str) -> Iterator[ConsultationStore]:
    with ConsultationStore(db_url, clock=FakeClock(T0)) as opened:
        yield opened


@pytest.fixture
def case(store: ConsultationStore) -> Consultation:
    created = store.create(conversation_id="conv", mode="consult", queue="billing", reasons=["medium_confidence"],
                           ai_draft=DRAFT)
    return store.assign(created.id, "mara", "slack")


def test_an_approval_closes_the_case_and_the_customer_hears_the_draft(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    resume = record_reply(store, case.id, "mara", "slack", Reply("approve"), now=T0 + dt.timedelta(minutes=12))

    assert (resume.conversation_id, resume.intent) == ("conv", EXPERT_REPLY)
    closed = store.require(case.id)
    assert (closed.status, closed.resolution) == ("closed", "approved")
    assert (closed.first_reply_at - closed.created_at) == dt.timedelta(minutes=12)
    update = customer_update(store, directory, case.id, resume.intent, resume.entities["message_id"])
    assert update.text == f"Good news: Mara from our billing team approved it. {DRAFT}"
    assert update.slots["handoff_mode"] == "ai" and update.slots["ai_draft"] is None


def test_internal_notes_never_reach_the_customer(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    reply = Reply("deny", text="No refund. // fraud score 0.93", customer_text="We cannot refund a used licence.",
                  internal_notes=("fraud score 0.93",))
    resume = record_reply(store, case.id, "mara", "slack", reply)
    update = customer_update(store, directory, case.id, resume.intent)
    assert update.text == "I checked with Mara from our billing team. We cannot refund a used licence."
    assert "fraud" not in update.text
    assert store.messages(case.id)[-1].meta["internal_notes"] == ["fraud score 0.93"]


def test_take_over_then_messages_as_the_named_person(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    joined = record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    assert joined.intent == HUMAN_TAKEOVER and store.require(case.id).mode == "handoff"
    update = customer_update(store, directory, case.id, joined.intent)
    assert update.text == "Mara Klein from our billing team has joined the conversation."
    assert update.slots == {"handoff_mode": "human", "human_agent": "Mara Klein"}

    said = record_reply(store, case.id, "mara", "dashboard", Reply("message", text="Which card did you use?"))
    update = customer_update(store, directory, case.id, said.intent, said.entities["message_id"])
    assert (said.intent, update.text, update.sender_name) == (HUMAN_MESSAGE, "Which card did you use?", "Mara Klein")
    assert store.require(case.id).is_open


def test_hand_back_sets_the_allowed_intents(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    resume = record_reply(store, case.id, "mara", "slack",
                          Reply("hand_back", text="Refund done.", allowed_followups=("order_status", "invoices")))
    update = customer_update(store, directory, case.id, resume.intent)
    assert resume.intent == HAND_BACK
    assert update.text == ("Mara has handed the conversation back to me. Refund done. "
                           "From here I can help you with order status and tracking, invoices.")
    assert update.slots["handoff_mode"] == "handed_back"
    assert update.slots["allowed_intents"] == ["order_status", "track_shipment", "invoice_copy", "invoice_wrong"]
    assert store.require(case.id).resolution == "handed_back"


def test_a_closed_case_refuses_replies(store: ConsultationStore, case: Consultation) -> None:
    record_reply(store, case.id, "mara", "slack", Reply("answer", text="Done."))
    with pytest.raises(ConsultationClosed):
        record_reply(store, case.id, "jonas", "telegram", Reply("answer", text="Also done."))
    assert [m.author for m in store.messages(case.id)] == ["mara"]


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply("answer"), "needs the text"),
        (Reply("message", text="  "), "needs the text"),
        (Reply("teleport", text="x"), "unknown action"),
        (Reply("hand_back", allowed_followups=("everything",)), "unknown follow-up"),
    ],
)
def test_bad_replies_change_nothing(store: ConsultationStore, case: Consultation, reply: Reply, message: str) -> None:
    with pytest.raises(ReplyError, match=message):
        record_reply(store, case.id, "mara", "slack", reply)
    assert store.messages(case.id) == [] and store.require(case.id).first_reply_at is None


def test_approving_without_a_draft_needs_a_text(store: ConsultationStore) -> None:
    bare = store.create(conversation_id="c2", mode="handoff", queue="support")
    with pytest.raises(ReplyError, match="no AI draft"):
        record_reply(store, bare.id, "felix", "dashboard", Reply("approve"))


def test_the_delay_notice_is_the_one_the_ladder_recorded(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    with pytest.raises(ReplyError):
        customer_update(store, directory, case.id, SLA_DELAY)
    store.audit(case.id, "sla", "customer_delay_told", {"text": "Sorry, this is taking longer than usual."})
    assert customer_update(store, directory, case.id, SLA_DELAY).text == "Sorry, this is taking longer than usual."


def test_follow_up_types_map_to_intents() -> None:
    assert allowed_intents(["order_status", "informational"])[:2] == ["order_status", "track_shipment"]
    with pytest.raises(ReplyError):
        allowed_intents(["nope"])
