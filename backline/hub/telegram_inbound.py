"""Telegram → hub: webhook updates from the experts' bot (setWebhook with ``secret_token``).

`TelegramInbound.handle` takes the raw body and headers and returns a `TelegramResult`: what
the webhook answers at once and the `ExpertReply` to hand off. Telegram runs a Bot API method
named in a webhook's JSON answer, so ``body`` carries the ``answerCallbackQuery`` that every
button press needs (or a ``sendMessage`` telling the sender why nothing was recorded): the
handler returns it as is and calls nothing itself.

A request without the configured ``X-Telegram-Bot-Api-Secret-Token`` is refused; an update is
processed once (``update_id``): a reply carries the key as ``dedupe_key`` and the hub records it in
the transaction that records the reply; other updates are marked here. The sender is the person of experts.yml whose ``chat_id`` is
the sender's user id (in a private chat, the chat id). A message answers the consultation whose
message it replies to, else the sender's only open consultation.

The feedback buttons posted after a decision (``v:<verdict>:<id>``, ``r:<reason>:<id>``;
`backline.experts.telegram.feedback_markup`) become a `Feedback` with the update's key; the hub
records it (the presser's queues checked) and the answerCallbackQuery says what was recorded.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from backline import limits
from backline.consult.replies import ReplyError
from backline.experts.base import ACTION_LABELS
from backline.experts.telegram import parse_callback_data, parse_feedback_data
from backline.hub.dedupe import DedupeStore
from backline.hub.feedback import Feedback
from backline.hub.guidance import ExpertReply, person_for
from backline.routing.directory import ExpertDirectory

SECRET_HEADER = "x-telegram-bot-api-secret-token"
ANSWER_PROMPT = "Reply to this message with your answer for the customer. Lines starting with // stay internal."
CLOSE_PROMPT = (
    "To close the case, reply to this message with close: and the resolution for the customer. "
    "Lines starting with // stay internal."
)
PROMPTS = {"answer": ANSWER_PROMPT, "close": CLOSE_PROMPT}
"""The buttons that need the text for the customer: what they ask for instead of recording anything."""


@dataclass(frozen=True)
class TelegramResult:
    """Answer ``status`` with ``body`` (JSON; ``{}`` when None) now; then hand off ``reply``.
    ``reason`` says why nothing was handed off (for the log)."""

    status: int
    body: Optional[Dict[str, Any]] = None
    reply: Optional[ExpertReply] = None
    reason: str = ""
    feedback: Optional[Feedback] = None
    """A verdict or override-reason press, to record (``body`` then says what was recorded)."""


def answer_callback(callback_query_id: str, text: str, alert: bool = False) -> Dict[str, Any]:
    """A webhook answer that calls answerCallbackQuery (stops the button's spinner, shows ``text``)."""
    return {
        "method": "answerCallbackQuery",
        "callback_query_id": callback_query_id,
        "text": text[:200],
        "show_alert": alert,
    }


def send_message(chat_id: Any, text: str, reply_to: Optional[int] = None) -> Dict[str, Any]:
    """A webhook answer that calls sendMessage, as a reply to message ``reply_to`` when given."""
    call: Dict[str, Any] = {"method": "sendMessage", "chat_id": chat_id, "text": text}
    if reply_to is not None:
        call["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
    return call


class TelegramInbound:
    """``message_lookup(chat_id, message_id)``: the consultation our message with that id in that chat
    was about, or None; ``open_consultations(person_id)``: the ids of the person's open consultations."""

    def __init__(
        self,
        secret_token: str,
        directory: ExpertDirectory,
        dedupe: DedupeStore,
        message_lookup: Callable[[str, str], Optional[str]],
        open_consultations: Callable[[str], Sequence[str]],
    ) -> None:
        if not secret_token:
            raise ValueError("Telegram inbound needs the webhook's secret_token (setWebhook secret_token)")
        self.secret_token = secret_token
        self.directory = directory
        self.dedupe = dedupe
        self.message_lookup = message_lookup
        self.open_consultations = open_consultations

    def handle(self, body: bytes, headers: Mapping[str, str]) -> TelegramResult:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        given = str(lowered.get(SECRET_HEADER) or "")
        if not hmac.compare_digest(given.encode(), self.secret_token.encode()):
            return TelegramResult(401, {"error": "missing or wrong secret token"}, reason="bad_secret")
        try:
            update = limits.json_object(body, "a JSON Update with an update_id")
            update_id = _int_id("update_id", update.get("update_id"))
            key = f"telegram:update:{update_id}"
            query = limits.object_field("callback_query", update.get("callback_query"))
            message = limits.object_field("message", update.get("message"))
            if query is not None:
                result = self._callback(query, key)
            elif message is not None:
                result = self._message(message, key)
            else:
                result = TelegramResult(200, reason="ignored: not a message or button")
        except limits.Refused as bad:
            return TelegramResult(bad.status, {"error": bad.message}, reason="bad_payload")
        if result.reply is None and result.feedback is None and self.dedupe.seen_before(key):
            return TelegramResult(200, reason="duplicate")
        return result

    def _callback(self, query: Mapping[str, Any], key: str) -> TelegramResult:
        query_id = limits.id_field("callback_query.id", query.get("id"), numbers=True)
        user_id = _int_id("from.id", (limits.object_field("from", query.get("from")) or {}).get("id"), required=False)
        person = person_for(self.directory, "telegram", user_id)
        if person is None:
            return TelegramResult(200, answer_callback(query_id, _unknown(user_id), alert=True), reason="unknown_user")
        try:
            data = limits.text_field("callback_query.data", query.get("data"), required=False) or ""
            feedback = parse_feedback_data(data)
            if feedback is not None:
                return self._feedback(query, query_id, person.id, user_id, feedback, key)
            action, consultation_id = parse_callback_data(data)
        except (ValueError, limits.Refused):
            return TelegramResult(
                200, answer_callback(query_id, "This button is not Backline's."), reason="ignored: not our button"
            )
        if action in PROMPTS:
            return TelegramResult(
                200, answer_callback(query_id, PROMPTS[action], alert=True), reason=f"{action}_prompt"
            )
        message = limits.object_field("message", query.get("message")) or {}
        raw = {
            "user_id": user_id,
            "chat_id": _int_id(
                "chat.id", (limits.object_field("chat", message.get("chat")) or {}).get("id"), required=False
            ),
            "message_id": _int_id("message_id", message.get("message_id"), required=False),
            "callback_query_id": query_id,
        }
        try:
            reply = ExpertReply(consultation_id, person.id, "telegram", action, dedupe_key=key, raw=raw)
        except ValueError:
            return TelegramResult(
                200, answer_callback(query_id, "This button is not Backline's."), reason="ignored: not our button"
            )
        return TelegramResult(200, answer_callback(query_id, f"{ACTION_LABELS[action]}: received"), reply=reply)

    def _feedback(
        self,
        query: Mapping[str, Any],
        query_id: str,
        person_id: str,
        user_id: Optional[int],
        feedback: Tuple[str, str, str],
        key: str,
    ) -> TelegramResult:
        kind, choice, consultation_id = feedback
        message = limits.object_field("message", query.get("message")) or {}
        raw = {
            "user_id": user_id,
            "chat_id": _int_id(
                "chat.id", (limits.object_field("chat", message.get("chat")) or {}).get("id"), required=False
            ),
            "message_id": _int_id("message_id", message.get("message_id"), required=False),
            "callback_query_id": query_id,
        }
        try:
            given = Feedback(
                consultation_id,
                person_id,
                "telegram",
                verdict=choice if kind == "verdict" else None,
                reason=choice if kind == "reason" else None,
                dedupe_key=key,
                raw=raw,
            )
        except ValueError:
            return TelegramResult(
                200, answer_callback(query_id, "This button is not Backline's."), reason="ignored: not our button"
            )
        return TelegramResult(200, answer_callback(query_id, "Received"), feedback=given, reason=f"feedback_{kind}")

    def _message(self, message: Mapping[str, Any], key: str) -> TelegramResult:
        sender = limits.object_field("from", message.get("from")) or {}
        chat_id = _int_id("chat.id", (limits.object_field("chat", message.get("chat")) or {}).get("id"), required=False)
        text = message.get("text")
        if sender.get("is_bot") or not isinstance(text, str):
            return TelegramResult(200, reason="ignored: not a person's text message")
        limits.text_field("text", text)
        sender_id = _int_id("from.id", sender.get("id"), required=False)
        person = person_for(self.directory, "telegram", sender_id)
        if person is None:
            return TelegramResult(200, send_message(chat_id, _unknown(sender_id)), reason="unknown_user")
        if text.startswith("/"):
            return TelegramResult(
                200,
                send_message(chat_id, f"Hello {person.name}: reply to a consultation's message to answer it."),
                reason="command",
            )
        replied = _int_id(
            "reply_to_message.message_id",
            (limits.object_field("reply_to_message", message.get("reply_to_message")) or {}).get("message_id"),
            required=False,
        )
        message_id = _int_id("message_id", message.get("message_id"), required=False)
        consultation_id = self.message_lookup(str(chat_id), str(replied)) if replied is not None else None
        if consultation_id is None:
            open_ids = list(self.open_consultations(person.id))
            if len(open_ids) != 1:
                problem = (
                    f"You have {len(open_ids)} open consultations: reply to the message of the one you mean."
                    if open_ids
                    else "You have no open consultation to answer."
                )
                return TelegramResult(
                    200, send_message(chat_id, f"Not recorded. {problem}", message_id), reason="no_consultation"
                )
            consultation_id = open_ids[0]
        raw = {"user_id": sender_id, "chat_id": chat_id, "message_id": message_id, "reply_to_message_id": replied}
        try:
            reply = ExpertReply.from_text(consultation_id, person.id, "telegram", text, dedupe_key=key, raw=raw)
        except ReplyError as error:
            return TelegramResult(
                200, send_message(chat_id, f"Not recorded: {error}", message_id), reason="invalid_reply"
            )
        return TelegramResult(200, reply=reply)


def _int_id(name: str, value: Any, *, required: bool = True) -> Optional[int]:
    """A Telegram id (update, chat, user, message): an integer of at most 64 bits; `limits.Refused` 400
    otherwise (None when absent and not ``required``)."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise limits.Refused(400, f"{name} must be an integer id, not {limits.kind(value)}")
    return value


def _unknown(user_id: Any) -> str:
    return (
        f"Not recorded: your Telegram id ({user_id}) is not an expert's chat_id in Backline's experts.yml. "
        "Ask your Backline admin to add it."
    )
