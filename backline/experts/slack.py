"""Slack: a Block Kit DM with the brief and decision buttons, the transcript in its thread (slack_sdk);
after the decision, the feedback question in that thread (verdict and override-reason buttons)."""

from __future__ import annotations

import os
import socket
import urllib.error
from typing import Any, Dict, List, Mapping, Optional

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

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
    truncate,
)
from backline.governance.config import governance
from backline.routing.directory import Person

ENV_TOKEN = "BACKLINE_SLACK_BOT_TOKEN"
ENV_API_URL = "BACKLINE_SLACK_API_URL"
ACTION_IDS = {action: f"consult_{action}" for action in ACTIONS}
"""Button action_id per reply action: consult_approve, consult_deny, consult_answer, consult_take_over,
consult_close."""
ACTIONS_BLOCK_ID = "consult_actions"
VERDICT_PREFIX = "verdict_"
"""Verdict buttons: ``verdict_<key>`` for each of governance.yml's verdicts (verdict_needed,
verdict_not_needed, verdict_too_late); the value is the consultation id."""
REASON_PREFIX = "override_reason_"
"""Override-reason buttons: ``override_reason_<key>`` for each of governance.yml's override reasons."""
VERDICT_BLOCK_ID = "feedback_verdict"
REASON_BLOCK_ID = "feedback_reason"
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""Slack error codes worth retrying; every other ``ok: false`` error is permanent for this channel."""
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
SECTION_LIMIT = 3000
FALLBACK_TEXT_LIMIT = 3000
THREAD_CHUNK = 3500
MAX_THREAD_MESSAGES = 10
BUTTON_STYLES = {"approve": "primary", "deny": "danger"}


def escape(text: str) -> str:
    """Slack mrkdwn escaping: customer text must not ping @channel or forge links."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_blocks(notification: Notification) -> List[Dict[str, Any]]:
    """The Block Kit message: header, ids, five-field brief, AI draft, priority/SLA context, buttons."""
    n = notification
    who = f"conversation `{escape(n.conversation_id)}`"
    if n.queue:
        who += f" · queue *{escape(n.queue)}*"
    if n.reasons:
        who += " · " + ", ".join(escape(r) for r in n.reasons)
    blocks: List[Dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(headline(n), HEADER_LIMIT), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(who, SECTION_LIMIT)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": truncate(f"*{label}*\n{escape(text)}", FIELD_LIMIT)}
                for label, text in brief_lines(n.brief)
            ],
        },
    ]
    if n.ai_draft:
        draft = truncate(f"*AI draft*\n{escape(n.ai_draft)}", SECTION_LIMIT)
        blocks.append({"type": "section", "block_id": "ai_draft", "text": {"type": "mrkdwn", "text": draft}})
    context = [f"Priority: *{n.priority}*", f"mode: {n.mode}", f"consultation `{escape(n.consultation_id)}`"]
    sla = sla_text(n)
    if sla:
        context.insert(1, sla)
    if n.link:
        context.append(f"<{n.link}|open in dashboard>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    buttons = []
    for action in ACTIONS:
        button: Dict[str, Any] = {
            "type": "button",
            "action_id": ACTION_IDS[action],
            "text": {"type": "plain_text", "text": ACTION_LABELS[action]},
            "value": n.consultation_id,
        }
        if action in BUTTON_STYLES:
            button["style"] = BUTTON_STYLES[action]
        buttons.append(button)
    blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons})
    return blocks


def feedback_blocks(consultation_id: str, *, verdict: bool, reasons: bool) -> List[Dict[str, Any]]:
    """The feedback question: verdict buttons and, when the draft was overridden without a reason,
    override-reason buttons (labels from governance.yml; each button's value is the consultation id)."""
    rules = governance()
    blocks: List[Dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"Consultation `{escape(consultation_id)}` is closed. Thank you!"},
        }
    ]
    rows = []
    if verdict:
        rows.append((VERDICT_BLOCK_ID, "*Was this escalation needed?*", VERDICT_PREFIX, rules.verdicts))
    if reasons:
        rows.append((REASON_BLOCK_ID, "*You changed the AI's draft: why?*", REASON_PREFIX, rules.override_reasons))
    for block_id, question, prefix, choices in rows:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": question}})
        buttons = [
            {
                "type": "button",
                "action_id": f"{prefix}{key}",
                "text": {"type": "plain_text", "text": truncate(label, 75)},
                "value": consultation_id,
            }
            for key, label in list(choices.items())[:25]
        ]
        blocks.append({"type": "actions", "block_id": block_id, "elements": buttons})
    hint = "Or reply in this thread with `verdict: ...` or `reason: ...` (e.g. `reason: other - the text`)."
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": hint}]})
    return blocks


def parse_feedback_action(action_id: str) -> Optional[tuple]:
    """``("verdict", key)`` or ``("reason", key)`` for a feedback button's action_id, else None."""
    for kind, prefix in (("verdict", VERDICT_PREFIX), ("reason", REASON_PREFIX)):
        if action_id.startswith(prefix) and len(action_id) > len(prefix):
            return kind, action_id[len(prefix) :]
    return None


def transcript_messages(notification: Notification) -> List[str]:
    """The transcript as thread messages (mrkdwn), the most recent turns kept when it is very long."""
    lines = [f"*{speaker}:* {escape(text)}" for speaker, text in transcript_lines(notification.transcript)]
    if not lines:
        return []
    chunks = chunk_lines(lines, THREAD_CHUNK)
    omitted = len(chunks) - MAX_THREAD_MESSAGES
    chunks = chunks[-MAX_THREAD_MESSAGES:]
    title = f"*Transcript* ({len(lines)} messages" + (f", {omitted} earlier parts omitted)" if omitted > 0 else ")")
    return [f"{title}\n{chunks[0]}"] + chunks[1:]


class SlackChannel(ExpertChannel):
    """Posts to the person's Slack user id (a DM from the bot); retries are the caller's (no slack_sdk retries)."""

    kind = "slack"

    def __init__(self, token: str, base_url: Optional[str] = None, timeout: float = 10.0) -> None:
        if not token:
            raise ChannelConfigError(self.kind, f"Slack channel is not configured: set {ENV_TOKEN} (a bot token)")
        base = base_url or WebClient.BASE_URL
        self.client = WebClient(
            token=token,
            base_url=base if base.endswith("/") else base + "/",
            timeout=timeout,  # type: ignore[arg-type]
            retry_handlers=[],
        )

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> "SlackChannel":
        """Configured from BACKLINE_SLACK_BOT_TOKEN and BACKLINE_SLACK_API_URL (default: slack_sdk's)."""
        env = os.environ if env is None else env
        return cls(env.get(ENV_TOKEN, ""), env.get(ENV_API_URL) or None, timeout)

    def send(self, notification: Notification) -> Delivery:
        user_id = self.address(notification.person)
        first = self._post(
            channel=user_id,
            text=truncate(escape(notification.text), FALLBACK_TEXT_LIMIT),
            blocks=build_blocks(notification),
            unfurl_links=False,
            unfurl_media=False,
            metadata={
                "event_type": "backline_consultation",
                "event_payload": {
                    "consultation_id": notification.consultation_id,
                    "conversation_id": notification.conversation_id,
                },
            },
        )
        ts, channel_id = str(first["ts"]), str(first.get("channel") or user_id)
        warnings: List[str] = []
        transcript_ts: List[str] = []
        for text in transcript_messages(notification):
            try:
                reply = self._post(channel=channel_id, thread_ts=ts, text=text, unfurl_links=False)
                transcript_ts.append(str(reply["ts"]))
            except ChannelError as error:  # the DM is out: report, do not resend it
                warnings.append(f"transcript not posted in thread: {error.message}")
                break
        return Delivery(
            channel=self.kind,
            person_id=notification.person.id,
            destination=user_id,
            message_id=ts,
            thread_id=ts,
            warnings=tuple(warnings),
            extra={"channel_id": channel_id, "transcript_ts": transcript_ts},
        )

    def post(self, person: Person, text: str, thread_id: Optional[str] = None) -> Delivery:
        user_id = self.address(person)
        reply = self._post(channel=user_id, thread_ts=thread_id, text=escape(text), unfurl_links=False)
        return Delivery(
            channel=self.kind,
            person_id=person.id,
            destination=user_id,
            message_id=str(reply["ts"]),
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
        """The feedback buttons in the consultation's thread of the person's DM."""
        user_id = self.address(person)
        text = "\n".join(feedback_lines(consultation_id, verdict=verdict, reasons=reasons, buttons=True))
        reply = self._post(
            channel=user_id,
            thread_ts=thread_id,
            text=truncate(escape(text), FALLBACK_TEXT_LIMIT),
            blocks=feedback_blocks(consultation_id, verdict=verdict, reasons=reasons),
            unfurl_links=False,
        )
        return Delivery(
            channel=self.kind,
            person_id=person.id,
            destination=user_id,
            message_id=str(reply["ts"]),
            thread_id=thread_id,
            extra={"channel_id": str(reply.get("channel") or user_id), "feedback": True},
        )

    def _post(self, **kwargs: Any) -> Mapping[str, Any]:
        try:
            response = self.client.chat_postMessage(**kwargs)
        except SlackApiError as error:
            raise classify_api_error(error) from error
        except (socket.timeout, TimeoutError) as error:
            raise ChannelError(self.kind, "timeout", f"timed out: {error}", transient=True) from error
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            code = "timeout" if isinstance(reason, (socket.timeout, TimeoutError)) else "connection_error"
            raise ChannelError(self.kind, code, f"cannot reach Slack: {reason}", transient=True) from error
        return response.data  # type: ignore[return-value]


def classify_api_error(error: SlackApiError) -> ChannelError:
    """HTTP 5xx / 429 and Slack's transient codes are retryable (429 with Retry-After); the rest is not."""
    response = error.response
    status = getattr(response, "status_code", None)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    code = str(data.get("error") or f"http_{status}")
    headers = {str(k).lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    retry_after = parse_retry_after(headers.get("retry-after"))
    transient = code in TRANSIENT_ERRORS or status == 429 or (status is not None and status >= 500)
    return ChannelError(
        SlackChannel.kind,
        code,
        f"chat.postMessage failed: {code} (HTTP {status})",
        transient=transient,
        retry_after=retry_after if transient else None,
        status=status,
    )


def parse_retry_after(value: Any) -> Optional[float]:
    """Retry-After in seconds (header values may arrive as lists); None when absent or not a number."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0)
