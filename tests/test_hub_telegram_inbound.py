"""Telegram → hub: the webhook's secret token, our inline buttons and replies become expert replies,
every button press is answered, an update counts once, strangers are turned away."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from backline.experts.telegram import feedback_markup, reply_markup
from backline.hub.dedupe import MemoryDedupe
from backline.hub.telegram_inbound import ANSWER_PROMPT, CLOSE_PROMPT, TelegramInbound
from backline.routing.directory import ExpertDirectory, load_experts
from tests.servers import PROJECT_ROOT

SECRET = "kestrel_Backline-webhook_0123456789"
CONSULTATION = "c_3f9a0c2b71de"
OTHER = "c_0a1b2c3d4e5f"
JONAS = 5100000001  # experts.yml: jonas, telegram chat_id
STRANGER = 6200000099
BOT = {"id": 7000000001, "is_bot": True, "first_name": "Kestrel Backline", "username": "kestrel_backline_bot"}
OUR_MESSAGE = 42


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


class Consultations:
    """The lookups the hub injects: which consultation our message was about, who has which open."""

    def __init__(self) -> None:
        self.open: Dict[str, List[str]] = {"jonas": [CONSULTATION]}
        self.asked: List[Tuple[str, str]] = []

    def message_lookup(self, chat_id: str, message_id: str) -> Optional[str]:
        self.asked.append((chat_id, message_id))
        return CONSULTATION if (chat_id, message_id) == (str(JONAS), str(OUR_MESSAGE)) else None

    def open_consultations(self, person_id: str) -> Sequence[str]:
        return self.open.get(person_id, [])


@pytest.fixture
def cases() -> Consultations:
    return Consultations()


@pytest.fixture
def telegram(directory: ExpertDirectory, cases: Consultations) -> TelegramInbound:
    return TelegramInbound(SECRET, directory, MemoryDedupe(), cases.message_lookup, cases.open_consultations)


def user(user_id: int) -> Dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": "Jonas",
        "last_name": "Weber",
        "username": "jonasweber",
        "language_code": "de",
    }


def chat(chat_id: int) -> Dict[str, Any]:
    return {"id": chat_id, "first_name": "Jonas", "last_name": "Weber", "username": "jonasweber", "type": "private"}


def our_message(chat_id: int = JONAS) -> Dict[str, Any]:
    """The consultation message as backline.experts.telegram sends it (inline keyboard included)."""
    return {
        "message_id": OUR_MESSAGE,
        "from": BOT,
        "chat": chat(chat_id),
        "date": 1764000000,
        "text": "🟠 HIGH · Consultation: refund_request",
        "reply_markup": reply_markup(CONSULTATION),
    }


def press(action: str, from_id: int = JONAS, update_id: int = 900000001) -> Dict[str, Any]:
    """A callback_query update for one of our buttons; its data is taken from the keyboard we send."""
    keyboard = [b for row in reply_markup(CONSULTATION)["inline_keyboard"] for b in row]
    data = next(b["callback_data"] for b in keyboard if b["callback_data"].startswith(f"{action}:"))
    return {
        "update_id": update_id,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": user(from_id),
            "message": our_message(),
            "chat_instance": "-7328749287349",
            "data": data,
        },
    }


def text_message(
    text: str, from_id: int = JONAS, update_id: int = 900000002, reply_to: Optional[int] = OUR_MESSAGE
) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "message_id": 57,
        "from": user(from_id),
        "chat": chat(from_id),
        "date": 1764000100,
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = {**our_message(from_id), "message_id": reply_to}
    return {"update_id": update_id, "message": message}


def deliver(telegram: TelegramInbound, update: Any, secret: Optional[str] = SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return telegram.handle(json.dumps(update).encode(), headers)


# --- the secret token -----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "kestrel_Backline-webhook_012345678", SECRET + "x", SECRET.upper()])
def test_requests_without_the_secret_token_are_refused(telegram: TelegramInbound, secret: Optional[str]) -> None:
    result = deliver(telegram, press("approve"), secret=secret)
    assert (result.status, result.reply, result.reason) == (401, None, "bad_secret")


def test_the_secret_header_name_is_case_insensitive(telegram: TelegramInbound) -> None:
    body = json.dumps(press("approve")).encode()
    assert telegram.handle(body, {"x-telegram-bot-api-secret-token": SECRET}).reply is not None


def test_a_secret_is_required() -> None:
    with pytest.raises(ValueError, match="secret_token"):
        TelegramInbound("", load_experts(PROJECT_ROOT / "experts.yml"), MemoryDedupe(), lambda c, m: None, lambda p: [])


# --- buttons --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action, label", [("approve", "Approve"), ("deny", "Deny"), ("take_over", "Take over")])
def test_a_button_press_is_a_reply_and_is_answered(telegram: TelegramInbound, action: str, label: str) -> None:
    result = deliver(telegram, press(action))
    assert result.status == 200
    assert result.body == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
        "text": f"{label}: received",
        "show_alert": False,
    }
    reply = result.reply
    assert (reply.consultation_id, reply.actor, reply.source, reply.action) == (
        CONSULTATION,
        "jonas",
        "telegram",
        action,
    )
    assert reply.raw["chat_id"] == JONAS and reply.raw["message_id"] == OUR_MESSAGE
    assert reply.dedupe_key == "telegram:update:900000001"


def test_a_redelivered_update_carries_one_delivery_key(telegram: TelegramInbound) -> None:
    # The hub records the key with the reply in one transaction (test_consult_replies, test_hub_loop).
    first, again = deliver(telegram, press("approve")), deliver(telegram, press("approve"))
    assert first.reply.dedupe_key == again.reply.dedupe_key == "telegram:update:900000001"
    assert deliver(telegram, press("approve", update_id=900000009)).reply.dedupe_key == "telegram:update:900000009"


def test_a_redelivered_update_without_a_reply_is_answered_once(telegram: TelegramInbound) -> None:
    first, again = (deliver(telegram, press("approve", from_id=STRANGER)) for _ in range(2))
    assert (first.reason, again.reason, again.body) == ("unknown_user", "duplicate", None)


def test_a_stranger_pressing_a_button_is_told_and_nothing_is_recorded(telegram: TelegramInbound) -> None:
    result = deliver(telegram, press("approve", from_id=STRANGER))
    assert (result.reply, result.reason) == (None, "unknown_user")
    assert result.body["method"] == "answerCallbackQuery" and result.body["show_alert"] is True
    assert str(STRANGER) in result.body["text"] and len(result.body["text"]) <= 200


def test_the_answer_button_asks_for_a_reply(telegram: TelegramInbound) -> None:
    result = deliver(telegram, press("answer"))
    assert result.reply is None
    assert result.body == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
        "text": ANSWER_PROMPT,
        "show_alert": True,
    }


def test_the_close_button_asks_for_the_resolution(telegram: TelegramInbound) -> None:
    result = deliver(telegram, press("close"))
    assert (result.reply, result.reason) == (None, "close_prompt")
    assert result.body == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
        "text": CLOSE_PROMPT,
        "show_alert": True,
    }
    assert len(CLOSE_PROMPT) <= 200  # what answerCallbackQuery shows


def test_a_close_replying_to_our_message_closes_its_consultation(telegram: TelegramInbound) -> None:
    result = deliver(telegram, text_message("Closing:\nYour replacement ships tomorrow.\n// RMA 5521"))
    reply = result.reply
    assert (reply.consultation_id, reply.actor, reply.action, result.body) == (CONSULTATION, "jonas", "close", None)
    recorded = reply.to_reply("handoff")
    assert (recorded.action, recorded.customer_text, recorded.internal_notes) == (
        "close",
        "Your replacement ships tomorrow.",
        ("RMA 5521",),
    )


def test_a_foreign_button_is_answered_and_ignored(telegram: TelegramInbound) -> None:
    update = press("approve")
    update["callback_query"]["data"] = "vote:42"
    result = deliver(telegram, update)
    assert result.reply is None and result.body["method"] == "answerCallbackQuery"


# --- messages -------------------------------------------------------------------------------------


def test_a_reply_to_our_message_answers_its_consultation(telegram: TelegramInbound, cases: Consultations) -> None:
    cases.open["jonas"] = [OTHER, CONSULTATION]  # the reply, not the open list, decides
    result = deliver(telegram, text_message("hand back: order status, invoices\nAll done!\n// refunded 80 EUR"))
    assert cases.asked == [(str(JONAS), str(OUR_MESSAGE))]
    reply = result.reply
    assert (reply.consultation_id, reply.actor, reply.action, result.body) == (CONSULTATION, "jonas", "hand_back", None)
    recorded = reply.to_reply("handoff")
    assert recorded.allowed_followups == ("order_status", "invoices")
    assert recorded.customer_text == "All done!" and recorded.internal_notes == ("refunded 80 EUR",)
    assert recorded.amounts == ()  # the amount was in the internal note
    assert reply.raw == {"user_id": JONAS, "chat_id": JONAS, "message_id": 57, "reply_to_message_id": OUR_MESSAGE}


def test_a_message_goes_to_the_senders_only_open_consultation(telegram: TelegramInbound, cases: Consultations) -> None:
    cases.open["jonas"] = [OTHER]
    reply = deliver(telegram, text_message("The customer may keep the Cam 2.", reply_to=None)).reply
    assert (reply.consultation_id, reply.action, reply.free_text) == (OTHER, "message", True)
    assert reply.to_reply("consult").action == "answer"
    assert deliver(telegram, text_message("Unrelated", reply_to=7, update_id=900000003)).reply.consultation_id == OTHER


@pytest.mark.parametrize("open_ids, problem", [([], "no open consultation"), ([OTHER, CONSULTATION], "2 open")])
def test_without_a_single_target_the_expert_is_asked_to_reply_to_a_message(
    telegram: TelegramInbound, cases: Consultations, open_ids: List[str], problem: str
) -> None:
    cases.open["jonas"] = open_ids
    result = deliver(telegram, text_message("approve", reply_to=None))
    assert (result.reply, result.reason) == (None, "no_consultation")
    assert result.body["method"] == "sendMessage" and result.body["chat_id"] == JONAS
    assert problem in result.body["text"] and result.body["reply_parameters"]["message_id"] == 57


def test_a_stranger_writing_is_told_their_id_and_nothing_is_recorded(telegram: TelegramInbound) -> None:
    result = deliver(telegram, text_message("approve", from_id=STRANGER))
    assert (result.reply, result.reason) == (None, "unknown_user")
    assert result.body["method"] == "sendMessage" and result.body["chat_id"] == STRANGER
    assert str(STRANGER) in result.body["text"]


def test_an_unknown_followup_is_explained(telegram: TelegramInbound) -> None:
    result = deliver(telegram, text_message("hand back\nallowed: everything"))
    assert result.reply is None and result.reason == "invalid_reply" and "everything" in result.body["text"]


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 900000010, "edited_message": text_message("approve")["message"]},
        {"update_id": 900000011, "message": {**text_message("x")["message"], "from": BOT}},
        {
            "update_id": 900000012,
            "message": {k: v for k, v in text_message("x")["message"].items() if k != "text"}
            | {"photo": [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}]},
        },
        {"update_id": 900000013, "my_chat_member": {"chat": chat(JONAS), "from": user(JONAS), "date": 1764000000}},
    ],
)
def test_other_updates_are_acknowledged_and_ignored(telegram: TelegramInbound, update: Dict[str, Any]) -> None:
    result = deliver(telegram, update)
    assert (result.status, result.reply, result.body) == (200, None, None) and result.reason.startswith("ignored")


def test_commands_are_not_replies(telegram: TelegramInbound) -> None:
    result = deliver(telegram, text_message("/start", reply_to=None))
    assert result.reply is None and result.reason == "command" and "Jonas Weber" in result.body["text"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "abc"}'])
def test_malformed_updates_are_bad_requests(telegram: TelegramInbound, body: bytes) -> None:
    result = telegram.handle(body, {"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert (result.status, result.reply) == (400, None)


# --- feedback buttons (verdict, override reason) ----------------------------------------------------


def feedback_press(data: str, from_id: int = JONAS, update_id: int = 900000050) -> Dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": "feedback-query-1",
            "from": user(from_id),
            "message": {
                **our_message(),
                "message_id": 61,
                "reply_markup": feedback_markup(CONSULTATION, verdict=True, reasons=True),
            },
            "chat_instance": "-7328749287349",
            "data": data,
        },
    }


@pytest.mark.parametrize(
    "data, verdict, reason",
    [(f"v:not_needed:{CONSULTATION}", "not_needed", None), (f"r:tone:{CONSULTATION}", None, "tone")],
)
def test_a_feedback_press_is_feedback_with_the_updates_key(
    telegram: TelegramInbound, data: str, verdict: Optional[str], reason: Optional[str]
) -> None:
    first, again = deliver(telegram, feedback_press(data)), deliver(telegram, feedback_press(data))
    for result in (first, again):  # not marked here: the hub records the key with the feedback
        assert result.reply is None and result.reason.startswith("feedback_")
        given = result.feedback
        assert (given.consultation_id, given.actor, given.source, given.verdict, given.reason) == (
            CONSULTATION,
            "jonas",
            "telegram",
            verdict,
            reason,
        )
        assert given.dedupe_key == "telegram:update:900000050" and given.raw["message_id"] == 61
    assert first.body["method"] == "answerCallbackQuery" and first.body["callback_query_id"] == "feedback-query-1"


def test_a_stranger_pressing_a_feedback_button_is_told(telegram: TelegramInbound) -> None:
    result = deliver(telegram, feedback_press(f"v:needed:{CONSULTATION}", from_id=STRANGER))
    assert (result.feedback, result.reason, result.body["show_alert"]) == (None, "unknown_user", True)
