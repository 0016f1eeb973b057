"""Slack → hub: verified interactivity (button clicks) and Events API callbacks (thread replies).

Each entry point takes the raw body and headers and returns a `SlackResult`: what the HTTP
handler answers at once (Slack wants it within 3 seconds) and the `ExpertReply` to hand off.
Requests are verified with the app's signing secret (HMAC-SHA256 of ``v0:timestamp:body``,
timestamp within 5 minutes); deliveries are de-duplicated by ``event_id`` (events, retried
with ``X-Slack-Retry-Num``) or by user and ``action_ts`` (clicks): a reply carries its key as
``dedupe_key`` and the hub records the key in the transaction that records the reply, so a retry
after a failure is applied and a retry after success is not; deliveries without a reply are
marked here. Only people of experts.yml
with a Slack ``user_id`` may answer; others get an ephemeral message.

The Answer button records nothing: it asks for the answer in the message's thread, where a
reply (optionally starting with ``answer:``) is read by `backline.hub.guidance`.
"""
from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from slack_sdk.signature import Clock, SignatureVerifier

from backline.consult.replies import ReplyError
from backline.experts.slack import ACTION_IDS
from backline.hub.dedupe import DedupeStore
from backline.hub.guidance import ExpertReply, person_for
from backline.routing.experts import ExpertDirectory

ACTION_FOR = {action_id: action for action, action_id in ACTION_IDS.items()}
MAX_AGE = 60 * 5
"""Seconds a request timestamp may be off (Slack's recommendation, as slack_sdk checks it)."""
THREAD_SUBTYPES = (None, "thread_broadcast")
"""Message events that are a person writing; edits, deletions, joins and bot posts are not."""
ANSWER_PROMPT = ("Reply in this message's thread with your answer for the customer. "
                 "Lines starting with // stay internal.")


@dataclass(frozen=True)
class Ephemeral:
    """A message only one Slack user sees: POST `payload()` to ``response_url`` when there is one,
    else call the Web API's ``chat.postEphemeral`` with it."""

    text: str
    response_url: Optional[str] = None
    channel: Optional[str] = None
    user: Optional[str] = None
    thread_ts: Optional[str] = None

    def payload(self) -> Dict[str, Any]:
        if self.response_url:
            return {"response_type": "ephemeral", "replace_original": False, "text": self.text}
        payload = {"channel": self.channel, "user": self.user, "text": self.text}
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass(frozen=True)
class SlackResult:
    """Answer ``status`` with ``body`` (JSON; empty when None) now; then hand off ``reply`` and send ``ephemeral``.
    ``reason`` says why nothing was handed off (for the log)."""

    status: int
    body: Optional[Dict[str, Any]] = None
    reply: Optional[ExpertReply] = None
    ephemeral: Optional[Ephemeral] = None
    reason: str = ""


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackInbound:
    """``thread_lookup(channel_id, thread_ts)``: the consultation whose Slack message started that
    thread, or None; ``bot_user_id``: the app's own user (its messages are ignored);
    ``clock``: Unix time in seconds."""

    def __init__(
        self,
        signing_secret: str,
        directory: ExpertDirectory,
        dedupe: DedupeStore,
        thread_lookup: Callable[[str, str], Optional[str]],
        *,
        bot_user_id: Optional[str] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_secret:
            raise ValueError("Slack inbound needs the app's signing secret (Basic Information > Signing Secret)")
        self.verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))
        self.directory = directory
        self.dedupe = dedupe
        self.thread_lookup = thread_lookup
        self.bot_user_id = bot_user_id
        self.clock = clock

    def check(self, body: bytes, headers: Mapping[str, str]) -> Optional[str]:
        """None when the request is signed by Slack and fresh; otherwise why not."""
        lowered = {str(k).lower(): v for k, v in headers.items()}
        timestamp, signature = lowered.get("x-slack-request-timestamp"), lowered.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing_signature"
        try:
            age = abs(self.clock() - int(timestamp))
        except ValueError:
            return "bad_timestamp"
        if age > MAX_AGE:
            return "stale_timestamp"
        return None if self.verifier.is_valid(body, timestamp, signature) else "bad_signature"

    def interactivity(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        """The Interactivity Request URL: a ``block_actions`` click on one of our buttons."""
        refused = self._refuse(body, headers)
        if refused:
            return refused
        try:
            payload = json.loads(urllib.parse.parse_qs(body.decode("utf-8"))["payload"][0])
        except (KeyError, ValueError, UnicodeDecodeError):
            return SlackResult(400, {"error": "expected a form field 'payload' holding JSON"}, reason="bad_payload")
        if payload.get("type") != "block_actions":
            return SlackResult(200, reason=f"ignored: {payload.get('type')}")
        click = next((a for a in payload.get("actions") or () if a.get("action_id") in ACTION_FOR), None)
        if click is None or not click.get("value") or not click.get("action_ts"):
            return SlackResult(200, reason="ignored: not a consultation button")
        user_id = str((payload.get("user") or {}).get("id") or "")
        response_url = payload.get("response_url")
        person = person_for(self.directory, "slack", user_id)
        if person is None:
            return SlackResult(200, ephemeral=Ephemeral(_unknown(user_id), response_url=response_url),
                               reason="unknown_user")
        key = f"slack:action:{user_id}:{click.get('action_ts')}"
        action = ACTION_FOR[click["action_id"]]
        if action == "answer":
            if self.dedupe.seen_before(key):
                return SlackResult(200, reason="duplicate")
            return SlackResult(200, ephemeral=Ephemeral(ANSWER_PROMPT, response_url=response_url),
                               reason="answer_prompt")
        container = payload.get("container") or {}
        message_ts = container.get("message_ts") or (payload.get("message") or {}).get("ts")
        raw = {
            "user_id": user_id,
            "channel": container.get("channel_id") or (payload.get("channel") or {}).get("id"),
            "message_ts": message_ts,
            "thread_ts": container.get("thread_ts") or message_ts,
            "response_url": response_url,
            "trigger_id": payload.get("trigger_id"),
            "action_ts": click.get("action_ts"),
        }
        reply = ExpertReply(str(click["value"]), person.id, "slack", action, dedupe_key=key, raw=raw)
        return SlackResult(200, reply=reply)

    def events(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        """The Events API Request URL: the URL check, and messages in the thread of a consultation."""
        refused = self._refuse(body, headers)
        if refused:
            return refused
        try:
            payload = json.loads(body)
        except ValueError:
            return SlackResult(400, {"error": "expected a JSON body"}, reason="bad_payload")
        if payload.get("type") == "url_verification":
            return SlackResult(200, {"challenge": payload.get("challenge")}, reason="url_verification")
        event = payload.get("event") or {}
        if payload.get("type") != "event_callback" or event.get("type") != "message" or not payload.get("event_id"):
            return SlackResult(200, reason=f"ignored: {payload.get('type')}/{event.get('type')}")
        if event.get("subtype") not in THREAD_SUBTYPES or event.get("bot_id") or (
                self.bot_user_id and event.get("user") == self.bot_user_id):
            return SlackResult(200, reason="ignored: not a person's message")
        channel, thread_ts, user_id = event.get("channel"), event.get("thread_ts"), str(event.get("user") or "")
        if not thread_ts or thread_ts == event.get("ts"):
            return SlackResult(200, reason="ignored: not in a thread")
        consultation_id = self.thread_lookup(str(channel), str(thread_ts))
        if consultation_id is None:
            return SlackResult(200, reason="ignored: not a consultation thread")
        person = person_for(self.directory, "slack", user_id)
        if person is None:
            return SlackResult(200, ephemeral=Ephemeral(_unknown(user_id), channel=channel, user=user_id,
                                                        thread_ts=thread_ts), reason="unknown_user")
        key = f"slack:event:{payload.get('event_id')}"
        lowered = {str(k).lower(): v for k, v in headers.items()}
        raw = {
            "user_id": user_id,
            "channel": channel,
            "ts": event.get("ts"),
            "thread_ts": thread_ts,
            "event_id": payload.get("event_id"),
            "retry_num": lowered.get("x-slack-retry-num"),
        }
        try:
            reply = ExpertReply.from_text(consultation_id, person.id, "slack", unescape(event.get("text") or ""),
                                          dedupe_key=key, raw=raw)
        except ReplyError as error:
            if self.dedupe.seen_before(key):
                return SlackResult(200, reason="duplicate")
            return SlackResult(200, ephemeral=Ephemeral(f"Not recorded: {error}", channel=channel, user=user_id,
                                                        thread_ts=thread_ts), reason="invalid_reply")
        return SlackResult(200, reply=reply)

    def _refuse(self, body: bytes, headers: Mapping[str, str]) -> Optional[SlackResult]:
        problem = self.check(body, headers)
        if problem is None:
            return None
        return SlackResult(401, {"error": "invalid or stale Slack request signature"}, reason=problem)


def unescape(text: str) -> str:
    """Slack message text as typed: Slack escapes only &, < and >."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _unknown(user_id: str) -> str:
    return (f"Not recorded: your Slack user ({user_id}) is not an expert in Backline's experts.yml. "
            "Ask your Backline admin to add it.")
