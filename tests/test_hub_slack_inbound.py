"""Slack → hub: signed requests only, our buttons and thread replies become expert replies, retries and
double clicks count once; and the de-duplication stores behind it (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from backline.experts.base import Notification
from backline.experts.slack import build_blocks, feedback_blocks
from backline.hub.dedupe import MemoryDedupe, SqlDedupe
from backline.hub.slack_inbound import ANSWER_PROMPT, CLOSE_PROMPT, SlackInbound
from backline.routing.directory import ExpertDirectory, load_experts
from tests.clock import FakeClock
from tests.servers import PROJECT_ROOT

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_764_000_000
CONSULTATION = "c_3f9a0c2b71de"
DM = "D07MARA0001"
PARENT_TS = "1764000000.000100"
BOT_USER = "U07BACKLINE"
MARA = "U07KESTR02"
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> Dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


@pytest.fixture
def lookups() -> List[Tuple[str, str]]:
    return []


@pytest.fixture
def slack(directory: ExpertDirectory, lookups: List[Tuple[str, str]]) -> SlackInbound:
    def thread_lookup(channel: str, thread_ts: str) -> Optional[str]:
        lookups.append((channel, thread_ts))
        return CONSULTATION if (channel, thread_ts) == (DM, PARENT_TS) else None

    return SlackInbound(SECRET, directory, MemoryDedupe(), thread_lookup, bot_user_id=BOT_USER, clock=lambda: NOW)


def button(directory: ExpertDirectory, action_id: str) -> Dict[str, Any]:
    """The button element exactly as backline.experts.slack sends it."""
    notification = Notification(
        CONSULTATION,
        "conv-1",
        directory.person("mara"),
        "consult",
        "high",
        {"intent": "refund_request", "amount": {"value": 780, "currency": "EUR"}},
    )
    actions = next(b for b in build_blocks(notification) if b["type"] == "actions")
    return next(e for e in actions["elements"] if e["action_id"] == action_id)


def click_payload(
    directory: ExpertDirectory, action_id: str, user: str = MARA, action_ts: str = "1764000030.123456"
) -> Dict[str, Any]:
    """A block_actions payload as Slack documents it, for a click on one of our buttons in the DM."""
    element = button(directory, action_id)
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "mara.klein", "name": "mara.klein", "team_id": "T07KESTREL"},
        "api_app_id": "A07BACKLINE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": PARENT_TS, "channel_id": DM, "is_ephemeral": False},
        "trigger_id": "1764000030.7000000001.1b2c3d4e5f",
        "team": {"id": "T07KESTREL", "domain": "kestrel"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": DM, "name": "directmessage"},
        "message": {
            "type": "message",
            "user": BOT_USER,
            "bot_id": "B07BACKLINE",
            "text": "Consultation",
            "ts": PARENT_TS,
            "team": "T07KESTREL",
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T07KESTREL/7000000001/abcDEF123",
        "actions": [{**element, "block_id": "consult_actions", "action_ts": action_ts}],
    }


def form(payload: Dict[str, Any]) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def thread_event(text: str, user: str = MARA, event_id: str = "Ev07ABCDEF01", **changes: Any) -> Dict[str, Any]:
    """An event_callback for a message event in the thread of our DM, as the Events API sends it."""
    event = {
        "client_msg_id": "0f4b6b2e-6c5e-4a54-9d0e-2b1f5b6c7d8e",
        "type": "message",
        "text": text,
        "user": user,
        "ts": "1764000100.000200",
        "team": "T07KESTREL",
        "thread_ts": PARENT_TS,
        "parent_user_id": BOT_USER,
        "channel": DM,
        "event_ts": "1764000100.000200",
        "channel_type": "im",
    }
    event.update(changes)
    return {
        "token": "legacy-verification-token",
        "team_id": "T07KESTREL",
        "api_app_id": "A07BACKLINE",
        "event": {k: v for k, v in event.items() if v is not None},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1764000100,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T07KESTREL",
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def events(slack: SlackInbound, payload: Dict[str, Any], **headers: str):
    body = json.dumps(payload).encode()
    return slack.events(body, {**sign(body, NOW), "Content-Type": "application/json", **headers})


# --- signatures ---------------------------------------------------------------------------------


def test_a_signed_click_on_approve_is_an_expert_reply(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_approve"))
    result = slack.interactivity(body, sign(body, NOW - 30))
    assert (result.status, result.body, result.ephemeral) == (200, None, None)
    reply = result.reply
    assert (reply.consultation_id, reply.actor, reply.source, reply.action) == (
        CONSULTATION,
        "mara",
        "slack",
        "approve",
    )
    assert reply.dedupe_key == f"slack:action:{MARA}:1764000030.123456"
    assert reply.raw["channel"] == DM and reply.raw["thread_ts"] == reply.raw["message_ts"] == PARENT_TS
    assert reply.raw["response_url"].startswith("https://hooks.slack.com/actions/")


@pytest.mark.parametrize("action_id, action", [("consult_deny", "deny"), ("consult_take_over", "take_over")])
def test_every_decision_button_maps_to_its_action(
    slack: SlackInbound, directory: ExpertDirectory, action_id: str, action: str
) -> None:
    body = form(click_payload(directory, action_id))
    assert slack.interactivity(body, sign(body, NOW)).reply.action == action


def test_forged_signatures_are_refused(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_approve"))
    wrong_secret = slack.interactivity(body, sign(body, NOW, secret="not-the-signing-secret"))
    tampered = form(click_payload(directory, "consult_approve", user="U07KESTR01"))
    other_body = slack.interactivity(tampered, sign(body, NOW))
    for result in (wrong_secret, other_body):
        assert (result.status, result.reply, result.reason) == (401, None, "bad_signature")


@pytest.mark.parametrize("age", [-301, 301, 3600])
def test_stale_or_future_timestamps_are_refused(slack: SlackInbound, directory: ExpertDirectory, age: int) -> None:
    body = form(click_payload(directory, "consult_approve"))
    result = slack.interactivity(body, sign(body, NOW - age))
    assert (result.status, result.reply, result.reason) == (401, None, "stale_timestamp")


def test_missing_or_malformed_headers_are_refused(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_approve"))
    headers = sign(body, NOW)
    no_signature = {k: v for k, v in headers.items() if k != "X-Slack-Signature"}
    no_timestamp = {k: v for k, v in headers.items() if k != "X-Slack-Request-Timestamp"}
    assert slack.interactivity(body, no_signature).reason == "missing_signature"
    assert slack.interactivity(body, no_timestamp).reason == "missing_signature"
    assert slack.interactivity(body, {**headers, "X-Slack-Request-Timestamp": "yesterday"}).reason == "bad_timestamp"
    assert slack.events(b"{}", {}).status == 401


def test_header_names_are_case_insensitive(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_approve"))
    lowered = {k.lower(): v for k, v in sign(body, NOW).items()}
    assert slack.interactivity(body, lowered).reply is not None


# --- interactivity --------------------------------------------------------------------------------


def test_a_double_click_carries_one_delivery_key(slack: SlackInbound, directory: ExpertDirectory) -> None:
    # The key is recorded with the reply (one transaction, see test_consult_replies), not here:
    # a click whose reply failed to record must be applied when it comes again.
    body = form(click_payload(directory, "consult_deny"))
    first, second = (slack.interactivity(body, sign(body, NOW)) for _ in range(2))
    assert first.reply.dedupe_key == second.reply.dedupe_key == f"slack:action:{MARA}:1764000030.123456"
    later = form(click_payload(directory, "consult_deny", action_ts="1764000090.000001"))
    assert slack.interactivity(later, sign(later, NOW)).reply.dedupe_key == f"slack:action:{MARA}:1764000090.000001"


def test_an_unknown_slack_user_is_told_and_nothing_is_recorded(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_approve", user="U09STRANGER"))
    result = slack.interactivity(body, sign(body, NOW))
    assert (result.status, result.reply, result.reason) == (200, None, "unknown_user")
    assert result.ephemeral.response_url.startswith("https://hooks.slack.com/actions/")
    payload = result.ephemeral.payload()
    assert payload["response_type"] == "ephemeral" and payload["replace_original"] is False
    assert "U09STRANGER" in payload["text"] and "experts.yml" in payload["text"]


def test_the_answer_button_asks_for_the_answer_in_the_thread(slack: SlackInbound, directory: ExpertDirectory) -> None:
    body = form(click_payload(directory, "consult_answer"))
    result = slack.interactivity(body, sign(body, NOW))
    assert result.reply is None and result.ephemeral.payload()["text"] == ANSWER_PROMPT


def test_the_close_button_asks_for_the_resolution_in_the_thread(
    slack: SlackInbound, directory: ExpertDirectory
) -> None:
    body = form(click_payload(directory, "consult_close"))
    result = slack.interactivity(body, sign(body, NOW))
    assert (result.status, result.reply, result.reason) == (200, None, "close_prompt")
    assert result.ephemeral.payload()["text"] == CLOSE_PROMPT
    assert CLOSE_PROMPT.startswith("To close the case, reply in this message's thread with close:")


def test_a_close_in_the_thread_closes_with_the_resolution(slack: SlackInbound) -> None:
    reply = events(slack, thread_event("close: Your refund of 49 EUR was sent today. // ticket 4411")).reply
    assert (reply.consultation_id, reply.actor, reply.action, reply.free_text) == (CONSULTATION, "mara", "close", True)
    recorded = reply.to_reply("handoff")
    assert (recorded.action, recorded.customer_text, recorded.internal_notes) == (
        "close",
        "Your refund of 49 EUR was sent today.",
        ("ticket 4411",),
    )


def test_other_interactions_are_acknowledged_and_ignored(slack: SlackInbound, directory: ExpertDirectory) -> None:
    foreign = click_payload(directory, "consult_approve")
    foreign["actions"][0]["action_id"] = "someone_elses_button"
    view = {"type": "view_submission", "user": {"id": MARA}, "view": {"id": "V07"}}
    for payload in (foreign, view):
        body = form(payload)
        result = slack.interactivity(body, sign(body, NOW))
        assert (result.status, result.reply) == (200, None) and result.reason.startswith("ignored")
    garbage = b"payload=%7Bnot-json"
    assert slack.interactivity(garbage, sign(garbage, NOW)).status == 400


# --- Events API -----------------------------------------------------------------------------------


def test_the_url_verification_challenge_is_answered_when_signed(slack: SlackInbound) -> None:
    payload = {
        "token": "legacy",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    assert events(slack, payload).body == {"challenge": payload["challenge"]}
    body = json.dumps(payload).encode()
    assert slack.events(body, {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=00"}).status == 401


def test_a_thread_reply_becomes_a_reply_with_its_keyword_and_notes(
    slack: SlackInbound, lookups: List[Tuple[str, str]]
) -> None:
    result = events(slack, thread_event("approve 250 EUR refund &amp; a voucher // VIP, keep happy"))
    assert lookups == [(DM, PARENT_TS)]
    reply = result.reply
    assert (reply.consultation_id, reply.actor, reply.action, reply.free_text) == (
        CONSULTATION,
        "mara",
        "approve",
        True,
    )
    assert reply.raw["thread_ts"] == PARENT_TS and reply.raw["ts"] == "1764000100.000200"
    recorded = reply.to_reply("consult")
    assert recorded.customer_text == "250 EUR refund & a voucher"
    assert recorded.internal_notes == ("VIP, keep happy",)
    assert recorded.amounts == ({"amount": 250.0, "currency": "EUR"},)


def test_slack_escaping_is_undone(slack: SlackInbound) -> None:
    reply = events(slack, thread_event("answer: Use code A&amp;B &lt;3 &gt; all")).reply
    assert reply.to_reply("handoff").customer_text == "Use code A&B <3 > all"


def test_slack_retries_of_an_event_count_once(slack: SlackInbound) -> None:
    first = events(slack, thread_event("Thanks, sorted."))
    retry = events(
        slack, thread_event("Thanks, sorted."), **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert first.reply is not None and first.reply.raw["retry_num"] is None
    assert retry.reply.raw["retry_num"] == "1"
    assert first.reply.dedupe_key == retry.reply.dedupe_key == "slack:event:Ev07ABCDEF01"
    other = events(slack, thread_event("One more thing.", event_id="Ev07ABCDEF02"))
    assert other.reply.dedupe_key == "slack:event:Ev07ABCDEF02"


@pytest.mark.parametrize(
    "changes",
    [
        {"bot_id": "B07BACKLINE", "user": BOT_USER},  # our transcript posts
        {"user": BOT_USER},
        {"bot_id": "B0OTHERBOT"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"thread_ts": None},  # not in a thread
        {"thread_ts": PARENT_TS, "ts": PARENT_TS},  # the thread's parent itself
        {"thread_ts": "1699999999.000001"},  # someone else's thread
        {"type": "app_mention"},
    ],
)
def test_what_is_not_a_persons_reply_in_our_thread_is_ignored(slack: SlackInbound, changes: Dict[str, Any]) -> None:
    result = events(slack, thread_event("approve", **changes))
    assert (result.status, result.reply) == (200, None) and result.reason.startswith("ignored")


def test_a_thread_broadcast_is_a_reply(slack: SlackInbound) -> None:
    assert events(slack, thread_event("deny", subtype="thread_broadcast")).reply.action == "deny"


def test_an_unknown_user_in_the_thread_gets_an_ephemeral(slack: SlackInbound) -> None:
    result = events(slack, thread_event("approve", user="U09STRANGER"))
    assert (result.reply, result.reason) == (None, "unknown_user")
    assert result.ephemeral.response_url is None
    assert result.ephemeral.payload() == {
        "channel": DM,
        "user": "U09STRANGER",
        "thread_ts": PARENT_TS,
        "text": result.ephemeral.text,
    }
    assert "U09STRANGER" in result.ephemeral.text


def test_an_unknown_followup_is_explained_to_the_expert(slack: SlackInbound) -> None:
    result = events(slack, thread_event("hand back\nallowed: refunds"))
    assert result.reply is None and result.reason == "invalid_reply"
    assert "refunds" in result.ephemeral.text and result.ephemeral.user == MARA


def test_a_body_that_is_not_json_is_a_bad_request(slack: SlackInbound) -> None:
    body = b"not json"
    assert slack.events(body, sign(body, NOW)).status == 400


# --- the de-duplication stores --------------------------------------------------------------------


def test_memory_dedupe_remembers_keys_for_the_ttl() -> None:
    clock = FakeClock(T0)
    store = MemoryDedupe(ttl=dt.timedelta(minutes=10), clock=clock)
    assert store.seen_before("slack:event:Ev1") is False
    assert store.seen_before("slack:event:Ev1") is True
    assert store.seen_before("slack:event:Ev2") is False
    clock.advance(minutes=10)
    assert store.seen_before("slack:event:Ev1") is False
    assert store.seen_before("slack:event:Ev1") is True
    with pytest.raises(ValueError):
        store.seen_before("")


@pytest.fixture
def sql_dedupe(db_url: str) -> Iterator[Tuple[SqlDedupe, FakeClock]]:
    clock = FakeClock(T0)
    store = SqlDedupe(db_url, ttl=dt.timedelta(minutes=10), clock=clock)
    yield store, clock
    store.dispose()


def test_sql_dedupe_remembers_keys_for_the_ttl_and_purges(sql_dedupe: Tuple[SqlDedupe, FakeClock]) -> None:
    store, clock = sql_dedupe
    assert [store.seen_before(k) for k in ("telegram:update:1", "telegram:update:1", "telegram:update:2")] == [
        False,
        True,
        False,
    ]
    clock.advance(minutes=5)
    assert store.seen_before("telegram:update:3") is False
    clock.advance(minutes=5)
    assert store.seen_before("telegram:update:1") is False  # expired: taken again
    assert store.seen_before("telegram:update:1") is True
    assert store.purge() == 1  # update 2 (update 1 was renewed, update 3 is 5 minutes old)
    assert store.seen_before("telegram:update:3") is True
    with pytest.raises(ValueError):
        store.seen_before("x" * 256)


def test_sql_dedupe_is_shared_by_hubs_and_atomic_under_concurrency(db_url: str) -> None:
    hubs = [SqlDedupe(db_url) for _ in range(2)]  # the second finds the table made by the first
    try:
        assert hubs[0].seen_before("slack:event:EvShared") is False
        assert hubs[1].seen_before("slack:event:EvShared") is True
        for round_ in range(3):
            results: List[bool] = []
            barrier = threading.Barrier(8)

            def deliver(i: int) -> None:
                barrier.wait()
                results.append(hubs[i % 2].seen_before(f"slack:action:{MARA}:race-{round_}"))

            threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(results) == [False] + [True] * 7
    finally:
        for hub in hubs:
            hub.dispose()


# --- feedback buttons (verdict, override reason) ----------------------------------------------------


def feedback_click(action_id: str, user: str = MARA, action_ts: str = "1764000200.000001") -> Dict[str, Any]:
    """A click on a feedback button as backline.experts.slack.feedback_blocks posts it, in the DM thread."""
    element = next(
        e
        for b in feedback_blocks(CONSULTATION, verdict=True, reasons=True)
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    return {
        "type": "block_actions",
        "user": {"id": user},
        "container": {"type": "message", "message_ts": "1764000150.000001", "channel_id": DM, "thread_ts": PARENT_TS},
        "channel": {"id": DM},
        "response_url": "https://hooks.slack.com/actions/T07KESTREL/7000000002/feedback",
        "actions": [{**element, "action_ts": action_ts}],
    }


@pytest.mark.parametrize(
    "action_id, verdict, reason",
    [
        ("verdict_needed", "needed", None),
        ("verdict_not_needed", "not_needed", None),
        ("verdict_too_late", "too_late", None),
        ("override_reason_wrong_intent", None, "wrong_intent"),
        ("override_reason_other", None, "other"),
    ],
)
def test_a_feedback_click_is_feedback_not_a_reply(
    slack: SlackInbound, action_id: str, verdict: Optional[str], reason: Optional[str]
) -> None:
    body = form(feedback_click(action_id))
    result = slack.interactivity(body, sign(body, NOW))
    assert (result.status, result.reply, result.ephemeral) == (200, None, None)
    given = result.feedback
    assert (given.consultation_id, given.actor, given.source, given.verdict, given.reason) == (
        CONSULTATION,
        "mara",
        "slack",
        verdict,
        reason,
    )
    assert given.dedupe_key == f"slack:action:{MARA}:1764000200.000001"
    assert given.raw["thread_ts"] == PARENT_TS and given.raw["response_url"].endswith("/feedback")


def test_a_feedback_click_by_a_stranger_is_refused_here(slack: SlackInbound) -> None:
    body = form(feedback_click("verdict_needed", user="U09STRANGER"))
    result = slack.interactivity(body, sign(body, NOW))
    assert (result.feedback, result.reason) == (None, "unknown_user")
    assert "U09STRANGER" in result.ephemeral.payload()["text"]
