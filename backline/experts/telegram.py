"""Telegram Bot API (requests): HTML message with brief and draft, an inline keyboard, the transcript as replies;
after the decision, the feedback question with verdict and override-reason buttons (``v:<verdict>:<id>``,
``r:<reason>:<id>``)."""

from __future__ import annotations

import html
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import requests

from backline.experts.base import (
    ACTION_LABELS,
    ACTIONS,
    ChannelConfigError,
    ChannelError,
    Delivery,
    ExpertChannel,
    Notification,
    brief_lines,
    chunk_lines,
    feedback_lines,
    headline,
    sla_text,
    transcript_lines,
)
from backline.experts.slack import parse_retry_after
from backline.governance.config import governance
from backline.routing.directory import Person

ENV_TOKEN = "BACKLINE_TELEGRAM_BOT_TOKEN"
ENV_API_URL = "BACKLINE_TELEGRAM_API_URL"
DEFAULT_API_URL = "https://api.telegram.org"
MESSAGE_LIMIT = 4096
"""Telegram's limit on a message's text (UTF-16 code units); we hold the HTML source to it, which is stricter."""
CALLBACK_DATA_LIMIT = 64
MAX_TRANSCRIPT_MESSAGES = 5
KEYBOARD_ROWS = (("approve", "deny"), ("answer", "take_over"), ("close",))
FEEDBACK_KINDS = {"v": "verdict", "r": "reason"}
"""Feedback callback data: ``v:<verdict key>:<id>`` and ``r:<reason key>:<id>``."""
REASONS_PER_ROW = 3


def callback_data(action: str, consultation_id: str) -> str:
    """'approve:<id>' etc.; Telegram allows at most 64 bytes."""
    data = f"{action}:{consultation_id}"
    if len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
        raise ChannelError(
            "telegram",
            "callback_data_too_long",
            f"callback data {data!r} exceeds Telegram's {CALLBACK_DATA_LIMIT} bytes",
            transient=False,
        )
    return data


def feedback_data(kind: str, key: str, consultation_id: str) -> str:
    """``v:needed:<id>`` / ``r:tone:<id>``: a feedback button's callback data (at most 64 bytes)."""
    prefix = next(short for short, name in FEEDBACK_KINDS.items() if name == kind)
    return callback_data(f"{prefix}:{key}", consultation_id)


def parse_feedback_data(data: str) -> Optional[Tuple[str, str, str]]:
    """``(kind, key, consultation_id)`` (kind ``verdict`` | ``reason``) from `feedback_data`, else None."""
    prefix, _, rest = str(data).partition(":")
    key, sep, consultation_id = rest.partition(":")
    if prefix not in FEEDBACK_KINDS or not sep or not key or not consultation_id:
        return None
    return FEEDBACK_KINDS[prefix], key, consultation_id


def feedback_markup(consultation_id: str, *, verdict: bool, reasons: bool) -> Dict[str, Any]:
    """The inline keyboard of the feedback question: a row of verdicts, then the override reasons."""
    rules = governance()
    rows: List[List[Dict[str, str]]] = []
    if verdict:
        rows.append(
            [
                {"text": label, "callback_data": feedback_data("verdict", key, consultation_id)}
                for key, label in rules.verdicts.items()
            ]
        )
    if reasons:
        buttons = [
            {"text": label, "callback_data": feedback_data("reason", key, consultation_id)}
            for key, label in rules.override_reasons.items()
        ]
        rows += [buttons[i : i + REASONS_PER_ROW] for i in range(0, len(buttons), REASONS_PER_ROW)]
    return {"inline_keyboard": rows}


def parse_callback_data(data: str) -> tuple:
    """(action, consultation_id) from callback data made by `callback_data`; ValueError otherwise."""
    action, sep, consultation_id = str(data).partition(":")
    if not sep or action not in ACTIONS or not consultation_id:
        raise ValueError(f"not a Backline callback: {data!r}")
    return action, consultation_id


def reply_markup(consultation_id: str) -> Dict[str, Any]:
    return {
        "inline_keyboard": [
            [{"text": ACTION_LABELS[a], "callback_data": callback_data(a, consultation_id)} for a in row]
            for row in KEYBOARD_ROWS
        ]
    }


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _e(text: Any) -> str:
    return html.escape(str(text), quote=False)


def _render(n: Notification, values: Mapping[str, str]) -> str:
    lines = [f"<b>{_e(headline(n))}</b>"]
    meta = [f"consultation <code>{_e(n.consultation_id)}</code>", f"conversation <code>{_e(n.conversation_id)}</code>"]
    if n.queue:
        meta.append(f"queue {_e(n.queue)}")
    lines.append(" · ".join(meta))
    if n.reasons:
        lines.append("Why: " + _e(", ".join(n.reasons)))
    sla = sla_text(n)
    if sla:
        lines.append(_e(sla))
    lines.append("")
    lines += [f"<b>{_e(label)}:</b> {_e(values[label])}" for label, _ in brief_lines(n.brief)]
    if values.get("draft"):
        lines += ["", "<b>AI draft</b>", _e(values["draft"])]
    if n.link:
        lines += ["", f'<a href="{html.escape(n.link, quote=True)}">Open in dashboard</a>']
    return "\n".join(lines)


def render_message(notification: Notification, limit: int = MESSAGE_LIMIT) -> str:
    """The HTML message, escaped, shortened (draft first, then the customer's claim) to fit ``limit``."""
    values = {label: text for label, text in brief_lines(notification.brief)}
    values["draft"] = notification.ai_draft or ""
    for key in ("draft", "Customer says", "Risk", "Product"):
        values[key] = _shrink(lambda v: _render(notification, {**values, key: v}), values[key], limit)  # noqa: B023  (called at once)
    text = _render(notification, values)
    if utf16_len(text) > limit:
        raise ChannelError("telegram", "message_too_long", "the message does not fit Telegram's limit", transient=False)
    return text


def _shrink(render: Callable[[str], str], value: str, limit: int) -> str:
    """The longest prefix of ``value`` (plus '…') whose rendering fits ``limit``; '' if none does."""
    if utf16_len(render(value)) <= limit:
        return value
    low, high = 0, len(value) - 1  # binary search on the prefix length: escaping makes growth uneven
    while low < high:
        middle = (low + high + 1) // 2
        if utf16_len(render(value[:middle] + "…")) <= limit:
            low = middle
        else:
            high = middle - 1
    return value[:low] + "…" if low and utf16_len(render(value[:low] + "…")) <= limit else ""


def transcript_messages(notification: Notification, limit: int = MESSAGE_LIMIT) -> List[str]:
    """The transcript as HTML replies, most recent turns kept when it is very long."""
    budget = limit - 100  # room for the title line
    lines = []
    for speaker, text in transcript_lines(notification.transcript):
        prefix = f"<b>{_e(speaker)}:</b> "
        lines.append(prefix + _e(_shrink(lambda v: prefix + _e(v), text, budget)))  # noqa: B023  (called at once)
    if not lines:
        return []
    chunks = chunk_lines(lines, budget, measure=utf16_len)[-MAX_TRANSCRIPT_MESSAGES:]
    return [f"<b>Transcript</b> ({len(lines)} messages)\n{chunks[0]}"] + chunks[1:]


_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class TelegramChannel(ExpertChannel):
    """Sends to the person's chat id through the Bot API at ``base_url`` (public or self-hosted)."""

    kind = "telegram"

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        session: Optional[requests.Session] = None,
    ) -> None:
        if not token:
            raise ChannelConfigError(
                self.kind, f"Telegram channel is not configured: set {ENV_TOKEN} (the bot token from @BotFather)"
            )
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> "TelegramChannel":
        """Configured from BACKLINE_TELEGRAM_BOT_TOKEN and BACKLINE_TELEGRAM_API_URL (default the public API)."""
        env = os.environ if env is None else env
        return cls(env.get(ENV_TOKEN, ""), env.get(ENV_API_URL) or DEFAULT_API_URL, timeout)

    def send(self, notification: Notification) -> Delivery:
        chat_id = self.address(notification.person)
        first = self.call(
            "sendMessage",
            {
                "chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                "text": render_message(notification),
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
                "reply_markup": reply_markup(notification.consultation_id),
            },
        )
        message_id = str(first["message_id"])
        warnings: List[str] = []
        replies: List[str] = []
        for text in transcript_messages(notification):
            try:
                reply = self.call(
                    "sendMessage",
                    {
                        "chat_id": first.get("chat", {}).get("id", chat_id),
                        "text": text,
                        "parse_mode": "HTML",
                        "reply_parameters": {"message_id": int(message_id), "allow_sending_without_reply": True},
                    },
                )
                replies.append(str(reply["message_id"]))
            except ChannelError as error:  # the message is out: report, do not resend it
                warnings.append(f"transcript not sent: {error.message}")
                break
        return Delivery(
            channel=self.kind,
            person_id=notification.person.id,
            destination=chat_id,
            message_id=message_id,
            thread_id=message_id,
            warnings=tuple(warnings),
            extra={"transcript_message_ids": replies},
        )

    def post(self, person: Person, text: str, thread_id: Optional[str] = None) -> Delivery:
        chat_id = self.address(person)
        payload: Dict[str, Any] = {
            "chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
            "text": text[:MESSAGE_LIMIT],
        }
        if thread_id and thread_id.isdigit():
            payload["reply_parameters"] = {"message_id": int(thread_id), "allow_sending_without_reply": True}
        sent = self.call("sendMessage", payload)
        return Delivery(
            channel=self.kind,
            person_id=person.id,
            destination=chat_id,
            message_id=str(sent["message_id"]),
            thread_id=thread_id,
        )

    def ask_feedback(
        self,
        person: Person,
        consultation_id: str,
        *,
        verdict: bool,
        reasons: bool,
        thread_id: Optional[str] = None,
    ) -> Delivery:
        """The feedback question with its inline keyboard, as a reply to the consultation's message."""
        chat_id = self.address(person)
        lines = feedback_lines(consultation_id, verdict=verdict, reasons=reasons, buttons=True)
        payload: Dict[str, Any] = {
            "chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
            "text": "\n".join(html.escape(line, quote=False) for line in lines),
            "parse_mode": "HTML",
            "reply_markup": feedback_markup(consultation_id, verdict=verdict, reasons=reasons),
        }
        if thread_id and thread_id.isdigit():
            payload["reply_parameters"] = {"message_id": int(thread_id), "allow_sending_without_reply": True}
        sent = self.call("sendMessage", payload)
        return Delivery(
            channel=self.kind,
            person_id=person.id,
            destination=chat_id,
            message_id=str(sent["message_id"]),
            thread_id=thread_id,
            extra={"feedback": True},
        )

    def call(self, method: str, payload: Mapping[str, Any]) -> Dict[str, Any]:
        """POST {base}/bot{token}/{method}; the ``result`` on success, a classified `ChannelError` otherwise."""
        url = f"{self.base_url}/bot{self.token}/{method}"
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.Timeout as error:
            raise ChannelError(
                self.kind, "timeout", f"{method} timed out: {self._redact(error)}", transient=True
            ) from error
        except requests.RequestException as error:
            raise ChannelError(
                self.kind, "connection_error", f"cannot reach the Bot API: {self._redact(error)}", transient=True
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return body["result"]
        status = response.status_code
        description = str(body.get("description") or response.reason or "no description")
        parameters = body.get("parameters") or {}
        retry_after = parse_retry_after(parameters.get("retry_after", response.headers.get("Retry-After")))
        transient = status == 429 or status >= 500 or (status == 200 and not body)
        code = "ratelimited" if status == 429 else f"http_{status}"
        detail = f"{method} failed: {description} (HTTP {status})"
        if "migrate_to_chat_id" in parameters:
            detail += f"; the chat moved to {parameters['migrate_to_chat_id']}"
        raise ChannelError(
            self.kind, code, detail, transient=transient, retry_after=retry_after if transient else None, status=status
        )

    def _redact(self, error: Exception) -> str:
        """The error text without the bot token (requests puts the URL, token included, in its messages)."""
        return _TOKEN_IN_URL.sub("/bot<token>/", str(error)).replace(self.token, "<token>")
