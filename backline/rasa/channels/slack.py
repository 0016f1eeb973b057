"""Slack customer channel: Rasa 3.6's connector with a configurable API URL, retries applied once
and proactive messages that find the customer's thread.

credentials.yml entry `backline.rasa.channels.slack.SlackInput`: Rasa's `slack` settings
(`slack_token`, `slack_signing_secret`, `use_threads`, `conversation_granularity`, ...) plus
`api_url`, the Web API base (default slack_sdk's ``https://slack.com/api/``).

- Slack re-sends an event it thinks was not received (``X-Slack-Retry-Num``); Rasa 3.6 only drops
  retries whose reason is listed, so a slow answer could be processed twice. Here an ``event_id``
  (a button click: user and ``action_ts``) reaches Rasa once: with BACKLINE_REDIS_URL set (or
  `redis_url` in the credentials) once across every Rasa instance, claimed in Redis as
  ``backline:delivery:slack:<app>:<key>`` for 24 hours (``<app>``: a hash of the bot token);
  otherwise once per process (its last 10,000). When Redis cannot be reached the event is processed
  anyway (at-least-once, a warning logged without the URL's password; `RedisDeliveries`).
- Messages pushed later (``trigger_intent?output_channel=latest``: an expert's answer) go to the
  conversation's DM, or with ``conversation_granularity: thread`` to the thread it names
  (``<user>_<channel>_<thread ts>``), not to a channel id Slack does not know.
- Requests are checked before anything else (`backline.limits`), where Rasa 3.6
  answered 500 to a signed body of the wrong shape: unsigned or stale ones get 401, a body over
  BACKLINE_MAX_BODY_BYTES or a text over BACKLINE_MAX_MESSAGE_CHARS 413, a body that is not an
  event object (JSON) or an interaction (form field ``payload`` holding a JSON object), or whose
  fields have the wrong types, 400, another content type 415; always ``{"error": "..."}``.
  Interactions Rasa cannot read (other component types, link buttons) are acknowledged (200) and
  ignored.
- A message from a person (bot message metadata ``sender_name``, issue 15) reads "Mara Klein: ..." (once).
- Buttons (the satisfaction question's 1..5) carry an ``action_id`` each, which Rasa 3.6 leaves out.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels import slack as rasa_slack
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

from backline.limits import (
    Refused,
    guarded,
    id_field,
    json_object,
    max_body_bytes,
    max_message_chars,
    object_field,
    read_body,
    text_field,
)
from backline.rasa.channels import (
    deliveries,
    external_intent,
    sender_name,
    signed,
    strip_prefix,
    webhook_blueprint,
)

logger = logging.getLogger(__name__)

REMEMBERED_DELIVERIES = 10_000
PREFIX = "slack:"
"""Conversation ids are ``slack:<user>[_<channel>_<thread>]`` (issue 13); the output strips it."""
INTERACTIVE_TYPES = (
    "button",
    "select",
    "static_select",
    "external_select",
    "conversations_select",
    "users_select",
    "channels_select",
    "overflow",
    "datepicker",
)
"""The interactive components whose value Rasa's connector reads (`SlackInput._get_interactive_response`)."""
MAX_BUTTONS = 5
"""Rasa's connector sends more buttons than this as text only."""


class SlackOutput(rasa_slack.SlackBot):
    """Rasa's Slack output on ``api_url``; a ``user_channel_thread`` recipient is posted in that thread."""

    thread_id: Optional[Text]  # set by rasa's SlackBot.__init__

    def __init__(
        self,
        token: Text,
        slack_channel: Optional[Text] = None,
        thread_id: Optional[Text] = None,
        proxy: Optional[Text] = None,
        api_url: Optional[Text] = None,
    ) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url.rstrip("/") + "/")

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        channel = strip_prefix(channel, PREFIX)
        parts = channel.split("_")
        if not self.thread_id and len(parts) == 3 and all(parts):
            channel, thread = parts[1], parts[2]
            self.thread_id = thread
        await super()._post_message(channel, **kwargs)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await super().send_text_message(recipient_id, signed(text.strip(), sender_name(kwargs)), **kwargs)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        """Rasa's button message, each button with an ``action_id`` (``button_<n>``): Block Kit wants the
        ids of one block distinct, and a click names the button it came from."""
        text = signed(text.strip(), sender_name(kwargs))
        if len(buttons) > MAX_BUTTONS:  # Rasa's rule: more than Slack shows, so the text alone
            await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
            return
        elements = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": button["title"]},
                "value": button["payload"],
                "action_id": f"button_{number}",
            }
            for number, button in enumerate(buttons, start=1)
        ]
        blocks = [
            {"type": "section", "text": {"type": "plain_text", "text": text}},
            {"type": "actions", "elements": elements},
        ]
        await self._post_message(channel=self.slack_channel or recipient_id, as_user=True, text=text, blocks=blocks)


class SlackInput(rasa_slack.SlackInput):
    """Rasa's Slack input with `api_url` and de-duplicated deliveries."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        api_url = credentials.pop("api_url", None) or None
        redis_url = credentials.pop("redis_url", None) or None
        channel = super().from_credentials(credentials)
        channel.api_url = api_url
        if redis_url:
            channel.use_redis(redis_url)
        return channel

    def __init__(
        self,
        *args: Any,
        api_url: Optional[Text] = None,
        max_body: Optional[int] = None,
        max_chars: Optional[int] = None,
        redis_url: Optional[Text] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.api_url = api_url
        self.use_redis(redis_url)
        self.max_body = max_body or max_body_bytes()
        self.max_chars = max_chars or max_message_chars()

    def use_redis(self, redis_url: Optional[Text]) -> None:
        """Remembers deliveries in Redis at `redis_url` (else BACKLINE_REDIS_URL, else in this process)."""
        app = hashlib.sha256((self.slack_token or "").encode()).hexdigest()[:12]
        self._seen = deliveries(f"backline:delivery:slack:{app}", REMEMBERED_DELIVERIES, redis_url)

    def _first_delivery(self, key: Optional[str]) -> bool:
        """False when this event (or click) was already handed to Rasa."""
        return key is None or self._seen.first(key)

    async def _deliver(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        key: Optional[str],
        text: Text,
        sender_id: Text,
        metadata: Dict[Text, Any],
    ) -> Any:
        if not self._first_delivery(key):
            logger.info("Slack delivery already processed (retry %s)", request.headers.get("x-slack-retry-num"))
            return response.text("")
        if external_intent(text):
            logger.warning("Slack message naming an EXTERNAL_ intent ignored")
            return response.text("ignored")
        return await self.process_message(request, on_new_message, text, sender_id, metadata)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = webhook_blueprint("backline_slack_webhook")

        @webhook.route("/webhook", methods=["POST"], stream=True)
        @guarded
        async def receive(request: Request) -> HTTPResponse:
            body = await read_body(request, self.max_body)
            if not self.is_request_from_slack_authentic(request):
                raise Refused(401, "not signed with this app's signing secret, or stale (X-Slack-Signature)")
            content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type == "application/json":
                return await self._event(request, json_object(body, "a Slack event"), on_new_message)
            if content_type == "application/x-www-form-urlencoded":
                return await self._interaction(request, _form_payload(body), on_new_message)
            raise Refused(
                415, "Slack sends events as application/json and interactions as application/x-www-form-urlencoded"
            )

        return webhook

    async def _event(
        self, request: Request, payload: Dict[Text, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """An Events API callback (or its URL check)."""
        if "challenge" in payload:
            return response.json({"challenge": text_field("challenge", payload["challenge"])})
        event = object_field("event", payload.get("event"))
        if event is None or event.get("type") not in ("message", "app_mention") or event.get("bot_id"):
            return response.text("Bot message delivered.")
        if event.get("text") in (None, ""):  # edits, joins, files without a caption
            return response.text("Bot message delivered.")
        text = text_field("event.text", event.get("text"), max_chars=self.max_chars)
        user = id_field("event.user", event.get("user"))
        channel = id_field("event.channel", event.get("channel"), required=False)
        thread_id = id_field("event.ts", event.get("thread_ts", event.get("ts")), required=False)
        text_field("event.channel_type", event.get("channel_type"), required=False)
        metadata = {"out_channel": channel, "thread_id": thread_id, "users": _authed_users(payload)}
        if not self._is_supported_channel(payload, metadata):
            logger.warning(f"Received message on unsupported channel: {channel}")
            return response.text("channel not supported.")
        event_id = id_field("event_id", payload.get("event_id"), required=False)
        return await self._deliver(
            request,
            on_new_message,
            f"event:{event_id}" if event_id else None,
            self._sanitize_user_message(text, metadata["users"]),  # type: ignore[arg-type]
            self._get_conversation_id(user, channel, thread_id),
            metadata,  # type: ignore[arg-type]
        )

    async def _interaction(
        self, request: Request, payload: Dict[Text, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """A click on a button (or a choice in a menu) of a message the bot sent."""
        actions = payload.get("actions")
        if actions is not None and not isinstance(actions, list):
            raise Refused(400, "actions must be a list of objects")
        if not actions:
            return response.text("ignored: not an interaction with a message")
        if not isinstance(actions[0], dict):
            raise Refused(400, "actions must be a list of objects")
        action = actions[0]
        if action.get("type") not in INTERACTIVE_TYPES:
            return response.text(f"ignored: Rasa does not read {str(action.get('type'))[:40]} components")
        user = object_field("user", payload.get("user"), required=True)
        sender = id_field("user.id", user.get("id"))  # type: ignore[union-attr]
        try:
            value = self._get_interactive_response(action)
        except (AttributeError, IndexError, KeyError, TypeError):
            raise Refused(400, f"the {action['type']} action's fields have the wrong types") from None
        if value is None:
            return response.text("User clicked link button")
        text = text_field("the action's value", value, max_chars=self.max_chars) or ""
        channel = object_field("channel", payload.get("channel")) or {}
        message = object_field("message", payload.get("message")) or {}
        channel_id = id_field("channel.id", channel.get("id"), required=False)
        thread_id = id_field("message.ts", message.get("thread_ts", message.get("ts")), required=False)
        metadata = {"out_channel": channel_id, "thread_id": thread_id, "users": [sender]}
        action_ts = id_field("action_ts", action.get("action_ts"), required=False)
        key = f"action:{sender}:{action_ts}" if action_ts else None
        return await self._deliver(
            request,
            on_new_message,
            key,
            text,
            self._get_conversation_id(sender, channel_id, thread_id),
            metadata,  # type: ignore[arg-type]
        )

    def _get_conversation_id(self, *args: Any, **kwargs: Any) -> Text:
        """Rasa's conversation id, namespaced ``slack:``."""
        return PREFIX + super()._get_conversation_id(*args, **kwargs)

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return SlackOutput(self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url)


def _authed_users(payload: Dict[Text, Any]) -> List[Text]:
    """The bot's own user ids, whose mentions are dropped from the text (as Rasa's connector does)."""
    users = payload.get("authed_users")
    if users is None:
        authorizations = payload.get("authorizations")
        if not isinstance(authorizations, list) or not authorizations:
            return []
        first = object_field("authorizations[0]", authorizations[0], required=True)
        users = [first.get("user_id")] if first.get("user_id") is not None else []  # type: ignore[union-attr]
    if not isinstance(users, list):
        raise Refused(400, "authed_users must be a list of user ids")
    return [id_field("authed_users[]", user) for user in users]  # type: ignore[misc]


def _form_payload(body: bytes) -> Dict[Text, Any]:
    """The JSON object in the form field ``payload`` of an interaction; `Refused` 400 otherwise."""
    try:
        form = urllib.parse.parse_qs(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the body is not a UTF-8 form") from None
    if not form.get("payload"):
        raise Refused(400, "expected a form field 'payload' holding a JSON object")
    return json_object(form["payload"][0], "a JSON object", name="the form field 'payload'")
