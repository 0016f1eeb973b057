"""Telegram customer channel: Rasa 3.6's connector without its gaps, over plain HTTP (aiohttp).

credentials.yml entry `backline.rasa.channels.telegram.TelegramInput` with:

- `access_token`: the bot's token; `verify`: the bot's username, checked once at start;
- `webhook_url`: registered with Telegram's setWebhook at start (with `secret_token`);
- `secret_token`: updates without it in `X-Telegram-Bot-Api-Secret-Token` get 403;
- `api_url`: the Bot API server (default https://api.telegram.org; a self-hosted one).

A replayed `update_id` reaches Rasa once (the last 10,000 ids of this process). The output
channel holds only the token and URL, so `get_output_channel()` works inside the running loop
and `trigger_intent?output_channel=latest` reaches Telegram. A bot message with a
`sender_name` (`dispatcher.utter_message(text=..., sender_name="Mara")`) reads "Mara: ..." (once:
text that already starts so is sent as is).
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

from backline.rasa.channels import RecentDeliveries

logger = logging.getLogger(__name__)

API_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
REMEMBERED_UPDATES = 10_000


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
            await self.call("sendMessage", {"chat_id": recipient_id, "text": _signed(part, kwargs)})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], button_type: Text = "inline",
        **kwargs: Any,
    ) -> None:
        if button_type == "reply":
            markup: Dict[Text, Any] = {
                "keyboard": [[{"text": b["title"]}] for b in buttons], "one_time_keyboard": True,
            }
        else:
            keys = [{"text": b["title"], "callback_data": b["payload"]} for b in buttons]
            markup = {"inline_keyboard": [[key] for key in keys] if button_type == "vertical" else [keys]}
        await self.call(
            "sendMessage", {"chat_id": recipient_id, "text": _signed(text, kwargs), "reply_markup": markup}
        )

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.call("sendPhoto", {"chat_id": recipient_id, "photo": image})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        payload = {"chat_id": recipient_id, **json_message}
        await self.call(payload.pop("method", "sendMessage"), payload)


def _signed(text: Text, message: Dict[Text, Any]) -> Text:
    """`text` as "Name: text" when the message names its sender (and the text does not already)."""
    prefix = f"{message['sender_name']}: " if message.get("sender_name") else ""
    return text if text.startswith(prefix) else prefix + text


class TelegramInput(InputChannel):
    """Receives Telegram updates on /webhooks/telegram/webhook."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(
            credentials["access_token"],
            verify=credentials.get("verify"),
            webhook_url=credentials.get("webhook_url"),
            secret_token=credentials.get("secret_token"),
            api_url=credentials.get("api_url") or API_URL,
        )

    def __init__(
        self, access_token: Text, verify: Optional[Text] = None, webhook_url: Optional[Text] = None,
        secret_token: Optional[Text] = None, api_url: Text = API_URL,
    ) -> None:
        self.access_token = access_token
        self.verify = verify
        self.webhook_url = webhook_url
        self.secret_token = secret_token
        self.api_url = api_url
        self._seen = RecentDeliveries(REMEMBERED_UPDATES)

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
        webhook = Blueprint("backline_telegram_webhook", __name__)
        bot = self.get_output_channel()
        if not self.secret_token:
            logger.warning("Telegram channel without secret_token: anyone can post updates to its webhook")

        @webhook.listener("after_server_start")
        async def register(*_: Any) -> None:
            try:
                await self.register_webhook()
            except (TelegramError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.error(f"Telegram webhook not registered: {error}")

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authentic(request):
                return response.json({"error": "forbidden"}, status=403)
            update = request.json
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                return response.json({"error": "not a Telegram update"}, status=400)
            if not self.is_first_delivery(update["update_id"]):
                return response.text("duplicate")
            message = _user_message(update)
            if message is not None:
                if update.get("callback_query"):
                    await _answer_callback(bot, update["callback_query"]["id"])
                chat_id, text = message
                await on_new_message(UserMessage(text, bot, chat_id, input_channel=self.name()))
            return response.text("success")

        return webhook


def _user_message(update: Dict[Text, Any]) -> Optional[Tuple[Text, Text]]:
    """(chat id, text) of a message, an edited message, a button press or a location; None otherwise."""
    query = update.get("callback_query") or {}
    if "message" in query and "data" in query:
        return str(query["message"]["chat"]["id"]), query["data"]
    message = update.get("message") or update.get("edited_message") or {}
    if "text" in message:
        return str(message["chat"]["id"]), message["text"]
    if "location" in message:
        where = message["location"]
        return str(message["chat"]["id"]), json.dumps({"lng": where["longitude"], "lat": where["latitude"]})
    return None


async def _answer_callback(bot: TelegramOutput, query_id: Text) -> None:
    """Stops the button's progress indicator in the customer's app."""
    try:
        await bot.call("answerCallbackQuery", {"callback_query_id": query_id})
    except (TelegramError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        logger.warning(f"answerCallbackQuery failed: {error}")
