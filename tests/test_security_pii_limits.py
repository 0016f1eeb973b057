"""PII and limits on the customer side, with the real processes (`backline run`) and loopback Slack,
Telegram and SMTP servers: secrets a customer types are masked in the stores and in what every expert
channel received, files under var/ are private; oversized bodies and replies, repeated escalations and
one address opening cases are limited. Each test records what it observed; the last one writes the
``pii`` and ``limits`` sections of docs/security.md.
"""

import re
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.channels_stack import (
    JONAS_CHAT,
    PROJECT_ROOT,
    Channels,
    _ids,
    api_reply,
    case_detail,
    consultation,
    customer_telegram_says,
    eventually,
    first_delivery,
)
from tests.security_customers_kit import (
    PER_ADDRESS,
    WebCustomer,
    c,  # noqa: F401 (the module's channel stack)
    cases,
    conversation_of,
    rest,
    tracker,
)
from tests.security_report import SecurityReport

pytestmark = pytest.mark.stack  # `backline run` with the channels; the report needs the whole module
REPORT = SecurityReport("pytest tests/test_security_pii_limits.py", {"pii": "PII", "limits": "Limits"})
record = REPORT.record
SECRETS = (
    "hunter2",
    "4242 4242 4242 4242",
    "4242424242424242",
    "DE89 3704 0044 0532 0130 00",
    "4711",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
)
"""What the PII test's customer types: none may reach a store or an expert unmasked."""


def store_dump(c: Channels) -> str:
    engine = create_engine(c.stack.consult_url)
    try:
        with engine.connect() as connection:
            rows = []
            for table in ("consultations", "consultation_messages", "audit_events"):
                rows += [str(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))]
        return "\n".join(rows)
    finally:
        engine.dispose()


def leaked(secret: str, text: str) -> bool:
    """The secret as a token of its own: "pin is 4711," leaks it, a timestamp or id that happens
    to contain the digits (".847113", "c-9a4711f") does not. The e-mail and the store hold many of
    those, so a bare substring test failed now and then with nothing leaked."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def test_a_secret_is_found_as_a_token_not_inside_another_number() -> None:
    assert leaked("4711", "my pin is 4711, thanks") and leaked("4711", "pin:4711")
    assert not leaked("4711", "2026-12-05 01:24:47.471123") and not leaked("4711", "c-9a4711f")


def test_pii_is_masked_in_the_store_and_in_what_every_expert_channel_received(c: Channels) -> None:
    # Slack expert (billing): a refund with a card number in the customer's words
    chat = 880000 + next(_ids)
    customer_telegram_says(c, chat, "I want a refund of €780 for my Hub X1, order 10023, card 4242 4242 4242 4242")
    billing = consultation(c.stack, f"telegram:{chat}", assigned=True)
    slack_card = first_delivery(c.expert_slack, billing["id"])
    # e-mail expert (legal): a legal threat with an IBAN
    legal_sender = f"rest-legal-{next(_ids)}"
    rest(c, legal_sender, "My lawyer will sue you unless you refund to DE89 3704 0044 0532 0130 00")
    legal = consultation(c.stack, legal_sender, assigned=True)
    mail = eventually(
        lambda: [m for m in c.smtp.handler.messages if legal["id"].encode() in m.content],
        what="the e-mail to the legal expert",
    )
    # Telegram expert (support), human mode: the customer's own words relayed
    human = f"rest-human-{next(_ids)}"
    rest(c, human, "can i talk to a real person please")
    support = consultation(c.stack, human, assigned=True)
    taken = api_reply(c.stack, support["id"], action="take_over")
    assert taken.ok, taken.text
    eventually(lambda: tracker(c, human)["slots"]["handoff_mode"] == "human", what="human mode")
    rest(c, human, "my password is hunter2 and my pin is 4711, key sk_live_4eC39HqLyjWDarjtT1zdp7dc")
    relayed = eventually(
        lambda: [m for m in c.expert_telegram.messages() if "my password is" in str(m.get("text"))],
        what="the message relayed to Jonas",
    )

    received = {
        "Slack": str(slack_card),
        "SMTP": b"".join(m.content for m in mail).decode(errors="replace"),
        "Telegram": str(relayed),
    }
    stored = store_dump(c)
    leaks = {where: [s for s in SECRETS if leaked(s, what)] for where, what in {**received, "store": stored}.items()}

    assert leaks == {"Slack": [], "SMTP": [], "Telegram": [], "store": []}
    assert "**** **** **** 4242" in received["Slack"] and "DE** **** **** **** **30 00" in received["SMTP"]
    assert "my password is ********" in received["Telegram"] and "sk_live_********" in received["Telegram"]
    assert relayed[0]["chat_id"] == JONAS_CHAT
    record(
        "pii",
        "Card numbers, IBANs, passwords, PINs and API keys reach experts or the store in clear",
        "a refund with a card (Slack expert), a legal threat with an IBAN (e-mail expert), a human-mode "
        "message with password, PIN and key (Telegram relay); every row of the consultation store",
        f"masked: {len(SECRETS)} secrets found 0 times in what Slack, SMTP and Telegram received and in "
        f"{stored.count(chr(10)) + 1} stored rows",
    )


def test_nothing_under_var_is_readable_by_others(c: Channels) -> None:
    var = PROJECT_ROOT / "var"
    loose = [str(p.relative_to(PROJECT_ROOT)) for p in var.rglob("*") if p.stat().st_mode & 0o077]
    mode = oct(var.stat().st_mode & 0o777)

    assert loose == [] and mode == "0o700"
    record(
        "pii",
        "Databases and secrets under var/ readable by other users",
        "the mode of var/ and of every file in it after `backline run`",
        f"var/ {mode}; files readable by group or others: {len(loose)}",
    )


# --- limits --------------------------------------------------------------------------------------


def test_bodies_and_replies_over_the_limits_are_refused(c: Channels) -> None:
    sender = f"rest-big-{next(_ids)}"
    big = requests.post(
        f"{c.stack.rasa_url}/webhooks/rest/webhook",
        data=b"x" * (64 * 1024 + 1),
        timeout=60,
        headers={**c.stack.channel_auth, "Content-Type": "application/json"},
    )
    hub_big = requests.post(
        f"{c.stack.hub_url}/api/consultations/x/reply",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Authorization": f"Bearer {c.stack.operator_token}", "Content-Type": "application/json"},
        timeout=60,
    )
    rest(c, sender, "can i talk to a real person please")
    case = consultation(c.stack, sender, assigned=True)
    long_reply = api_reply(c.stack, case["id"], action="answer", text="x" * 4001)

    assert (big.status_code, hub_big.status_code, long_reply.status_code) == (413, 413, 400)
    assert "4,000" in long_reply.json()["error"]
    assert case_detail(c.stack, case["id"])["status"] == "assigned"
    record(
        "limits",
        "Oversized bodies on the customer channels and the hub",
        "65,537 bytes to the REST webhook; 2 MiB to the hub's API",
        f"refused: {big.status_code}, {hub_big.status_code}",
    )
    record(
        "limits",
        "An expert reply longer than a customer channel carries",
        "4,001 characters via the API",
        f"refused: {long_reply.status_code} (the case unchanged)",
    )


def test_a_conversation_escalating_again_within_the_hour_adds_to_its_case(c: Channels) -> None:
    sender = f"rest-again-{next(_ids)}"
    rest(c, sender, "I want a refund of €780 for my Hub X1, order 10023")
    first = consultation(c.stack, sender, assigned=True)
    closed = api_reply(c.stack, first["id"], action="deny", text="Refunds over 500 EUR need the device back.")
    assert closed.ok, closed.text
    eventually(lambda: case_detail(c.stack, first["id"])["status"] == "closed", what="the case closed")
    eventually(lambda: tracker(c, sender)["slots"]["handoff_mode"] != "human", what="the AI back")

    again = rest(c, sender, "this is unacceptable, I want a refund of €780 now")

    assert again.status_code == 200
    assert len(cases(c, sender)) == 1
    messages = case_detail(c.stack, first["id"])["messages"]
    assert any("unacceptable" in m["text"] for m in messages if m["direction"] == "from_customer")
    assert any("already with our" in m.get("text", "") for m in again.json())
    record(
        "limits",
        "One conversation fills a queue with escalations",
        "BACKLINE_ESCALATIONS_PER_CONVERSATION=1: a second escalation within the hour",
        f"no new case ({len(cases(c, sender))} in total); the message added to the existing case; the customer told so",
    )


def test_one_address_opens_at_most_its_share_of_cases_per_hour(c: Channels) -> None:
    opened, refused_text = [], []
    for _ in range(PER_ADDRESS + 2):
        session, said, _ = WebCustomer(c).run(
            [{"message": "I want a refund of €780 for my Hub X1, order 10023"}], wait_for=2
        )
        time.sleep(0.5)
        found = cases(c, conversation_of(session))
        opened.append(bool(found))
        refused_text += [m["text"] for m in said if "many requests" in m.get("text", "")]

    assert opened.count(True) <= PER_ADDRESS and opened[-2:] == [False, False]
    assert len(refused_text) >= 2
    record(
        "limits",
        "One address opens a case from every fresh web chat session",
        f"BACKLINE_ESCALATIONS_PER_ADDRESS={PER_ADDRESS}: {PER_ADDRESS + 2} sessions from one address escalate",
        f"cases opened: {opened.count(True)}; refused: {opened.count(False)} (told to try later)",
    )


def test_write_the_security_report() -> None:
    REPORT.write()
