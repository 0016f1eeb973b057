"""The hub's webhooks from the experts' channels: Slack (``/slack/interactivity``, ``/slack/events``;
signing secret) and Telegram (``/telegram/webhook``; secret token).

Each delivery is verified and parsed (`backline.hub.slack_inbound`, `backline.hub.telegram_inbound`),
its reply recorded with its delivery in one transaction (the platform's delivery key too) and the
platform answered at once; the delivery worker reaches the customer. If recording fails nothing is
kept and the platform is asked to retry (503). An expert answering a case outside their queues, or a
reply that cannot be applied, is told where they wrote. Feedback (a verdict or override-reason
button, or a reply of only ``verdict:`` / ``reason:`` lines on a closed case) is recorded the same
way and confirmed where it was given (an ephemeral Slack message, Telegram's answerCallbackQuery or a
reply). The work is the consultation flow's (`backline.hub.flow.ConsultationFlow`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Set

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from backline.hub.feedback import Feedback
from backline.hub.flow import ConsultationFlow
from backline.hub.slack_inbound import SlackInbound
from backline.hub.telegram_inbound import TelegramInbound

logger = logging.getLogger(__name__)

ENV_SLACK_SIGNING_SECRET = "BACKLINE_SLACK_SIGNING_SECRET"
ENV_TELEGRAM_WEBHOOK_SECRET = "BACKLINE_TELEGRAM_WEBHOOK_SECRET"

Handler = Callable[[bytes, Mapping[str, str]], Any]
_TASKS: Set["asyncio.Task[Any]"] = set()
"""Telling the expert, after the platform was answered (a reference kept until each is done)."""


def _later(job: Callable[..., Any], *args: Any) -> None:
    """Run ``job(*args)`` off the event loop once this handler has answered (best effort)."""
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(job, *args))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


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
    feedback = getattr(result, "feedback", None)
    if feedback is not None:
        try:
            body = await _feedback(request, flow, feedback, body)
        except Exception:
            logger.exception("%s: the feedback could not be recorded; the platform will retry", request.path)
            return json({"error": "the feedback could not be recorded; please retry"}, status=503)
    elif result.reply is not None and not await asyncio.to_thread(flow.may_answer, result.reply):
        problem = "Not sent: this case is not in your queues."
        logger.warning("%s: %s replied to a case outside their queues", request.path, result.reply.actor)
        if body.get("method") == "answerCallbackQuery":
            body.update(text=problem, show_alert=True)
        else:
            _later(flow.tell_expert, result.reply, problem)
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
        elif payload.get("feedback") and payload.get("message"):  # verdict / reason lines on a closed case
            _later(flow.tell_expert, result.reply, str(payload["message"]))
        elif status >= 400:
            problem = f"Not sent: {payload.get('error')}"
            if body.get("method") == "answerCallbackQuery":
                body.update(text=problem[:200], show_alert=True)
            else:
                _later(flow.tell_expert, result.reply, problem)
    ephemeral = getattr(result, "ephemeral", None)
    if ephemeral is not None:
        _later(flow.tell_slack, ephemeral)
    return json(body, status=result.status)


async def _feedback(
    request: Request, flow: ConsultationFlow, feedback: Feedback, body: Dict[str, Any]
) -> Dict[str, Any]:
    """Record a feedback click (the clicker's queues checked) and say what came of it where it was
    given: in the answerCallbackQuery of ``body`` (Telegram), else an ephemeral message (Slack)."""
    if not await asyncio.to_thread(flow.may_answer, feedback):
        logger.warning("%s: %s gave feedback on a case outside their queues", request.path, feedback.actor)
        status, payload = 403, {"error": "this case is not in your queues"}
    else:
        status, payload = await asyncio.to_thread(flow.record_feedback, feedback)
    if payload.get("duplicate"):
        return {}  # a re-delivery of what was recorded: nothing to answer again
    text = str(payload.get("message") or "") if status < 400 else f"Not recorded: {payload.get('error')}"
    if body.get("method") == "answerCallbackQuery":
        body.update(text=text[:200], show_alert=status >= 400)
    else:
        _later(flow.tell_expert, feedback, text)
    return body


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
