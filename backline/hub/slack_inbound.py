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

The Answer and Close buttons record nothing: they ask for the text in the message's thread, where a
reply (optionally starting with ``answer:``; ``close:`` and the resolution for the customer to close
the case) is read by `backline.hub.guidance`.

The feedback buttons posted after a decision (``verdict_<key>``, ``override_reason_<key>``, value the
consultation id; `backline.experts.slack.feedback_blocks`) become a `Feedback` with the same delivery
key: the hub records it (the clicker's queues checked) and answers with an ephemeral confirmation.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from slack_sdk.signature import Clock, SignatureVerifier

from backline import limits
from backline.consult.replies import ReplyError
from backline.consult.threads import WEBHOOK_KEY_LIMIT
from backline.experts.slack import ACTION_IDS, parse_feedback_action
from backline.hub.dedupe import DedupeStore
from backline.hub.feedback import Feedback
from backline.hub.guidance import ExpertReply, person_for
from backline.routing.directory import ExpertDirectory

ACTION_FOR = {action_id: action for action, action_id in ACTION_IDS.items()}
MAX_AGE = 60 * 5
"""Seconds a request timestamp may be off (Slack's recommendation, as slack_sdk checks it)."""
THREAD_SUBTYPES = (None, "thread_broadcast")
"""Message events that are a person writing; edits, deletions, joins and bot posts are not."""
ANSWER_PROMPT = (
    "Reply in this message's thread with your answer for the customer. Lines starting with // stay internal."
)
CLOSE_PROMPT = (
    "To close the case, reply in this message's thread with close: and the resolution for the "
    'customer (for example "close: your refund was sent today"). Lines starting with // stay internal.'
)
PROMPTS = {"answer": ANSWER_PROMPT, "close": CLOSE_PROMPT}
"""The buttons that need the text for the customer: what they ask for instead of recording anything."""


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
    feedback: Optional[Feedback] = None
    """A verdict or override-reason click, to record (and confirm with an ephemeral message)."""


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
        try:
            valid = self.verifier.is_valid(body, timestamp, signature)
        except (UnicodeDecodeError, ValueError):  # slack_sdk decodes the body first; Slack sends UTF-8
            valid = False
        return None if valid else "bad_signature"

    def interactivity(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        """The Interactivity Request URL: a ``block_actions`` click on one of our buttons."""
        return self._answer(self._interactivity, body, headers)

    def events(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        """The Events API Request URL: the URL check, and messages in the thread of a consultation."""
        return self._answer(self._events, body, headers)

    def _answer(
        self, parse: Callable[[bytes, Mapping[str, str]], SlackResult], body: bytes, headers: Mapping[str, str]
    ) -> SlackResult:
        """Verified first; a body that is signed but malformed or wrongly typed gets 400 and changes nothing."""
        refused = self._refuse(body, headers)
        if refused:
            return refused
        try:
            return parse(body, headers)
        except limits.Refused as bad:
            return SlackResult(bad.status, {"error": bad.message}, reason="bad_payload")

    def _interactivity(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            raise limits.Refused(400, "the body is not UTF-8") from None
        if not form.get("payload"):
            raise limits.Refused(400, "expected a form field 'payload' holding JSON")
        payload = limits.json_object(form["payload"][0], name="the payload")
        if payload.get("type") != "block_actions":
            return SlackResult(200, reason=f"ignored: {str(payload.get('type'))[:40]}")
        actions = payload.get("actions") or []
        if not isinstance(actions, list):
            raise limits.Refused(400, "actions must be a list")
        click = next(
            (
                a
                for a in actions
                if isinstance(a, dict)
                and isinstance(a.get("action_id"), str)
                and (a["action_id"] in ACTION_FOR or parse_feedback_action(a["action_id"]))
            ),
            None,
        )
        if click is None or not click.get("value") or not click.get("action_ts"):
            return SlackResult(200, reason="ignored: not a consultation button")
        value = limits.id_field("the button's value", click["value"])
        action_ts = limits.id_field("action_ts", click["action_ts"])
        user_id = (
            limits.id_field(
                "user.id", (limits.object_field("user", payload.get("user")) or {}).get("id"), required=False
            )
            or ""
        )
        response_url = limits.text_field("response_url", payload.get("response_url"), required=False)
        person = person_for(self.directory, "slack", user_id)
        if person is None:
            return SlackResult(
                200, ephemeral=Ephemeral(_unknown(user_id), response_url=response_url), reason="unknown_user"
            )
        key = _key(f"slack:action:{user_id}:{action_ts}")
        feedback = parse_feedback_action(click["action_id"])
        if feedback is not None:
            kind, choice = feedback
            try:
                given = Feedback(
                    value,
                    person.id,
                    "slack",
                    verdict=choice if kind == "verdict" else None,
                    reason=choice if kind == "reason" else None,
                    dedupe_key=key,
                    raw={**self._where(payload), "user_id": user_id, "response_url": response_url},
                )
            except ValueError as error:
                raise limits.Refused(400, str(error)) from None
            return SlackResult(200, feedback=given, reason=f"feedback_{kind}")
        action = ACTION_FOR[click["action_id"]]
        if action in PROMPTS:
            if self.dedupe.seen_before(key):
                return SlackResult(200, reason="duplicate")
            return SlackResult(
                200, ephemeral=Ephemeral(PROMPTS[action], response_url=response_url), reason=f"{action}_prompt"
            )
        container = limits.object_field("container", payload.get("container")) or {}
        message = limits.object_field("message", payload.get("message")) or {}
        channel = limits.object_field("channel", payload.get("channel")) or {}
        message_ts = limits.id_field("message_ts", container.get("message_ts") or message.get("ts"), required=False)
        raw = {
            "user_id": user_id,
            "channel": limits.id_field("channel", container.get("channel_id") or channel.get("id"), required=False),
            "message_ts": message_ts,
            "thread_ts": limits.id_field("thread_ts", container.get("thread_ts"), required=False) or message_ts,
            "response_url": response_url,
            "trigger_id": limits.text_field("trigger_id", payload.get("trigger_id"), required=False),
            "action_ts": action_ts,
        }
        try:
            reply = ExpertReply(value, person.id, "slack", action, dedupe_key=key, raw=raw)
        except ValueError as error:
            raise limits.Refused(400, str(error)) from None
        return SlackResult(200, reply=reply)

    @staticmethod
    def _where(payload: Mapping[str, Any]) -> Dict[str, Any]:
        """The channel and thread the clicked message is in."""
        container = limits.object_field("container", payload.get("container")) or {}
        message = limits.object_field("message", payload.get("message")) or {}
        channel = limits.object_field("channel", payload.get("channel")) or {}
        message_ts = limits.id_field("message_ts", container.get("message_ts") or message.get("ts"), required=False)
        return {
            "channel": limits.id_field("channel", container.get("channel_id") or channel.get("id"), required=False),
            "message_ts": message_ts,
            "thread_ts": limits.id_field(
                "thread_ts", container.get("thread_ts") or message.get("thread_ts"), required=False
            )
            or message_ts,
        }

    def _events(self, body: bytes, headers: Mapping[str, str]) -> SlackResult:
        payload = limits.json_object(body)
        if payload.get("type") == "url_verification":
            challenge = limits.text_field("challenge", payload.get("challenge"))
            return SlackResult(200, {"challenge": challenge}, reason="url_verification")
        event = limits.object_field("event", payload.get("event")) or {}
        if payload.get("type") != "event_callback" or event.get("type") != "message" or not payload.get("event_id"):
            return SlackResult(200, reason=f"ignored: {str(payload.get('type'))[:40]}/{str(event.get('type'))[:40]}")
        if (
            event.get("subtype") not in THREAD_SUBTYPES
            or event.get("bot_id")
            or (self.bot_user_id and event.get("user") == self.bot_user_id)
        ):
            return SlackResult(200, reason="ignored: not a person's message")
        channel = limits.id_field("event.channel", event.get("channel"), required=False)
        thread_ts = limits.id_field("event.thread_ts", event.get("thread_ts"), required=False)
        user_id = limits.id_field("event.user", event.get("user"), required=False) or ""
        event_id = limits.id_field("event_id", payload.get("event_id"))
        text = limits.text_field("event.text", event.get("text"), required=False) or ""
        if not thread_ts or thread_ts == event.get("ts") or not channel:
            return SlackResult(200, reason="ignored: not in a thread")
        consultation_id = self.thread_lookup(channel, thread_ts)
        if consultation_id is None:
            return SlackResult(200, reason="ignored: not a consultation thread")
        person = person_for(self.directory, "slack", user_id)
        if person is None:
            return SlackResult(
                200,
                ephemeral=Ephemeral(_unknown(user_id), channel=channel, user=user_id, thread_ts=thread_ts),
                reason="unknown_user",
            )
        key = _key(f"slack:event:{event_id}")
        lowered = {str(k).lower(): v for k, v in headers.items()}
        raw = {
            "user_id": user_id,
            "channel": channel,
            "ts": limits.id_field("event.ts", event.get("ts"), required=False),
            "thread_ts": thread_ts,
            "event_id": event_id,
            "retry_num": lowered.get("x-slack-retry-num"),
        }
        try:
            reply = ExpertReply.from_text(consultation_id, person.id, "slack", unescape(text), dedupe_key=key, raw=raw)
        except ReplyError as error:
            if self.dedupe.seen_before(key):
                return SlackResult(200, reason="duplicate")
            return SlackResult(
                200,
                ephemeral=Ephemeral(f"Not recorded: {error}", channel=channel, user=user_id, thread_ts=thread_ts),
                reason="invalid_reply",
            )
        return SlackResult(200, reply=reply)

    def _refuse(self, body: bytes, headers: Mapping[str, str]) -> Optional[SlackResult]:
        problem = self.check(body, headers)
        if problem is None:
            return None
        return SlackResult(401, {"error": "invalid or stale Slack request signature"}, reason=problem)


def _key(key: str) -> str:
    """A delivery key the store can keep; `limits.Refused` 400 for one made of oversized ids."""
    if len(key) > WEBHOOK_KEY_LIMIT:
        raise limits.Refused(400, "the delivery's ids are too long")
    return key


def unescape(text: str) -> str:
    """Slack message text as typed: Slack escapes only &, < and >."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _unknown(user_id: str) -> str:
    return (
        f"Not recorded: your Slack user ({user_id}) is not an expert in Backline's experts.yml. "
        "Ask your Backline admin to add it."
    )
