"""Telegram customer channel: Rasa 3.6's connector without its gaps, over plain HTTP (aiohttp).

credentials.yml entry `backline.rasa.channels.telegram.TelegramInput` with:

- `access_token`: the bot's token; `verify`: the bot's username, checked once at start;
- `webhook_url`: registered with Telegram's setWebhook at start (with `secret_token`);
- `secret_token`: updates without it in `X-Telegram-Bot-Api-Secret-Token` get 403;
- `api_url`: the Bot API server (default https://api.telegram.org; a self-hosted one).

A replayed `update_id` reaches Rasa once: with BACKLINE_REDIS_URL set (or `redis_url` in the
credentials) once across every Rasa instance, claimed in Redis as
``backline:delivery:telegram:<bot id>:<update_id>`` for 24 hours; otherwise once per process (its
last 10,000 ids). When Redis cannot be reached the update is processed anyway (at-least-once, a
warning logged without the URL's password; `backline.rasa.channels.RedisDeliveries`). The output
channel holds only the token and URL, so `get_output_channel()` works inside the running loop
and `trigger_intent?output_channel=latest` reaches Telegram. A bot message with a
`sender_name` (`dispatcher.utter_message(text=..., sender_name="Mara")`) reads "Mara: ..." (once:
text that already starts so is sent as is).
Updates are checked before anything else happens (`backline.limits`): a body over
BACKLINE_MAX_BODY_BYTES or a text over BACKLINE_MAX_MESSAGE_CHARS gets 413, a body that is not an
Update with an integer `update_id`, or whose message, chat, text, button data or location have the
wrong types, gets 400 with ``{"error": "..."}``; neither reaches Rasa nor uses up its `update_id`.
Buttons become an inline keyboard (`button_type: vertical`: one per row; `reply`: a reply
keyboard); a custom payload is one Bot API call, `{"method": "sendLocation", ...}`
(sendMessage without `method`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

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

API_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
REMEMBERED_UPDATES = 10_000
PREFIX = "telegram:"
"""Conversation ids are ``telegram:<chat id>`` (issue 13); outputs parse the chat id back out."""


class TelegramError(RasaException):
    """The Bot API refused a call."""


class TelegramOutput(OutputChannel):
    """Sends bot messages with the Bot API's sendMessage, sendPhoto, ..."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    def __init__(self, access_token: Text, api_url: Text = API_URL) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{access_token}/"

    async def call(self, method: Text, payload: Dict[Text, Any]) -> Any:
        """POSTs a Bot API method as JSON; its `result`, or TelegramError."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.post(self._base + method, json=payload) as answer:
                try:
                    body = await answer.json(content_type=None)
                except ValueError:  # not JSON: a proxy's error page
                    body = None
        if not isinstance(body, dict) or not body.get("ok"):
            raise TelegramError(f"Telegram {method} failed: {answer.status} {body}")
        return body["result"]

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for part in text.strip().split("\n\n"):
            await self.call("sendMessage", {"chat_id": _chat(recipient_id), "text": _signed(part, kwargs)})

    async def send_text_with_buttons(
        self,
        recipient_id: Text,
        text: Text,
        buttons: List[Dict[Text, Any]],
        button_type: Text = "inline",
        **kwargs: Any,
    ) -> None:
        if button_type == "reply":
            markup: Dict[Text, Any] = {
                "keyboard": [[{"text": b["title"]}] for b in buttons],
                "one_time_keyboard": True,
            }
        else:
            keys = [{"text": b["title"], "callback_data": b["payload"]} for b in buttons]
            markup = {"inline_keyboard": [[key] for key in keys] if button_type == "vertical" else [keys]}
        await self.call(
            "sendMessage", {"chat_id": _chat(recipient_id), "text": _signed(text, kwargs), "reply_markup": markup}
        )

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.call("sendPhoto", {"chat_id": _chat(recipient_id), "photo": image})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        payload = {"chat_id": _chat(recipient_id), **json_message}
        await self.call(payload.pop("method", "sendMessage"), payload)


def _signed(text: Text, message: Dict[Text, Any]) -> Text:
    """`text` as "Name: text" when the message names its sender (and the text does not already)."""
    return signed(text, sender_name(message))


class TelegramInput(InputChannel):
    """Receives Telegram updates on /webhooks/telegram/webhook."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        assert credentials is not None  # raise_missing_credentials_exception raised
        return cls(
            credentials["access_token"],
            verify=credentials.get("verify"),
            webhook_url=credentials.get("webhook_url"),
            secret_token=credentials.get("secret_token"),
            api_url=credentials.get("api_url") or API_URL,
            redis_url=credentials.get("redis_url") or None,
        )

    def __init__(
        self,
        access_token: Text,
        verify: Optional[Text] = None,
        webhook_url: Optional[Text] = None,
        secret_token: Optional[Text] = None,
        api_url: Text = API_URL,
        max_body: Optional[int] = None,
        max_chars: Optional[int] = None,
        redis_url: Optional[Text] = None,
    ) -> None:
        self.access_token = access_token
        self.verify = verify
        self.webhook_url = webhook_url
        self.secret_token = secret_token
        self.api_url = api_url
        bot_id = access_token.split(":", 1)[0]  # the bot's public numeric id, never the secret part
        self._seen = deliveries(f"backline:delivery:telegram:{bot_id}", REMEMBERED_UPDATES, redis_url)
        self.max_body = max_body or max_body_bytes()
        self.max_chars = max_chars or max_message_chars()

    def get_output_channel(self) -> TelegramOutput:
        return TelegramOutput(self.access_token, self.api_url)

    async def register_webhook(self) -> None:
        """Checks that the token is `verify`'s, then points Telegram at `webhook_url` with the secret."""
        bot = self.get_output_channel()
        me = await bot.call("getMe", {})
        if self.verify and me.get("username") != self.verify:
            raise TelegramError(f"the access token is @{me.get('username')}'s, not @{self.verify}'s")
        if self.webhook_url:
            hook = {"url": self.webhook_url, **({"secret_token": self.secret_token} if self.secret_token else {})}
            await bot.call("setWebhook", hook)

    def is_first_delivery(self, update_id: int) -> bool:
        """False when this update was seen before; remembers it."""
        return self._seen.first(update_id)

    def _authentic(self, request: Request) -> bool:
        if not self.secret_token:
            return True
        return hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), self.secret_token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = webhook_blueprint("backline_telegram_webhook")
        bot = self.get_output_channel()
        if not self.secret_token:
            logger.warning("Telegram channel without secret_token: anyone can post updates to its webhook")

        @webhook.listener("after_server_start")
        async def register(*_: Any) -> None:
            try:
                await self.register_webhook()
            except (TelegramError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.error(f"Telegram webhook not registered: {error}")

        @webhook.route("/webhook", methods=["POST"], stream=True)
        @guarded
        async def receive(request: Request) -> HTTPResponse:
            if not self._authentic(request):
                return response.json({"error": "forbidden"}, status=403)
            update = json_object(await read_body(request, self.max_body), "a Telegram Update")
            update_id = update.get("update_id")
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                raise Refused(400, "not a Telegram update: update_id (an integer) expected")
            message = _user_message(update, self.max_chars)
            if not self.is_first_delivery(update_id):
                return response.text("duplicate")
            if message is not None:
                chat_id, text, callback_id = message
                if callback_id is not None:
                    await _answer_callback(bot, callback_id)
                if external_intent(text):
                    logger.warning("Telegram message naming an EXTERNAL_ intent ignored (update %s)", update_id)
                    return response.text("ignored")
                await on_new_message(UserMessage(text, bot, PREFIX + chat_id, input_channel=self.name()))
            return response.text("success")

        return webhook


def _chat(recipient_id: Text) -> Text:
    """The Telegram chat id in a conversation id ``telegram:<chat id>``."""
    return strip_prefix(recipient_id, PREFIX)


def _chat_id(message: Dict[Text, Any], name: Text) -> Text:
    chat = object_field(f"{name}.chat", message.get("chat"), required=True)
    return id_field(f"{name}.chat.id", chat.get("id"), numbers=True)  # type: ignore[union-attr,return-value]


def _coordinate(name: Text, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(400, f"{name} must be a number")
    return value


def _user_message(update: Dict[Text, Any], max_chars: int) -> Optional[Tuple[Text, Text, Optional[Text]]]:
    """(chat id, text, callback query id) of a message, an edited message, a button press or a location;
    None for other updates; `Refused` when one of these has fields of the wrong type."""
    query = object_field("callback_query", update.get("callback_query"))
    if query is not None:
        if "message" not in query or "data" not in query:
            return None
        message = object_field("callback_query.message", query["message"], required=True) or {}
        text = text_field("callback_query.data", query["data"], max_chars=max_chars) or ""
        query_id = id_field("callback_query.id", query.get("id"), numbers=True)
        return _chat_id(message, "callback_query.message"), text, query_id
    name = "message" if update.get("message") is not None else "edited_message"
    message = object_field(name, update.get(name)) or {}
    if "text" in message:
        return _chat_id(message, name), text_field(f"{name}.text", message["text"], max_chars=max_chars) or "", None
    if "location" in message:
        where = object_field(f"{name}.location", message["location"], required=True) or {}
        point = {
            "lng": _coordinate("longitude", where.get("longitude")),
            "lat": _coordinate("latitude", where.get("latitude")),
        }
        return _chat_id(message, name), json.dumps(point), None
    return None


async def _answer_callback(bot: TelegramOutput, query_id: Text) -> None:
    """Stops the button's progress indicator in the customer's app."""
    try:
        await bot.call("answerCallbackQuery", {"callback_query_id": query_id})
    except (TelegramError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        logger.warning(f"answerCallbackQuery failed: {error}")
