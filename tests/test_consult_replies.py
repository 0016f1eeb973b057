"""Expert replies: what they change on the consultation and what the customer hears (store on SQLite
and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Iterator, List

import pytest

from backline.consult.outbox import Outbox
from backline.consult.replies import (
    EXPERT_REPLY,
    HAND_BACK,
    HUMAN_MESSAGE,
    HUMAN_TAKEOVER,
    SLA_DELAY,
    DuplicateReply,
    Reply,
    ReplyError,
    allowed_intents,
    customer_update,
    record_reply,
)
from backline.consult.store import Consultation, ConsultationClosed, ConsultationStore
from backline.routing.directory import ExpertDirectory, load_experts
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
    created = store.create(
        conversation_id="conv", mode="consult", queue="billing", reasons=["medium_confidence"], ai_draft=DRAFT
    )
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
    assert update.slots == {
        "handoff_mode": "ai",
        "escalation_reason": None,
        "escalation_detail": None,
        "ai_draft": None,
        "human_agent": None,
        "allowed_intents": None,
        "human_joined": False,
        "case_resolution": {
            "consultation_id": case.id,
            "intent": None,
            "outcome": "approved",
            "text": DRAFT,
            "by": "Mara",
            "team": "billing",
            "at": "2026-11-24T09:12:00+00:00",
        },
    }


def test_internal_notes_never_reach_the_customer(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    reply = Reply(
        "deny",
        text="No refund. // fraud score 0.93",
        customer_text="We cannot refund a used licence.",
        internal_notes=("fraud score 0.93",),
    )
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
    assert update.slots == {"handoff_mode": "human", "human_agent": "Mara Klein", "human_joined": True}

    said = record_reply(store, case.id, "mara", "dashboard", Reply("message", text="Which card did you use?"))
    update = customer_update(store, directory, case.id, said.intent, said.entities["message_id"])
    assert (said.intent, update.text, update.sender_name) == (HUMAN_MESSAGE, "Which card did you use?", "Mara Klein")
    assert update.slots == {"handoff_mode": "human", "human_agent": "Mara Klein", "human_joined": True}
    assert store.require(case.id).is_open


def test_hand_back_sets_the_allowed_intents(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    resume = record_reply(
        store,
        case.id,
        "mara",
        "slack",
        Reply("hand_back", text="Refund done.", allowed_followups=("order_status", "invoices")),
        now=T0 + dt.timedelta(minutes=30),
    )
    update = customer_update(store, directory, case.id, resume.intent)
    assert resume.intent == HAND_BACK
    assert update.text == (
        "Mara has handed the conversation back to me. Refund done. "
        "From here I can help you with order status and tracking, invoices."
    )
    assert update.slots == {
        "handoff_mode": "handed_back",
        "escalation_reason": None,
        "escalation_detail": None,
        "ai_draft": None,
        "human_agent": None,
        "human_joined": False,
        "allowed_intents": ["order_status", "track_shipment", "invoice_copy", "invoice_wrong"],
        "case_resolution": {
            "consultation_id": case.id,
            "intent": None,
            "outcome": "handed_back",
            "text": "Refund done.",
            "by": "Mara",
            "team": "billing",
            "at": "2026-11-24T09:30:00+00:00",
        },
    }
    assert store.require(case.id).resolution == "handed_back"


def test_a_hand_back_without_words_or_limits_resolves_with_an_empty_text(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    resume = record_reply(store, case.id, "mara", "slack", Reply("hand_back"), now=T0 + dt.timedelta(minutes=5))
    update = customer_update(store, directory, case.id, resume.intent)
    assert update.text == "Mara has handed the conversation back to me."
    assert (update.slots["handoff_mode"], update.slots["allowed_intents"]) == ("handed_back", None)
    assert update.slots["case_resolution"] == {
        "consultation_id": case.id,
        "intent": None,
        "outcome": "handed_back",
        "text": "",
        "by": "Mara",
        "team": "billing",
        "at": "2026-11-24T09:05:00+00:00",
    }


BACK_TO_AI = {
    "handoff_mode": "ai",
    "escalation_reason": None,
    "escalation_detail": None,
    "ai_draft": None,
    "human_agent": None,
    "allowed_intents": None,
    "human_joined": False,
}


@pytest.mark.parametrize(
    "reply, text, outcome, body",
    [
        (
            Reply("approve", text="Refund of 780 EUR approved."),
            "Good news: Jonas from our billing team approved it. Refund of 780 EUR approved.",
            "approved",
            "Refund of 780 EUR approved.",
        ),
        (
            Reply("deny"),
            "I checked with Jonas from our billing team. I am sorry, we cannot do that in this case.",
            "denied",
            "I am sorry, we cannot do that in this case.",
        ),
        (
            Reply("deny", text="Used licences cannot be refunded."),
            "I checked with Jonas from our billing team. Used licences cannot be refunded.",
            "denied",
            "Used licences cannot be refunded.",
        ),
        (
            Reply("answer", text="It arrives on Friday."),
            "I checked with Jonas from our billing team. It arrives on Friday.",
            "answered",
            "It arrives on Friday.",
        ),
        (
            Reply(
                "close",
                text="Your refund was sent today.\n// ticket 4411",
                customer_text="Your refund was sent today.",
                internal_notes=("ticket 4411",),
            ),
            "Jonas from our billing team has closed this case: Your refund was sent today.",
            "closed",
            "Your refund was sent today.",
        ),
    ],
)
def test_every_final_decision_sets_back_to_ai_and_the_case_resolution(
    store: ConsultationStore, directory: ExpertDirectory, reply: Reply, text: str, outcome: str, body: str
) -> None:
    created = store.create(
        conversation_id="conv-r",
        mode="handoff",
        queue="billing",
        reasons=["sensitive_topic"],
        brief={"intent": "refund_request"},
        routing={"intent": "refund_request"},
    )
    resume = record_reply(store, created.id, "jonas", "telegram", reply, now=T0 + dt.timedelta(minutes=42))
    update = customer_update(store, directory, created.id, resume.intent, resume.entities["message_id"])
    assert resume.intent == EXPERT_REPLY
    assert update.text == text and update.sender_name is None
    assert update.slots == {
        **BACK_TO_AI,
        "case_resolution": {
            "consultation_id": created.id,
            "intent": "refund_request",
            "outcome": outcome,
            "text": body,
            "by": "Jonas",
            "team": "billing",
            "at": "2026-11-24T09:42:00+00:00",
        },
    }
    assert "ticket" not in update.text


def test_close_in_human_mode_closes_the_case_with_its_resolution(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    record_reply(store, case.id, "mara", "dashboard", Reply("take_over"), now=T0 + dt.timedelta(minutes=1))
    resume = record_reply(
        store,
        case.id,
        "mara",
        "dashboard",
        Reply("close", text="The duplicate charge is refunded."),
        now=T0 + dt.timedelta(minutes=20),
    )

    closed = store.require(case.id)
    assert (closed.status, closed.resolution, closed.mode) == ("closed", "closed", "handoff")
    assert closed.closed_at == T0 + dt.timedelta(minutes=20)
    [event] = [e for e in store.audit_trail(case.id) if e.action == "closed"]
    assert (event.actor, event.detail) == (
        "mara",
        {"resolution": "closed", "previous_status": "replied", "text": "The duplicate charge is refunded."},
    )
    [delivery] = [d for d in Outbox(store).for_consultation(case.id) if d.id == resume.delivery_id]
    assert (delivery.intent, delivery.status) == (EXPERT_REPLY, "pending")
    update = customer_update(store, directory, case.id, resume.intent, resume.entities["message_id"])
    assert update.text == "Mara from our billing team has closed this case: The duplicate charge is refunded."
    assert update.slots["case_resolution"]["outcome"] == "closed"
    with pytest.raises(ConsultationClosed) as refused:
        record_reply(store, case.id, "mara", "dashboard", Reply("message", text="One more thing"))
    assert (refused.value.decided_by, refused.value.resolution) == ("mara", "closed")


def test_the_case_intent_is_the_base_name_of_the_brief_or_routing_intent(
    store: ConsultationStore, directory: ExpertDirectory
) -> None:
    created = store.create(
        conversation_id="conv-i",
        mode="handoff",
        queue="support",
        reasons=["low_confidence"],
        routing={"intent": "faq/returns_policy"},
    )
    resume = record_reply(store, created.id, "felix", "dashboard", Reply("answer", text="30 days."))
    resolution = customer_update(store, directory, created.id, resume.intent).slots["case_resolution"]
    assert (resolution["intent"], resolution["by"], resolution["team"]) == ("faq", "Felix", "customer support")


def test_a_closed_case_refuses_replies(store: ConsultationStore, case: Consultation) -> None:
    record_reply(store, case.id, "mara", "slack", Reply("answer", text="Done."))
    with pytest.raises(ConsultationClosed):
        record_reply(store, case.id, "jonas", "telegram", Reply("answer", text="Also done."))
    assert [m.author for m in store.messages(case.id)] == ["mara"]


@pytest.mark.parametrize(
    "reply, message",
    [
        (Reply("answer"), "needs the text"),
        (Reply("close"), "needs the text"),
        (Reply("close", text="// internal only", customer_text=""), "needs the text"),
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


# --- one transaction: the reply, its effect, its delivery and the webhook key --------------------


def test_a_reply_is_recorded_with_a_pending_delivery_carrying_its_id(
    store: ConsultationStore, case: Consultation
) -> None:
    resume = record_reply(store, case.id, "mara", "slack", Reply("answer", text="Done."))
    [delivery] = Outbox(store).for_consultation(case.id)
    assert (delivery.id, delivery.status, delivery.attempts, delivery.intent) == (
        resume.delivery_id,
        "pending",
        0,
        EXPERT_REPLY,
    )
    assert delivery.entities == {
        "consultation_id": case.id,
        "message_id": resume.entities["message_id"],
        "delivery_id": resume.delivery_id,
    }
    assert resume.entities == dict(delivery.entities)
    assert store.require(case.id).delivery_status == "awaiting_delivery"
    trail = [e.action for e in store.audit_trail(case.id)]
    # the case had an AI draft and the answer replaced it: an override, recorded with the reply
    assert trail[-5:] == ["message", "first_reply", "override", "closed", "delivery_queued"]


def test_a_webhook_key_is_applied_once(store: ConsultationStore, case: Consultation) -> None:
    record_reply(store, case.id, "mara", "slack", Reply("deny", text="No."), dedupe_key="slack:event:Ev1")
    with pytest.raises(DuplicateReply):
        record_reply(store, case.id, "mara", "slack", Reply("deny", text="No."), dedupe_key="slack:event:Ev1")
    assert len(store.messages(case.id)) == 1 and len(Outbox(store).for_consultation(case.id)) == 1


def test_a_reply_that_fails_keeps_no_key_so_the_retry_is_applied(store: ConsultationStore, case: Consultation) -> None:
    with pytest.raises(ReplyError):
        record_reply(store, case.id, "mara", "slack", Reply("answer"), dedupe_key="telegram:update:7")
    resume = record_reply(
        store, case.id, "mara", "slack", Reply("answer", text="Here you go."), dedupe_key="telegram:update:7"
    )
    assert resume.delivery_id is not None
    assert [m.text for m in store.messages(case.id)] == ["Here you go."]


def test_a_failure_after_the_key_rolls_everything_back(
    store: ConsultationStore, case: Consultation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Outbox, "enqueue", broken)
    with pytest.raises(RuntimeError):
        record_reply(store, case.id, "mara", "slack", Reply("approve"), dedupe_key="slack:event:Ev9")
    after = store.require(case.id)
    assert (after.status, after.first_reply_at, store.messages(case.id)) == ("assigned", None, [])
    assert store.claim_webhook_key("slack:event:Ev9") is True  # the key was not kept either


def test_the_second_of_two_final_decisions_is_told_who_decided(store: ConsultationStore, case: Consultation) -> None:
    record_reply(store, case.id, "mara", "dashboard", Reply("approve"))
    with pytest.raises(ConsultationClosed) as refused:
        record_reply(store, case.id, "jonas", "slack", Reply("deny", text="No."))
    assert (refused.value.decided_by, refused.value.resolution) == ("mara", "approved")
    assert str(refused.value) == f"consultation {case.id} was already decided by mara (approved)"


def test_concurrent_final_decisions_from_two_hubs_record_exactly_one(db_url: str, case: Consultation) -> None:
    hubs = [ConsultationStore(db_url) for _ in range(2)]
    outcomes: List[str] = []
    barrier = threading.Barrier(6)

    def decide(i: int) -> None:
        barrier.wait()
        action = ("approve", "deny")[i % 2]
        try:
            record_reply(hubs[i % 2], case.id, ("mara", "jonas")[i % 2], "slack", Reply(action, text="x"))
            outcomes.append(action)
        except ConsultationClosed:
            outcomes.append("refused")

    try:
        threads = [threading.Thread(target=decide, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes).count("refused") == 5
        assert len(Outbox(hubs[0]).for_consultation(case.id)) == 1
        assert len([m for m in hubs[0].messages(case.id) if m.direction == "from_expert"]) == 1
    finally:
        for hub in hubs:
            hub.dispose()


def test_two_hubs_receiving_one_webhook_retry_apply_it_once(db_url: str, case: Consultation) -> None:
    hubs = [ConsultationStore(db_url) for _ in range(2)]
    try:
        record_reply(
            hubs[0], case.id, "mara", "slack", Reply("message", text="Checking."), dedupe_key="slack:event:EvShared"
        )
        with pytest.raises(DuplicateReply):
            record_reply(
                hubs[1], case.id, "mara", "slack", Reply("message", text="Checking."), dedupe_key="slack:event:EvShared"
            )
        assert [m.text for m in hubs[1].messages(case.id)] == ["Checking."]
    finally:
        for hub in hubs:
            hub.dispose()


def test_the_delay_notice_comes_from_its_delivery(
    store: ConsultationStore, directory: ExpertDirectory, case: Consultation
) -> None:
    queued = Outbox(store).enqueue(
        case.id, "conv", SLA_DELAY, {"consultation_id": case.id}, notice="Sorry for the wait: still on it."
    )
    update = customer_update(store, directory, case.id, SLA_DELAY, delivery_id=queued.id)
    assert update.text == "Sorry for the wait: still on it."
