"""The hub's webhooks from the experts' channels: Slack (``/slack/interactivity``, ``/slack/events``;
signing secret) and Telegram (``/telegram/webhook``; secret token).

Each delivery is verified and parsed (`backline.hub.slack_inbound`, `backline.hub.telegram_inbound`),
its reply recorded with its delivery in one transaction (the platform's delivery key too) and the
platform answered at once; the delivery worker reaches the customer. If recording fails nothing is
kept and the platform is asked to retry (503). An expert answering a case outside their queues, or a
reply that cannot be applied, is told where they wrote. The work is the consultation flow's
(`backline.hub.flow.ConsultationFlow`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Mapping, Optional

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from backline.hub.flow import ConsultationFlow
from backline.hub.slack_inbound import SlackInbound
from backline.hub.telegram_inbound import TelegramInbound

logger = logging.getLogger(__name__)

ENV_SLACK_SIGNING_SECRET = "BACKLINE_SLACK_SIGNING_SECRET"
ENV_TELEGRAM_WEBHOOK_SECRET = "BACKLINE_TELEGRAM_WEBHOOK_SECRET"

Handler = Callable[[bytes, Mapping[str, str]], Any]


async def receive(request: Request, flow: ConsultationFlow, handler: Optional[Handler], setting: str) -> HTTPResponse:
    """Verify and parse, record the reply with its delivery in one transaction (the platform's
    delivery key too), answer at once; the delivery worker reaches the customer. If recording
    fails nothing is kept and the platform is asked to retry (503). ``handler`` None: the webhook
    is off (404, naming the ``setting`` that turns it on)."""
    if handler is None:
        return json({"error": f"this webhook is off: set {setting}"}, status=404)
    result = await asyncio.to_thread(handler, request.body, dict(request.headers))
    if result.reason:
        logger.info("%s: %s", request.path, result.reason)
    body = dict(result.body or {})
    if result.reply is not None and not await asyncio.to_thread(flow.may_answer, result.reply):
        problem = "Not sent: this case is not in your queues."
        logger.warning("%s: %s replied to a case outside their queues", request.path, result.reply.actor)
        if body.get("method") == "answerCallbackQuery":
            body.update(text=problem, show_alert=True)
        else:
            request.app.add_task(asyncio.to_thread(flow.tell_expert, result.reply, problem))
    elif result.reply is not None:
        try:
            (status, payload), delivery_id = await asyncio.to_thread(flow.record, result.reply)
        except Exception:
            logger.exception("%s: the reply could not be recorded; the platform will retry", request.path)
            return json({"error": "the reply could not be recorded; please retry"}, status=503)
        if delivery_id is not None:
            flow.wake()
        elif payload.get("duplicate"):
            body = {}  # a re-delivery of what was applied: nothing to answer again
        elif status >= 400:
            problem = f"Not sent: {payload.get('error')}"
            if body.get("method") == "answerCallbackQuery":
                body.update(text=problem[:200], show_alert=True)
            else:
                request.app.add_task(asyncio.to_thread(flow.tell_expert, result.reply, problem))
    ephemeral = getattr(result, "ephemeral", None)
    if ephemeral is not None:
        request.app.add_task(asyncio.to_thread(flow.tell_slack, ephemeral))
    return json(body, status=result.status)


def webhooks_blueprint(
    flow: ConsultationFlow, slack: Optional[SlackInbound], telegram: Optional[TelegramInbound]
) -> Blueprint:
    """The Slack and Telegram webhook routes over ``flow``; a channel given as None answers 404."""
    bp = Blueprint("webhooks")

    @bp.post("/slack/interactivity")
    async def slack_interactivity(request: Request) -> HTTPResponse:
        return await receive(request, flow, slack.interactivity if slack else None, ENV_SLACK_SIGNING_SECRET)

    @bp.post("/slack/events")
    async def slack_events(request: Request) -> HTTPResponse:
        return await receive(request, flow, slack.events if slack else None, ENV_SLACK_SIGNING_SECRET)

    @bp.post("/telegram/webhook")
    async def telegram_webhook(request: Request) -> HTTPResponse:
        return await receive(request, flow, telegram.handle if telegram else None, ENV_TELEGRAM_WEBHOOK_SECRET)

    return bp
