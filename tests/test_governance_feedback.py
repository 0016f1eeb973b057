"""Verdicts and override reasons as experts give them, without a hub: the ``verdict:`` / ``reason:`` reply
keywords in their phrasings, and the feedback question each channel asks after a decision (Slack buttons, a
Telegram inline keyboard within 64 bytes, an e-mail with the keywords). The clicks coming back through the
hub: tests/test_governance_channels.py."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Optional

import pytest

from backline.consult.replies import ReplyError
from backline.experts.base import Notification
from backline.experts.email import EmailChannel
from backline.experts.slack import feedback_blocks
from backline.experts.telegram import feedback_markup, parse_feedback_data
from backline.hub.guidance import ExpertReply, parse_guidance
from backline.routing.directory import load_experts
from tests.expert_apis import SmtpServer
from tests.servers import PROJECT_ROOT
from tests.test_governance_channels import REASON_IDS, VERDICT_IDS

# --- the reply keywords -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, verdict",
    [
        ("verdict: not needed", "not_needed"),
        ("Verdict: Not needed.", "not_needed"),
        ("verdict: not_needed", "not_needed"),
        ("escalation: needed", "needed"),
        ("Escalation: escalation needed", "needed"),
        ("verdict = unnecessary", "not_needed"),
        ("verdict: too late", "too_late"),
        ("verdict: too-late!", "too_late"),
        ("verdict: should have come earlier", "too_late"),
        ("VERDICT: Should have come earlier", "too_late"),
    ],
)
def test_verdict_lines_in_their_phrasings(line: str, verdict: str) -> None:
    guidance = parse_guidance(None, f"close: Your refund was sent today.\n{line}")
    assert (guidance.decision, guidance.customer_text, guidance.verdict) == (
        "close",
        "Your refund was sent today.",
        verdict,
    )
    assert not guidance.feedback_only


@pytest.mark.parametrize(
    "line, reason, note, intent",
    [
        ("reason: tone", "tone", None, None),
        ("Reason: Wrong facts", "wrong_facts", None, None),
        ("reason: wrong-facts", "wrong_facts", None, None),
        ("override: policy", "policy", None, None),
        ("override reason: tone - too blunt", "tone", "too blunt", None),
        ("reason: wrong intent -> order_status", "wrong_intent", None, "order_status"),
        ("reason: wrong_intent → order_status", "wrong_intent", None, "order_status"),
        ("reason: wrong intent (order_status)", "wrong_intent", None, "order_status"),
        ("reason: wrong intent: meant order_status", "wrong_intent", None, "order_status"),
        (
            "reason: wrong intent, the customer asked about delivery",
            "wrong_intent",
            "the customer asked about delivery",
            None,
        ),
        ("reason: other - the customer wanted a call back", "other", "the customer wanted a call back", None),
        ("reason: Other: promised by phone", "other", "promised by phone", None),
    ],
)
def test_reason_lines_in_their_phrasings(line: str, reason: str, note: Optional[str], intent: Optional[str]) -> None:
    guidance = parse_guidance(None, f"deny: we cannot refund an activated licence\n{line}")
    assert (guidance.decision, guidance.customer_text) == ("deny", "we cannot refund an activated licence")
    assert (guidance.override_reason, guidance.override_note, guidance.corrected_intent) == (reason, note, intent)


@pytest.mark.parametrize(
    "text, error",
    [
        ("verdict: maybe", "verdict must be one of needed, not_needed, too_late"),
        ("escalation: perhaps later", "verdict must be one of needed, not_needed, too_late"),
        ("reason: too blunt", "override reason must be one of wrong_intent, wrong_facts, policy, tone, other"),
        ("override: typo", "override reason must be one of wrong_intent, wrong_facts, policy, tone, other"),
        ("reason: other", "the reason 'other' needs its text"),
    ],
)
def test_bad_verdicts_and_reasons_are_refused_naming_the_choices(text: str, error: str) -> None:
    with pytest.raises(ReplyError, match=error.replace("(", r"\(")):
        parse_guidance(None, f"deny\n{text}")
    with pytest.raises(ReplyError, match=error.replace("(", r"\(")):
        ExpertReply.from_text("c-1", "mara", "slack", text)


def test_a_sentence_starting_with_reason_stays_for_the_customer() -> None:
    text = "deny\nReason: the refund window of 30 days has passed."
    guidance = parse_guidance(None, text)
    assert guidance.customer_text == "Reason: the refund window of 30 days has passed."
    assert (guidance.override_reason, guidance.verdict) == (None, None)


def test_only_feedback_lines_are_feedback_and_reach_the_reply() -> None:
    only = parse_guidance(None, "verdict: too late\nreason: tone // far too blunt")
    assert only.feedback_only and only.customer_text == "" and only.internal_notes == ("far too blunt",)
    assert (only.verdict, only.override_reason) == ("too_late", "tone")
    reply = ExpertReply.from_text("c-1", "mara", "email", "deny\nverdict: not needed\nreason: policy").to_reply(
        "consult"
    )
    assert (reply.action, reply.verdict, reply.override_reason, reply.for_customer) == (
        "deny",
        "not_needed",
        "policy",
        "",
    )
    fields = ExpertReply("c-1", "mara", "api", "deny", verdict="needed", override_reason="tone").to_reply("consult")
    assert (fields.verdict, fields.override_reason) == ("needed", "tone")


# --- the question each channel asks ---------------------------------------------------------------


def test_slack_feedback_blocks_carry_the_verdict_and_reason_buttons() -> None:
    blocks = feedback_blocks("c_42", verdict=True, reasons=True)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [[e["action_id"] for e in a["elements"]] for a in actions] == [VERDICT_IDS, REASON_IDS]
    assert {e["value"] for a in actions for e in a["elements"]} == {"c_42"}
    assert [e["text"]["text"] for e in actions[0]["elements"]] == [
        "Escalation needed",
        "Not needed",
        "Should have come earlier",
    ]
    only_reasons = feedback_blocks("c_42", verdict=False, reasons=True)
    assert [[e["action_id"] for e in b["elements"]] for b in only_reasons if b["type"] == "actions"] == [REASON_IDS]


def test_telegram_feedback_keyboard_fits_64_bytes_and_parses_back() -> None:
    long_id = "c_" + "f" * 40
    markup = feedback_markup(long_id, verdict=True, reasons=True)
    data = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
    assert data[:3] == [f"v:needed:{long_id}", f"v:not_needed:{long_id}", f"v:too_late:{long_id}"]
    assert data[3:] == [f"r:{k}:{long_id}" for k in ("wrong_intent", "wrong_facts", "policy", "tone", "other")]
    assert max(len(d.encode()) for d in data) <= 64
    assert parse_feedback_data(f"r:tone:{long_id}") == ("reason", "tone", long_id)
    assert parse_feedback_data(f"approve:{long_id}") is None


def test_email_asks_for_the_keywords_in_the_consultations_thread(tmp_path: Path) -> None:
    smtp = SmtpServer().start()
    try:
        channel = EmailChannel("127.0.0.1", smtp.port, sender="Backline <backline@kestrel.example>")
        directory = load_experts(PROJECT_ROOT / "experts.yml")
        asked = channel.ask_feedback(
            directory.person("anna"), "c_7", verdict=True, reasons=True, thread_id="<consultation.c_7@kestrel.example>"
        )
        message = email.message_from_bytes(smtp.handler.messages[0].content, policy=email.policy.default)
    finally:
        smtp.stop()
    assert (asked.channel, asked.destination) == ("email", "anna.schulz@kestrel.example")
    assert message["In-Reply-To"] == "<consultation.c_7@kestrel.example>"
    assert message["Reply-To"] == "Backline <backline+c_7@kestrel.example>"  # a reply finds the case
    body = message.get_content()
    assert "verdict: needed | verdict: not needed | verdict: too late" in body
    assert "reason: wrong intent -> <the intent meant> | reason: wrong facts | reason: policy" in body
    assert "reason: other - <what was wrong>" in body


def test_notification_brief_is_unchanged_by_the_feedback_buttons() -> None:
    """The consultation's own buttons stay the five decisions; feedback buttons come only after."""
    from backline.experts.slack import build_blocks

    directory = load_experts(PROJECT_ROOT / "experts.yml")
    notification = Notification(
        "c_1", "conv", directory.person("mara"), "consult", "high", {"intent": "refund_request"}
    )
    actions = next(b for b in build_blocks(notification) if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "consult_approve",
        "consult_deny",
        "consult_answer",
        "consult_take_over",
        "consult_close",
    ]
