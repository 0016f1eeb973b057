"""Secrets stay out of error messages and log lines (`backline.redact`)."""

from __future__ import annotations

import logging

import pytest

from backline import redact as redaction
from backline.redact import MASK, RedactingFilter, redact, register, register_env


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "POST http://localhost:5005/conversations/c1/trigger_intent?output_channel=latest&token=s3cr3t-value",
            f"POST http://localhost:5005/conversations/c1/trigger_intent?output_channel=latest&token={MASK}",
        ),
        ("GET /status?token=abcdef123456 HTTP/1.1", f"GET /status?token={MASK} HTTP/1.1"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", f"Authorization: Bearer {MASK}"),
        (
            "https://api.telegram.org/bot123456:AAH-secret_part/sendMessage failed",
            f"https://api.telegram.org/bot{MASK}/sendMessage failed",
        ),
        ("invalid_auth for xoxb-1234-5678-abcdEFGH", f"invalid_auth for {MASK}"),
        ("postgresql://backline:hunter2pw@db:5432/backline", f"postgresql://backline:{MASK}@db:5432/backline"),
        ("?client_secret=abc123def&x=1", f"?client_secret={MASK}&x=1"),
        ("the refund of 780 EUR is approved", "the refund of 780 EUR is approved"),
    ],
)
def test_credentials_in_text_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_values_are_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_registered", set())
    register_env(
        {
            "BACKLINE_OPERATOR_TOKEN": "op-token-123456",
            "BACKLINE_HUB_PORT": "5006",
            "BACKLINE_SMTP_PASSWORD": "mail-pass-99",
            "OTHER_TOKEN": "not-ours-123456",
        }
    )
    register("abc")  # too short to mask safely: ignored
    assert redact("op-token-123456 / mail-pass-99 / not-ours-123456 / 5006 / abc") == (
        f"{MASK} / {MASK} / not-ours-123456 / 5006 / abc"
    )


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_registered", set())
    register("signing-secret-42")
    try:
        raise RuntimeError("bad signature with signing-secret-42")
    except RuntimeError:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "calling %s",
            ("http://h/?token=zzzzzzzz",),
            exc_info=__import__("sys").exc_info(),
        )
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"calling http://h/?token={MASK}"
    assert "signing-secret-42" not in record.exc_text and MASK in record.exc_text


def test_audit_entries_never_keep_a_secret(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backline.consult.store import ConsultationStore

    monkeypatch.setattr(redaction, "_registered", set())
    register("rasa-token-abcdef")
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        case = store.create(conversation_id="c", mode="handoff", queue="billing")
        store.audit(
            case.id,
            "hub",
            "resume_failed",
            {
                "error": "POST http://r/x?token=rasa-token-abcdef failed",
                "nested": [{"url": "https://api.telegram.org/bot1:AA/x"}],
            },
        )
        detail = store.audit_trail(case.id)[-1].detail
    assert detail == {
        "error": f"POST http://r/x?token={MASK} failed",
        "nested": [{"url": f"https://api.telegram.org/bot{MASK}/x"}],
    }
