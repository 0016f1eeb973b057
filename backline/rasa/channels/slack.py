"""Slack customer channel: Rasa 3.6's connector with a configurable API URL, retries applied once
and proactive messages that find the customer's thread.

credentials.yml entry `backline.rasa.channels.slack.SlackInput`: Rasa's `slack` settings
(`slack_token`, `slack_signing_secret`, `use_threads`, `conversation_granularity`, ...) plus
`api_url`, the Web API base (default slack_sdk's ``https://slack.com/api/``).

- Slack re-sends an event it thinks was not received (``X-Slack-Retry-Num``); Rasa 3.6 only drops
  retries whose reason is listed, so a slow answer could be processed twice. Here an ``event_id``
  (a button click: user and ``action_ts``) reaches Rasa once (the last 10,000 of this process).
- Messages pushed later (``trigger_intent?output_channel=latest``: an expert's answer) go to the
  conversation's DM, or with ``conversation_granularity: thread`` to the thread it names
  (``<user>_<channel>_<thread ts>``), not to a channel id Slack does not know.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels import slack as rasa_slack
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import response
from sanic.request import Request
from slack_sdk.web.async_client import AsyncWebClient

from backline.rasa.channels import RecentDeliveries

logger = logging.getLogger(__name__)

REMEMBERED_DELIVERIES = 10_000


class SlackOutput(rasa_slack.SlackBot):
    """Rasa's Slack output on ``api_url``; a ``user_channel_thread`` recipient is posted in that thread."""

    def __init__(self, token: Text, slack_channel: Optional[Text] = None, thread_id: Optional[Text] = None,
                 proxy: Optional[Text] = None, api_url: Optional[Text] = None) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url.rstrip("/") + "/")

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        parts = channel.split("_")
        if not self.thread_id and len(parts) == 3 and all(parts):
            channel, self.thread_id = parts[1], parts[2]
        await super()._post_message(channel, **kwargs)


class SlackInput(rasa_slack.SlackInput):
    """Rasa's Slack input with `api_url` and de-duplicated deliveries."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        api_url = credentials.pop("api_url", None) or None
        channel = super().from_credentials(credentials)
        channel.api_url = api_url
        return channel

    def __init__(self, *args: Any, api_url: Optional[Text] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_url = api_url
        self._seen = RecentDeliveries(REMEMBERED_DELIVERIES)

    def _first_delivery(self, request: Request) -> bool:
        """False when this event (or click) was already handed to Rasa."""
        key = _delivery_key(request)
        return key is None or self._seen.first(key)

    async def process_message(self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text], metadata: Optional[Dict]) -> Any:
        if not self._first_delivery(request):
            logger.info("Slack delivery already processed (retry %s)", request.headers.get("x-slack-retry-num"))
            return response.text("")
        return await super().process_message(request, on_new_message, text, sender_id, metadata)

    def get_output_channel(self, channel: Optional[Text] = None, thread_id: Optional[Text] = None) -> OutputChannel:
        return SlackOutput(self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url)


def _delivery_key(request: Request) -> Optional[str]:
    """``event:<event_id>`` for Events API callbacks, ``action:<user>:<action_ts>`` for clicks."""
    if request.headers.get("content-type") == "application/json":
        event_id = (request.json or {}).get("event_id")
        return f"event:{event_id}" if event_id else None
    try:
        payload = json.loads(request.form["payload"][0])
        return f"action:{payload['user']['id']}:{payload['actions'][0]['action_ts']}"
    except (KeyError, IndexError, TypeError, ValueError):
        return None
