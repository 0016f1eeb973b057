"""Expert replies as structured guidance: decisions, amounts, internal notes, e-mail history, follow-ups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from backline import configuration
from backline.consult.replies import ReplyError, customer_update, record_reply
from backline.consult.store import ConsultationStore
from backline.hub.guidance import (
    ExpertReply,
    followup_allows,
    normalize_followups,
    parse_guidance,
    person_for,
)
from backline.routing.directory import load_experts
from tests.clock import FakeClock
from tests.servers import PROJECT_ROOT

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)


def test_a_leading_keyword_decides_and_amounts_are_parsed() -> None:
    guidance = parse_guidance(None, "approve 250 EUR refund")
    assert guidance.decision == "approve" and guidance.explicit
    assert guidance.amounts == ({"amount": 250.0, "currency": "EUR"},)
    assert guidance.customer_text == "250 EUR refund"


@pytest.mark.parametrize(
    "text, decision, customer_text",
    [
        ("Approved. Refund of €1.200,50 goes out today.", "approve", "Refund of €1.200,50 goes out today."),
        ("deny: the licence was already activated", "deny", "the licence was already activated"),
        ("Reject - outside the 30-day window", "deny", "outside the 30-day window"),
        ("answer: Your invoice is attached.", "answer", "Your invoice is attached."),
        ("need info: which order number?", "need_info", "which order number?"),
        ("Need more info, what is the serial?", "need_info", "what is the serial?"),
        ("take over", "take_over", ""),
        ("Takeover!", "take_over", ""),
        ("hand back", "hand_back", ""),
        ("Thanks, the refund is on its way.", "message", "Thanks, the refund is on its way."),
        ("Answer is yes, 30 days.", "message", "Answer is yes, 30 days."),
        ("close: Your refund was sent today.", "close", "Your refund was sent today."),
        ("Close case: replaced under warranty", "close", "replaced under warranty"),
        ("close this case: done", "close", "done"),
        ("Closing. Your new licence key is in your inbox.", "close", "Your new licence key is in your inbox."),
        ("closing this case - refund sent", "close", "refund sent"),
        ("closing", "close", ""),
        ("Closing the account is not possible online.", "message", "Closing the account is not possible online."),
        ("Close to the limit, but approved.", "message", "Close to the limit, but approved."),
        ("close the window and try again", "message", "close the window and try again"),
    ],
)
def test_keywords_of_free_text(text: str, decision: str, customer_text: str) -> None:
    guidance = parse_guidance(None, text)
    assert (guidance.decision, guidance.customer_text) == (decision, customer_text)
    assert guidance.explicit == (decision != "message")


def test_money_in_several_formats_and_currencies() -> None:
    guidance = parse_guidance("approve", "Refund $99.99 now and CHF 80 next month")
    assert guidance.amounts == ({"amount": 99.99, "currency": "USD"}, {"amount": 80.0, "currency": "CHF"})


def test_a_button_action_wins_and_keeps_the_text_whole() -> None:
    guidance = parse_guidance("answer", "Approved refunds take 5 days, see https://kestrel.example/refunds")
    assert guidance.decision == "answer"
    assert guidance.customer_text == "Approved refunds take 5 days, see https://kestrel.example/refunds"
    assert guidance.internal_notes == ()


@pytest.mark.parametrize(
    "text",
    [
        "Refund approved. // fraud score 0.93, watch this account",
        "// fraud score 0.93, watch this account\nRefund approved.",
        "Refund approved.\nnote: fraud score 0.93, watch this account",
        "Refund approved.\nInternal: fraud score 0.93, watch this account",
        "  NOTE:fraud score 0.93, watch this account\nRefund approved.",
        "approve Refund approved.\n\n// fraud score 0.93, watch this account",
    ],
)
def test_internal_notes_never_reach_the_customer_text(text: str) -> None:
    guidance = parse_guidance(None, text)
    assert guidance.customer_text.endswith("Refund approved.")
    assert "fraud" not in guidance.customer_text and "//" not in guidance.customer_text
    assert guidance.internal_notes == ("fraud score 0.93, watch this account",)


def test_quoted_email_history_is_dropped() -> None:
    body = (
        "Deny. We cannot refund a licence that was activated.\n"
        "internal: activated 3 times\n"
        "\n"
        "On Mon, 23 Nov 2026 at 10:02, Backline <backline@kestrel.example>\n"
        "wrote:\n"
        "> [Backline] [HIGH] Consultation: refund_request (c_3f9a0c2b71de)\n"
        "> Customer says: I want my 780 EUR back\n"
    )
    guidance = parse_guidance(None, body)
    assert guidance.decision == "deny"
    assert guidance.customer_text == "We cannot refund a licence that was activated."
    assert guidance.internal_notes == ("activated 3 times",)
    assert guidance.amounts == ()  # the 780 EUR was in the quoted brief only


@pytest.mark.parametrize(
    "history",
    [
        "> On Mon, someone wrote:\n> old text 500 EUR",
        "-----Original Message-----\nFrom: Backline\nold text 500 EUR",
        "-- \nMara Klein, Billing, +49 30 500 EUR",
        "On 23.11.2026 10:02, Backline wrote:\nold text 500 EUR",
    ],
)
def test_each_kind_of_history_is_cut(history: str) -> None:
    guidance = parse_guidance("answer", f"Interleaved answer here.\n> quoted line\n{history}")
    assert guidance.customer_text == "Interleaved answer here."
    assert guidance.amounts == ()


def test_hand_back_with_allowed_followups() -> None:
    guidance = parse_guidance(None, "hand back: info only\nThanks for your patience!\n// VIP, be generous")
    assert guidance.decision == "hand_back"
    assert guidance.allowed_followups == ("informational",)
    assert guidance.customer_text == "Thanks for your patience!"
    assert guidance.internal_notes == ("VIP, be generous",)


def test_hand_back_words_that_are_not_followups_are_for_the_customer() -> None:
    guidance = parse_guidance(None, "Hand back. All sorted, have a nice day!")
    assert guidance.decision == "hand_back" and guidance.allowed_followups == ()
    assert guidance.customer_text == "All sorted, have a nice day!"


def test_an_allowed_line_lists_followups_and_stays_out_of_the_customer_text() -> None:
    guidance = parse_guidance(
        "hand_back", "All sorted.\nallowed: informational, order status & billing info", allowed_followups=["returns"]
    )
    assert guidance.allowed_followups == ("returns", "informational", "order_status", "invoices")
    assert guidance.customer_text == "All sorted."


def test_unknown_followups_are_refused_with_the_vocabulary() -> None:
    with pytest.raises(ReplyError, match="refunds.*informational"):
        parse_guidance(None, "hand back\nallowed: refunds")
    with pytest.raises(ReplyError):
        normalize_followups(["informational", "everything"])
    with pytest.raises(ReplyError, match="unknown action"):
        parse_guidance("refund", "")


def test_followup_vocabulary_maps_to_domain_intents() -> None:
    intents = set(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())["intents"])
    rules = configuration.hand_back()  # escalation.yml's hand_back section
    assert set(rules.always_allowed) <= intents
    assert {i for followup in rules.followups.values() for i in followup.intents} <= intents
    assert set(rules.words.values()) == set(rules.followups)
    assert rules.words["tracking"] == "order_status" and rules.words["plan changes"] == "plan_changes"
    assert normalize_followups(["Info only", "order-status", "BILLING", "plan changes questions"]) == (
        "informational",
        "order_status",
        "invoices",
        "plan_changes",
    )


@pytest.mark.parametrize(
    "allowed, intent, expected",
    [
        (["order status"], "track_shipment", True),
        (["order status"], "refund_request", False),
        (["order status"], "greet", True),
        (["informational"], "pricing", True),
        (["informational"], "cancel_subscription", False),
        (["invoices", "returns"], "damaged_item", True),
        ([], "refund_request", True),
    ],
)
def test_followup_allows(allowed: list, intent: str, expected: bool) -> None:
    assert followup_allows(allowed, intent) is expected


def test_free_text_is_an_answer_in_consult_mode_and_a_message_in_human_mode() -> None:
    reply = ExpertReply.from_text("c_1", "mara", "telegram", "Sure, 80 CHF is fine. // checked")
    assert (reply.action, reply.free_text) == ("message", True)
    consult, handoff = reply.to_reply("consult"), reply.to_reply("handoff")
    assert (consult.action, handoff.action) == ("answer", "message")
    assert consult.customer_text == "Sure, 80 CHF is fine." and consult.internal_notes == ("checked",)
    assert consult.amounts == ({"amount": 80.0, "currency": "CHF"},)


def test_a_keyword_reply_keeps_its_action_in_every_mode() -> None:
    reply = ExpertReply.from_text("c_1", "mara", "email", "take over\n> quoted brief")
    assert reply.action == "take_over"
    assert reply.to_reply("consult").action == reply.to_reply("handoff").action == "take_over"
    assert reply.to_reply("consult").text == "take over"


def test_expert_reply_checks_source_and_action() -> None:
    with pytest.raises(ValueError, match="source"):
        ExpertReply("c_1", "mara", "fax", "approve")
    with pytest.raises(ValueError, match="action"):
        ExpertReply("c_1", "mara", "slack", "refund")


def test_person_for_finds_people_by_channel_address() -> None:
    directory = load_experts(PROJECT_ROOT / "experts.yml")
    mara = next(p for p in directory.people.values() if p.channel("slack"))
    telegram = next(p for p in directory.people.values() if p.channel("telegram"))
    assert person_for(directory, "slack", mara.channel("slack").address) == mara
    assert person_for(directory, "telegram", int(telegram.channel("telegram").address)) == telegram
    assert person_for(directory, "slack", "U00NOBODY0") is None
    assert person_for(directory, "telegram", mara.channel("slack").address) is None


def test_recorded_guidance_keeps_notes_internal_end_to_end(tmp_path: Path) -> None:
    directory = load_experts(PROJECT_ROOT / "experts.yml")
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}", clock=FakeClock(T0)) as store:
        case = store.create(conversation_id="conv", mode="consult", queue="billing", ai_draft="Refund of 780 EUR.")
        store.assign(case.id, "mara", "slack")
        reply = ExpertReply.from_text(
            case.id, "mara", "slack", "deny We cannot refund an activated licence.\n// fraud score 0.93"
        )
        resume = record_reply(store, case.id, reply.actor, reply.source, reply.to_reply("consult"))
        update = customer_update(store, directory, case.id, resume.intent, resume.entities["message_id"])
        stored = store.messages(case.id)[-1]
    assert update.text == "I checked with Mara from our billing team. We cannot refund an activated licence."
    assert stored.meta["internal_notes"] == ["fraud score 0.93"] and stored.meta["action"] == "deny"


def test_an_emailed_close_keeps_the_resolution_and_drops_the_quoted_brief(tmp_path: Path) -> None:
    directory = load_experts(PROJECT_ROOT / "experts.yml")
    body = (
        "Closing:\nThe duplicate charge of 49 EUR was refunded today.\n// ticket 4411\n\n"
        "On Tue, 24 Nov 2026 at 10:02, Backline <backline@kestrel.example> wrote:\n"
        "> Customer says: I was charged twice\n"
    )
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}", clock=FakeClock(T0)) as store:
        case = store.create(conversation_id="conv", mode="handoff", queue="billing", brief={"intent": "invoice_wrong"})
        reply = ExpertReply.from_text(case.id, "mara", "email", body)
        assert (reply.action, reply.to_reply("handoff").action) == ("close", "close")
        resume = record_reply(store, case.id, reply.actor, reply.source, reply.to_reply("handoff"))
        update = customer_update(store, directory, case.id, resume.intent, resume.entities["message_id"])
        closed = store.require(case.id)
    assert (closed.status, closed.resolution) == ("closed", "closed")
    assert update.text == (
        "Mara from our billing team has closed this case: The duplicate charge of 49 EUR was refunded today."
    )
    assert update.slots["case_resolution"]["text"] == "The duplicate charge of 49 EUR was refunded today."
    assert update.slots["case_resolution"]["intent"] == "invoice_wrong"


def test_a_close_without_a_resolution_is_refused(tmp_path: Path) -> None:
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}", clock=FakeClock(T0)) as store:
        case = store.create(conversation_id="conv", mode="handoff", queue="billing")
        reply = ExpertReply.from_text(case.id, "mara", "telegram", "close:   // nothing for the customer")
        assert reply.action == "close" and reply.to_reply("handoff").customer_text == ""
        with pytest.raises(ReplyError, match="'close' needs the text for the customer"):
            record_reply(store, case.id, reply.actor, reply.source, reply.to_reply("handoff"))
        assert store.require(case.id).status == "open" and store.messages(case.id) == []
