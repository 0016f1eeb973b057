"""Expert channels against loopback Slack / Telegram / SMTP servers: real payloads, failures, fallback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from backline.experts import (
    ACTIONS,
    ChannelConfigError,
    ChannelError,
    DashboardChannel,
    DeliveryFailed,
    EmailChannel,
    Notification,
    RetryPolicy,
    Route,
    SlackChannel,
    TelegramChannel,
    UnavailableChannel,
    channels_from_env,
    deliver,
    parse_callback_data,
    routes_for,
)
from backline.experts import email as email_channel
from backline.experts import slack as slack_channel
from backline.experts import telegram as telegram_channel
from backline.routing.directory import ExpertDirectory, load_experts
from tests.expert_apis import FakeSlack, FakeTelegram, SmtpServer, telegram_plain_text
from tests.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SLACK_TOKEN = "xoxb-test-token"
TELEGRAM_TOKEN = "123456:TEST-token_abc"
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
CONSULTATION = "c-7f3a9e"
CLAIM = "I was charged twice <!channel> & want my money back <script>alert(1)</script>"
DRAFT = "I can see two charges of 740.00 EUR on 2026-11-20. I have refunded the duplicate; expect it in 3-5 days."
TRANSCRIPT = [
    {"role": "user", "text": "Hi, I was charged twice for my annual plan"},
    {"role": "bot", "text": "I am sorry to hear that. Which invoice is it about?"},
    {"role": "user", "text": "INV-2026-0042, 740 EUR & I want it back <now>"},
]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    api = FakeSlack(SLACK_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def telegram_api() -> Iterator[FakeTelegram]:
    api = FakeTelegram(TELEGRAM_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def make_notification(directory: ExpertDirectory, person: str = "mara", **changes: Any) -> Notification:
    values: Dict[str, Any] = dict(
        consultation_id=CONSULTATION,
        conversation_id="conv-42",
        person=directory.person(person),
        mode="consult",
        priority="high",
        brief={
            "intent": "refund_request",
            "amount": {"value": 740.0, "currency": "EUR"},
            "product": "Kestrel Pro annual plan",
            "user_claim": CLAIM,
            "risk": {"level": "high", "grounds": ["refund over 500 EUR", "second complaint this month"]},
        },
        transcript=TRANSCRIPT,
        ai_draft=DRAFT,
        queue="billing",
        reasons=("medium_confidence", "high_value"),
        sla_minutes=240,
        sla_due_at=NOW + dt.timedelta(minutes=240),
        link="http://127.0.0.1:5006/dashboard/consultations/c-7f3a9e",
    )
    values.update(changes)
    return Notification(**values)


def slack(api: FakeSlack, timeout: float = 5.0) -> SlackChannel:
    return SlackChannel.from_env(
        {"BACKLINE_SLACK_BOT_TOKEN": SLACK_TOKEN, "BACKLINE_SLACK_API_URL": api.url + "/api/"}, timeout=timeout
    )


def telegram(api: FakeTelegram, timeout: float = 5.0) -> TelegramChannel:
    return TelegramChannel.from_env(
        {"BACKLINE_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "BACKLINE_TELEGRAM_API_URL": api.url}, timeout=timeout
    )


def mailer(server: SmtpServer, **env: str) -> EmailChannel:
    return EmailChannel.from_env(
        {
            "BACKLINE_SMTP_HOST": "127.0.0.1",
            "BACKLINE_SMTP_PORT": str(server.port),
            "BACKLINE_SMTP_FROM": "Kestrel Backline <backline@kestrel.example>",
            "BACKLINE_SMTP_REPLY_TO": "experts@kestrel.example",
            **env,
        },
        timeout=5.0,
    )


class Sleeps(list):
    """An injected sleep: records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def clock() -> dt.datetime:
    return NOW


# --- Slack ----------------------------------------------------------------------------------------


def test_slack_posts_block_kit_dm_then_transcript_in_thread(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    delivery = slack(slack_api).send(make_notification(directory))

    assert [r.path for r in slack_api.requests] == ["/api/chat.postMessage"] * 2
    assert all(r.headers["Authorization"] == f"Bearer {SLACK_TOKEN}" for r in slack_api.requests)
    first, reply = slack_api.posts()
    assert first["channel"] == "U07KESTR02"  # Mara's Slack user id: a DM from the bot
    assert "refund_request" in first["text"] and "740.00 EUR" in first["text"]  # the text fallback
    assert "<!channel>" not in first["text"] and "&lt;!channel&gt;" in first["text"]
    blocks = first["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context", "actions"]
    assert blocks[0]["text"]["type"] == "plain_text"
    assert "HIGH" in blocks[0]["text"]["text"] and "refund_request" in blocks[0]["text"]["text"]
    assert "`conv-42`" in blocks[1]["text"]["text"] and "*billing*" in blocks[1]["text"]["text"]
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert [f.split("\n")[0] for f in fields] == ["*Intent*", "*Amount*", "*Product*", "*Customer says*", "*Risk*"]
    assert fields[0].endswith("refund_request") and fields[1].endswith("740.00 EUR")
    assert fields[4].endswith("high — refund over 500 EUR; second complaint this month")
    # customer text cannot ping @channel or inject markup
    assert fields[3] == (
        "*Customer says*\nI was charged twice &lt;!channel&gt; &amp; want my money back "
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert blocks[3]["block_id"] == "ai_draft" and DRAFT in blocks[3]["text"]["text"]
    context = blocks[4]["elements"][0]["text"]
    assert "Priority: *high*" in context and "SLA 240 min" in context and "reply by 2026-11-23 14:00 UTC" in context
    buttons = blocks[5]["elements"]
    assert blocks[5]["block_id"] == "consult_actions"
    assert [b["action_id"] for b in buttons] == [
        "consult_approve",
        "consult_deny",
        "consult_answer",
        "consult_take_over",
        "consult_close",
    ]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Deny", "Answer", "Take over", "Close case"]
    assert {b["value"] for b in buttons} == {CONSULTATION}
    assert buttons[0]["style"] == "primary" and buttons[1]["style"] == "danger"
    assert first["metadata"]["event_payload"]["consultation_id"] == CONSULTATION

    # the transcript, in the thread of the DM (the channel the DM landed in)
    assert reply["channel"] == "D07KESTR02" and reply["thread_ts"] == delivery.thread_id
    assert reply["text"].startswith("*Transcript* (3 messages)")
    assert "*Customer:* Hi, I was charged twice for my annual plan" in reply["text"]
    assert "*AI:* I am sorry to hear that." in reply["text"]
    assert "740 EUR &amp; I want it back &lt;now&gt;" in reply["text"]

    assert delivery.channel == "slack" and delivery.person_id == "mara" and delivery.destination == "U07KESTR02"
    assert delivery.message_id == delivery.thread_id == "1764000000.000001"
    assert delivery.extra == {"channel_id": "D07KESTR02", "transcript_ts": ["1764000000.000002"]}
    assert delivery.warnings == ()


def test_slack_without_draft_and_with_a_long_transcript(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    long_transcript = [{"role": "user" if i % 2 else "bot", "text": f"turn {i} " + "x" * 900} for i in range(20)]
    note = make_notification(directory, ai_draft=None, transcript=long_transcript, mode="handoff", sla_due_at=None)
    delivery = slack(slack_api).send(note)

    first, *replies = slack_api.posts()
    assert [b["type"] for b in first["blocks"]] == ["header", "section", "section", "context", "actions"]
    assert first["blocks"][0]["text"]["text"].startswith("🟠 HIGH · Handoff")
    assert len(replies) > 1 and all(r["thread_ts"] == delivery.thread_id for r in replies)
    assert all(len(r["text"]) <= 3600 for r in replies)
    joined = "\n".join(r["text"] for r in replies)
    assert all(f"turn {i} " in joined for i in range(20))
    assert len(delivery.extra["transcript_ts"]) == len(replies)


@pytest.mark.parametrize(
    "status, body, headers, code, transient, retry_after",
    [
        (200, {"ok": False, "error": "channel_not_found"}, {}, "channel_not_found", False, None),
        (200, {"ok": False, "error": "account_inactive"}, {}, "account_inactive", False, None),
        (200, {"ok": False, "error": "internal_error"}, {}, "internal_error", True, None),
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"}, "ratelimited", True, 3.0),
        (500, b"<html>Internal Server Error</html>", {}, None, True, None),
        (503, {"ok": False, "error": "service_unavailable"}, {}, "service_unavailable", True, None),
    ],
)
def test_slack_error_codes_are_classified(
    directory: ExpertDirectory,
    slack_api: FakeSlack,
    status: int,
    body: Any,
    headers: Dict[str, str],
    code: Any,
    transient: bool,
    retry_after: Any,
) -> None:
    slack_api.fail_next(status, body, headers)
    with pytest.raises(ChannelError) as caught:
        slack(slack_api).send(make_notification(directory))
    error = caught.value
    assert error.channel == "slack" and error.status == status
    assert error.transient is transient and error.retry_after == retry_after
    if code:
        assert error.code == code
    else:
        assert "non-JSON" in error.code or error.code == "http_500"


def test_slack_wrong_token_is_a_permanent_invalid_auth(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    channel = SlackChannel("xoxb-wrong", base_url=slack_api.url + "/api/")
    with pytest.raises(ChannelError) as caught:
        channel.send(make_notification(directory))
    assert caught.value.code == "invalid_auth" and not caught.value.transient


def test_slack_transcript_failure_is_a_warning_not_a_resend(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    channel = slack(slack_api)
    slack_api.respond, answer = (
        (lambda r: (200, {"ok": False, "error": "is_archived"}, {}) if "thread_ts" in r.payload else answer(r)),
        slack_api.respond,
    )
    delivery = channel.send(make_notification(directory))
    assert len(slack_api.requests) == 2
    assert delivery.message_id and delivery.warnings == (
        "transcript not posted in thread: chat.postMessage failed: is_archived (HTTP 200)",
    )


# --- Telegram -------------------------------------------------------------------------------------


def test_telegram_message_with_inline_keyboard_and_transcript_reply(
    directory: ExpertDirectory, telegram_api: FakeTelegram
) -> None:
    delivery = telegram(telegram_api).send(make_notification(directory, person="jonas"))

    assert [r.path for r in telegram_api.requests] == [f"/bot{TELEGRAM_TOKEN}/sendMessage"] * 2
    first, reply = telegram_api.messages()
    assert first["chat_id"] == 5100000001 and first["parse_mode"] == "HTML"
    text = first["text"]
    assert text.startswith("<b>🟠 HIGH · Consultation: refund_request</b>\n")
    assert "consultation <code>c-7f3a9e</code> · conversation <code>conv-42</code> · queue billing" in text
    assert "<b>Intent:</b> refund_request" in text and "<b>Amount:</b> 740.00 EUR" in text
    assert (
        "<b>Customer says:</b> I was charged twice &lt;!channel&gt; &amp; want my money back "
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    ) in text
    assert "<b>AI draft</b>\n" + DRAFT in text
    assert "SLA 240 min · reply by 2026-11-23 14:00 UTC" in text
    assert '<a href="http://127.0.0.1:5006/dashboard/consultations/c-7f3a9e">' in text
    keyboard = first["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [
        ["approve:c-7f3a9e", "deny:c-7f3a9e"],
        ["answer:c-7f3a9e", "take_over:c-7f3a9e"],
        ["close:c-7f3a9e"],
    ]
    assert [[b["text"] for b in row] for row in keyboard] == [
        ["Approve", "Deny"],
        ["Answer", "Take over"],
        ["Close case"],
    ]
    assert [parse_callback_data(b["callback_data"]) for row in keyboard for b in row] == [
        (action, CONSULTATION) for action in ACTIONS
    ]

    assert reply["chat_id"] == 5100000001 and reply["reply_parameters"]["message_id"] == 101
    assert reply["text"].startswith("<b>Transcript</b> (3 messages)")
    assert "<b>Customer:</b> INV-2026-0042, 740 EUR &amp; I want it back &lt;now&gt;" in reply["text"]

    assert (delivery.channel, delivery.destination, delivery.message_id, delivery.thread_id) == (
        "telegram",
        "5100000001",
        "101",
        "101",
    )
    assert delivery.extra == {"transcript_message_ids": ["102"]}


def test_telegram_long_texts_fit_the_4096_limit(directory: ExpertDirectory, telegram_api: FakeTelegram) -> None:
    draft = "Refund & apology <details>. " * 600  # ~17k characters, many of them escaped
    transcript = [{"role": "user", "text": "😡 " + "é & < " * 1500} for _ in range(3)]
    telegram(telegram_api).send(make_notification(directory, person="jonas", ai_draft=draft, transcript=transcript))

    sent = telegram_api.messages()
    assert len(sent) >= 2  # the fake would have answered 400 to anything over the limit or with broken entities
    for message in sent:
        assert len(message["text"].encode("utf-16-le")) // 2 <= 4096
    main = telegram_plain_text(sent[0]["text"])
    assert "Refund & apology <details>." in main and main.endswith("<details…\n\nOpen in dashboard")
    assert "Customer says: I was charged twice <!channel>" in main  # the draft was cut first, not the claim


def test_telegram_callback_data_limit(directory: ExpertDirectory, telegram_api: FakeTelegram) -> None:
    with pytest.raises(ChannelError) as caught:
        telegram(telegram_api).send(make_notification(directory, person="jonas", consultation_id="c-" + "9" * 60))
    assert caught.value.code == "callback_data_too_long" and not caught.value.transient
    assert telegram_api.requests == []
    with pytest.raises(ValueError):
        parse_callback_data("escalate:c-1")


@pytest.mark.parametrize(
    "status, body, headers, transient, retry_after",
    [
        (
            403,
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
            {},
            False,
            None,
        ),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, {}, False, None),
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 2",
                "parameters": {"retry_after": 2},
            },
            {"Retry-After": "2"},
            True,
            2.0,
        ),
        (502, b"Bad Gateway", {}, True, None),
    ],
)
def test_telegram_errors_are_classified(
    directory: ExpertDirectory,
    telegram_api: FakeTelegram,
    status: int,
    body: Any,
    headers: Dict[str, str],
    transient: bool,
    retry_after: Any,
) -> None:
    telegram_api.fail_next(status, body, headers)
    with pytest.raises(ChannelError) as caught:
        telegram(telegram_api).send(make_notification(directory, person="jonas"))
    error = caught.value
    assert (error.channel, error.status, error.transient, error.retry_after) == (
        "telegram",
        status,
        transient,
        retry_after,
    )
    if isinstance(body, dict):
        assert body["description"] in error.message


def test_telegram_unreachable_server_is_transient_and_hides_the_token(directory: ExpertDirectory) -> None:
    channel = TelegramChannel(TELEGRAM_TOKEN, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChannelError) as caught:
        channel.send(make_notification(directory, person="jonas"))
    assert caught.value.code == "connection_error" and caught.value.transient
    assert TELEGRAM_TOKEN not in str(caught.value) and "TEST-token" not in caught.value.message


# --- e-mail ---------------------------------------------------------------------------------------


def test_email_brief_transcript_and_reply_headers(directory: ExpertDirectory, smtp: SmtpServer) -> None:
    note = make_notification(directory, person="anna", priority="urgent", mode="handoff")
    delivery = mailer(smtp).send(note)

    [mail] = smtp.handler.messages
    assert mail.mail_from == "backline@kestrel.example" and mail.rcpt_tos == ["anna.schulz@kestrel.example"]
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message["To"] == '"Dr. Anna Schulz" <anna.schulz@kestrel.example>'
    assert message["From"] == "Kestrel Backline <backline@kestrel.example>"
    assert message["Subject"] == "[Backline] [URGENT] Handoff: refund_request (c-7f3a9e)"
    assert message["Reply-To"] == "experts+c-7f3a9e@kestrel.example"
    assert email_channel.consultation_from_address(message["Reply-To"]) == CONSULTATION
    assert message["X-Backline-Consultation"] == CONSULTATION and message["X-Backline-Conversation"] == "conv-42"
    assert message["X-Priority"] == "1 (Highest)"
    assert message["Message-ID"] == delivery.message_id == delivery.thread_id
    assert message["Message-ID"].endswith("@kestrel.example>")
    assert message.get_content_type() == "multipart/alternative"

    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Intent:        refund_request" in plain and "Amount:        740.00 EUR" in plain
    assert f"Customer says: {CLAIM}" in plain  # plain text carries the customer's words verbatim
    assert "Risk:          high — refund over 500 EUR; second complaint this month" in plain
    assert "AI draft:\n" + DRAFT in plain
    assert "Transcript (3 messages)" in plain and "Customer: Hi, I was charged twice for my annual plan" in plain
    assert "AI: I am sorry to hear that. Which invoice is it about?" in plain
    assert (
        "Start it with approve, deny, take over, hand back or close: <resolution for "
        "the customer> to decide; lines starting with // stay internal.\n" in plain
    )
    assert plain.rstrip().endswith(  # the verdict and override reason, as reply keywords
        "you may add a line verdict: needed | not needed | too late, and when you change the AI's draft, "
        "reason: wrong intent -> <intent> | wrong facts | policy | tone | other - <text>."
    )
    html_part = message.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part and "<script>" not in html_part
    assert (delivery.channel, delivery.destination, delivery.person_id) == (
        "email",
        "anna.schulz@kestrel.example",
        "anna",
    )


def test_email_long_ids_stay_unfolded(directory: ExpertDirectory, smtp: SmtpServer) -> None:
    long_id = "3f2b8c1e-9d4a-4e6f-b7a2-5c8d9e0f1a2b"
    delivery = mailer(smtp).send(make_notification(directory, consultation_id=long_id))
    message = email.message_from_bytes(smtp.handler.messages[0].content, policy=email.policy.default)
    assert message["Message-ID"] == delivery.message_id and long_id in delivery.message_id
    assert message["Reply-To"] == f"experts+{long_id}@kestrel.example"
    assert message["Subject"] == f"[Backline] [HIGH] Consultation: refund_request ({long_id})"


def test_email_logs_in_when_a_user_is_configured(directory: ExpertDirectory, smtp: SmtpServer) -> None:
    mailer(smtp, BACKLINE_SMTP_USER="backline", BACKLINE_SMTP_PASSWORD="s3cret").send(make_notification(directory))
    assert smtp.handler.logins == [("backline", "s3cret")] and len(smtp.handler.messages) == 1

    with pytest.raises(ChannelError) as caught:
        mailer(smtp, BACKLINE_SMTP_USER="backline", BACKLINE_SMTP_PASSWORD="wrong").send(make_notification(directory))
    assert caught.value.code == "auth_failed" and not caught.value.transient
    assert "BACKLINE_SMTP_USER" in caught.value.message


@pytest.mark.parametrize(
    "reply, code, transient",
    [("451 4.3.0 Mailbox temporarily unavailable", "smtp_451", True), ("550 5.1.1 No such user", "smtp_550", False)],
)
def test_email_smtp_replies_are_classified(
    directory: ExpertDirectory, smtp: SmtpServer, reply: str, code: str, transient: bool
) -> None:
    smtp.handler.rcpt_replies.append(reply)
    with pytest.raises(ChannelError) as caught:
        mailer(smtp).send(make_notification(directory))
    assert (caught.value.code, caught.value.transient) == (code, transient)
    assert smtp.handler.messages == []


def test_email_connection_problems(directory: ExpertDirectory, smtp: SmtpServer) -> None:
    closed = EmailChannel(host="127.0.0.1", port=free_port(), timeout=2.0)
    with pytest.raises(ChannelError) as caught:
        closed.send(make_notification(directory))
    assert caught.value.code == "connection_error" and caught.value.transient
    # STARTTLS asked of a server that does not offer it: a configuration problem, not worth retrying
    with pytest.raises(ChannelError) as caught:
        mailer(smtp, BACKLINE_SMTP_STARTTLS="true").send(make_notification(directory))
    assert caught.value.code == "not_supported" and not caught.value.transient
    assert "BACKLINE_SMTP_STARTTLS" in caught.value.message


def test_email_reply_address_helpers() -> None:
    assert (
        email_channel.reply_address("Experts <experts@kestrel.example>", "c-1")
        == "Experts <experts+c-1@kestrel.example>"
    )
    assert email_channel.reply_address("experts@kestrel.example", "c 1/x") == "experts@kestrel.example"
    assert email_channel.consultation_from_address("Mara <experts@kestrel.example>") is None


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_stores_through_its_sink(directory: ExpertDirectory) -> None:
    board: List[Dict[str, Any]] = []
    delivery = DashboardChannel(board).send(make_notification(directory, person="sofia"))
    [entry] = board
    assert entry["consultation_id"] == CONSULTATION and entry["person_id"] == "sofia"
    assert entry["dashboard_user"] == "sofia.costa" and entry["brief"]["user_claim"] == CLAIM
    assert entry["transcript"] == TRANSCRIPT and entry["ai_draft"] == DRAFT
    assert entry["sla_due_at"] == "2026-11-23T14:00:00+00:00" and entry["fallback"] is False
    assert (delivery.channel, delivery.destination, delivery.message_id) == (
        "dashboard",
        "sofia.costa",
        "dashboard:c-7f3a9e",
    )
    stored: List[Dict[str, Any]] = []
    delivery = DashboardChannel(lambda record: stored.append(record) or 17).send(make_notification(directory))
    assert delivery.message_id == "17" and stored[0]["person_id"] == "mara"


# --- deliver: retries, backoff, fallback ----------------------------------------------------------


def channels(
    board: List[Dict[str, Any]], slack_api: Any = None, telegram_api: Any = None, smtp: Any = None, timeout: float = 5.0
) -> Dict[str, Any]:
    found: Dict[str, Any] = {"dashboard": DashboardChannel(board)}
    found["slack"] = slack(slack_api, timeout) if slack_api else UnavailableChannel("slack", "off in this test")
    found["telegram"] = (
        telegram(telegram_api, timeout) if telegram_api else UnavailableChannel("telegram", "off in this test")
    )
    found["email"] = mailer(smtp) if smtp else UnavailableChannel("email", "off in this test")
    return found


def test_routes_prefer_the_preferred_channel_and_keep_the_passive_dashboard_last(directory: ExpertDirectory) -> None:
    assert [r.channel for r in routes_for(directory.person("tariq"))] == ["telegram", "slack"]
    assert [r.channel for r in routes_for(directory.person("jonas"))] == ["telegram", "email"]
    assert [r.channel for r in routes_for(directory.person("felix"))] == ["dashboard", "slack"]


def test_500_then_success_is_retried_with_backoff(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    slack_api.fail_next(500, {"ok": False, "error": "internal_error"})
    board: List[Dict[str, Any]] = []
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory), [directory.person("mara")], channels(board, slack_api), sleep=sleeps, clock=clock
    )
    assert sleeps == [1.0]
    assert (result.delivery.channel, result.delivery.attempts, result.delivery.at) == ("slack", 2, NOW)
    [failure] = result.failures
    assert (failure.channel, failure.status, failure.attempt, failure.transient, failure.waited) == (
        "slack",
        500,
        1,
        True,
        1.0,
    )
    assert len([p for p in slack_api.posts() if "blocks" in p]) == 2 and board == []


def test_telegram_429_honours_retry_after(directory: ExpertDirectory, telegram_api: FakeTelegram) -> None:
    telegram_api.fail_next(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2},
        },
        {"Retry-After": "2"},
    )
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory, person="jonas"),
        [directory.person("jonas")],
        channels([], telegram_api=telegram_api),
        sleep=sleeps,
        clock=clock,
    )
    assert sleeps == [2.0]
    assert result.delivery.channel == "telegram" and result.delivery.attempts == 2
    assert result.failures[0].code == "ratelimited" and result.failures[0].retry_after == 2.0


def test_slack_ratelimited_honours_retry_after(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    slack_api.fail_next(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "2"})
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory), [directory.person("mara")], channels([], slack_api), sleep=sleeps, clock=clock
    )
    assert sleeps == [2.0] and result.delivery.attempts == 2
    assert result.failures[0].code == "ratelimited"


def test_timeout_is_retried(directory: ExpertDirectory, slack_api: FakeSlack) -> None:
    slack_api.fail_next(200, {"ok": True, "ts": "late", "channel": "D07KESTR02"}, delay=1.5)
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory),
        [directory.person("mara")],
        channels([], slack_api, timeout=0.3),
        sleep=sleeps,
        clock=clock,
    )
    assert result.failures[0].code == "timeout" and result.failures[0].transient
    assert sleeps == [1.0] and result.delivery.attempts == 2 and result.delivery.channel == "slack"


def test_transient_failures_back_off_exponentially_then_fall_back(
    directory: ExpertDirectory, slack_api: FakeSlack, smtp: SmtpServer
) -> None:
    slack_api.fail_next(503, {"ok": False, "error": "service_unavailable"}, times=3)
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory),
        [directory.person("mara")],
        channels([], slack_api, smtp=smtp),
        sleep=sleeps,
        clock=clock,
    )
    assert sleeps == [1.0, 2.0]  # attempts 1 and 2 wait; attempt 3 gives the route up
    assert [(f.channel, f.attempt, f.waited) for f in result.failures] == [
        ("slack", 1, 1.0),
        ("slack", 2, 2.0),
        ("slack", 3, None),
    ]
    assert result.delivery.channel == "email" and result.delivery.destination == "mara.klein@kestrel.example"
    assert len(smtp.handler.messages) == 1


def test_permanent_failure_falls_back_to_the_next_channel_at_once(
    directory: ExpertDirectory, slack_api: FakeSlack, smtp: SmtpServer
) -> None:
    slack_api.fail_next(200, {"ok": False, "error": "channel_not_found"})
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory),
        [directory.person("mara")],
        channels([], slack_api, smtp=smtp),
        sleep=sleeps,
        clock=clock,
    )
    assert sleeps == [] and result.delivery.channel == "email" and result.delivery.attempts == 1
    assert [(f.channel, f.code, f.transient) for f in result.failures] == [("slack", "channel_not_found", False)]


def test_falls_back_to_the_next_person(
    directory: ExpertDirectory, slack_api: FakeSlack, telegram_api: FakeTelegram, smtp: SmtpServer
) -> None:
    telegram_api.fail_next(
        403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
    )
    smtp.handler.rcpt_replies.append("550 5.1.1 No such user")
    board: List[Dict[str, Any]] = []
    people = [directory.person("jonas"), directory.person("mara")]
    result = deliver(
        make_notification(directory, person="jonas"),
        people,
        channels(board, slack_api, telegram_api, smtp),
        sleep=Sleeps(),
        clock=clock,
    )
    assert [(f.person_id, f.channel, f.code) for f in result.failures] == [
        ("jonas", "telegram", "http_403"),
        ("jonas", "email", "smtp_550"),
    ]
    assert (result.delivery.person_id, result.delivery.channel, result.delivery.destination) == (
        "mara",
        "slack",
        "U07KESTR02",
    )
    assert slack_api.posts()[0]["blocks"][-1]["elements"][0]["value"] == CONSULTATION
    assert board == [] and result.delivery.fallback is False
    audit = result.audit_entries()
    assert [e["action"] for e in audit] == ["delivery_failed", "delivery_failed", "notified"]
    assert audit[0]["detail"]["at"] == NOW.isoformat() and audit[-1]["detail"]["person_id"] == "mara"


def test_when_everything_fails_the_dashboard_keeps_it(
    directory: ExpertDirectory, slack_api: FakeSlack, telegram_api: FakeTelegram
) -> None:
    slack_api.fail_next(200, {"ok": False, "error": "account_inactive"}, times=5)
    telegram_api.fail_next(502, b"Bad Gateway", times=5)
    board: List[Dict[str, Any]] = []
    sleeps = Sleeps()
    smtp_down = EmailChannel(host="127.0.0.1", port=free_port(), timeout=2.0)
    found = {**channels(board, slack_api, telegram_api), "email": smtp_down}
    result = deliver(
        make_notification(directory, person="tariq", priority="urgent"),
        [directory.person("tariq"), directory.person("mara")],
        found,
        sleep=sleeps,
        clock=clock,
    )
    assert [(f.person_id, f.channel) for f in result.failures] == [
        ("tariq", "telegram"),
        ("tariq", "telegram"),
        ("tariq", "telegram"),
        ("tariq", "slack"),
        ("mara", "slack"),
        ("mara", "email"),
        ("mara", "email"),
        ("mara", "email"),
    ]
    assert sleeps == [1.0, 2.0, 1.0, 2.0]
    delivery = result.delivery
    assert (delivery.channel, delivery.person_id, delivery.fallback) == ("dashboard", "tariq", True)
    [entry] = board
    assert entry["fallback"] is True and entry["consultation_id"] == CONSULTATION and entry["priority"] == "urgent"


def test_a_long_retry_after_is_not_waited_for(
    directory: ExpertDirectory, telegram_api: FakeTelegram, smtp: SmtpServer
) -> None:
    telegram_api.fail_next(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 120",
            "parameters": {"retry_after": 120},
        },
    )
    sleeps = Sleeps()
    result = deliver(
        make_notification(directory, person="jonas"),
        [directory.person("jonas")],
        channels([], telegram_api=telegram_api, smtp=smtp),
        policy=RetryPolicy(max_retry_after=60),
        sleep=sleeps,
        clock=clock,
    )
    assert sleeps == [] and result.delivery.channel == "email"
    assert result.failures[0].retry_after == 120 and result.failures[0].waited is None


def test_a_person_who_works_on_the_dashboard_gets_it_there(directory: ExpertDirectory) -> None:
    board: List[Dict[str, Any]] = []
    result = deliver(
        make_notification(directory, person="felix"),
        [directory.person("felix")],
        channels(board),
        sleep=Sleeps(),
        clock=clock,
    )
    assert (result.delivery.channel, result.delivery.fallback, result.failures) == ("dashboard", False, ())
    assert board[0]["person_id"] == "felix" and board[0]["fallback"] is False


def test_explicit_routes_and_no_routes(directory: ExpertDirectory, smtp: SmtpServer) -> None:
    board: List[Dict[str, Any]] = []
    result = deliver(
        make_notification(directory),
        [Route(directory.person("lena"), "email")],
        channels(board, smtp=smtp),
        sleep=Sleeps(),
        clock=clock,
    )
    assert (result.delivery.person_id, result.delivery.channel) == ("lena", "email")
    assert smtp.handler.messages[0].rcpt_tos == ["lena.fischer@kestrel.example"]
    result = deliver(make_notification(directory), [], channels(board), sleep=Sleeps(), clock=clock)
    assert result.delivery.fallback and board[-1]["person_id"] == "mara"


def test_a_failing_dashboard_sink_raises_with_the_whole_trail(directory: ExpertDirectory) -> None:
    def broken(record: Dict[str, Any]) -> None:
        raise RuntimeError("database is locked")

    found = {"dashboard": DashboardChannel(broken)}
    with pytest.raises(DeliveryFailed) as caught:
        deliver(
            make_notification(directory, person="anna"), [directory.person("anna")], found, sleep=Sleeps(), clock=clock
        )
    assert [(f.channel, f.code) for f in caught.value.failures][0] == ("email", "not_configured")
    assert [f.code for f in caught.value.failures][1:] == ["sink_failed"] * 3
    with pytest.raises(ValueError, match="dashboard"):
        deliver(make_notification(directory), [directory.person("mara")], {}, sleep=Sleeps(), clock=clock)


# --- configuration ----------------------------------------------------------------------------------


def test_missing_tokens_name_the_environment_variable() -> None:
    with pytest.raises(ChannelConfigError, match="BACKLINE_SLACK_BOT_TOKEN"):
        SlackChannel.from_env({})
    with pytest.raises(ChannelConfigError, match="BACKLINE_TELEGRAM_BOT_TOKEN"):
        TelegramChannel.from_env({"BACKLINE_TELEGRAM_API_URL": "http://127.0.0.1:1"})
    with pytest.raises(ChannelConfigError, match="BACKLINE_SMTP_HOST"):
        EmailChannel.from_env({})
    host = {"BACKLINE_SMTP_HOST": "mail.test"}
    with pytest.raises(ChannelConfigError, match="BACKLINE_SMTP_PORT"):
        EmailChannel.from_env({**host, "BACKLINE_SMTP_PORT": "twenty-five"})
    with pytest.raises(ChannelConfigError, match="BACKLINE_SMTP_STARTTLS"):
        EmailChannel.from_env({**host, "BACKLINE_SMTP_STARTTLS": "maybe"})
    with pytest.raises(ChannelConfigError, match="BACKLINE_SMTP_PASSWORD"):
        EmailChannel.from_env({**host, "BACKLINE_SMTP_USER": "backline"})
    mail = EmailChannel.from_env(host)
    assert (mail.host, mail.port, mail.user, mail.starttls) == ("mail.test", 25, None, False)
    assert TelegramChannel.from_env({"BACKLINE_TELEGRAM_BOT_TOKEN": "1:x"}).base_url == "https://api.telegram.org"
    assert SlackChannel.from_env({"BACKLINE_SLACK_BOT_TOKEN": "xoxb-1"}).client.base_url == "https://slack.com/api/"


def test_channels_from_env_wires_every_channel_and_reports_the_missing(
    directory: ExpertDirectory, slack_api: FakeSlack, telegram_api: FakeTelegram, smtp: SmtpServer
) -> None:
    board: List[Dict[str, Any]] = []
    unconfigured = channels_from_env(board, env={"BACKLINE_SMTP_PORT": str(free_port())}, timeout=2.0)
    assert all(isinstance(unconfigured[kind], UnavailableChannel) for kind in ("slack", "telegram", "email"))
    result = deliver(
        make_notification(directory, person="tariq"),
        [directory.person("tariq")],
        unconfigured,
        sleep=Sleeps(),
        clock=clock,
    )
    assert result.delivery.fallback and board[0]["person_id"] == "tariq"
    messages = [f.message for f in result.failures]
    assert "BACKLINE_TELEGRAM_BOT_TOKEN" in messages[0] and "BACKLINE_SLACK_BOT_TOKEN" in messages[1]

    env = {
        "BACKLINE_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "BACKLINE_SLACK_API_URL": slack_api.url + "/api",
        "BACKLINE_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "BACKLINE_TELEGRAM_API_URL": telegram_api.url + "/",
        "BACKLINE_SMTP_HOST": "127.0.0.1",
        "BACKLINE_SMTP_PORT": str(smtp.port),
    }
    configured = channels_from_env(board, env=env)
    for person, kind in (("tariq", "telegram"), ("mara", "slack"), ("anna", "email")):
        result = deliver(
            make_notification(directory, person=person),
            [directory.person(person)],
            configured,
            sleep=Sleeps(),
            clock=clock,
        )
        assert (result.delivery.channel, result.failures) == (kind, ())
    assert len(telegram_api.requests) == 2 and len(slack_api.requests) == 2 and len(smtp.handler.messages) == 1


def test_notification_validation(directory: ExpertDirectory) -> None:
    with pytest.raises(ValueError, match="mode"):
        make_notification(directory, mode="chat")
    with pytest.raises(ValueError, match="priority"):
        make_notification(directory, priority="critical")
    note = make_notification(directory, brief={"intent": "order_status"}, ai_draft=None, link=None)
    assert "Amount:        —" in note.text and "AI draft" not in note.text
    assert slack_channel.escape("<@U1>") == "&lt;@U1&gt;"
    assert telegram_channel.callback_data("take_over", "c-1") == "take_over:c-1"
