"""The hub (`python -m backline hub`): the expert-facing web app.

- the operator dashboard (/dashboard, sign-in per operator) and the customer web chat (/chat);
- JSON API for operators (``Authorization: Bearer <operator token>``): consultations, replies, metrics;
- Slack (``/slack/interactivity``, ``/slack/events``; signing secret) and Telegram (``/telegram/webhook``;
  secret token) webhooks: button clicks and replies from the experts' channels, answered at once,
  applied in the background, each delivery once;
- the SLA timer: every ``BACKLINE_SLA_INTERVAL`` seconds the ladder is walked and customers whose
  promised wait has passed hear about the delay;
- expert replies resume the customer's conversation through Rasa's trigger_intent.

Handlers are thin: the work is in `backline.consult` (service, replies).
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import requests

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json, redirect

from backline.consult.replies import SLA_DELAY, Reply, ReplyError, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import PROJECT_ROOT, ConsultationClosed, ConsultationNotFound, STATUSES
from backline.experts.base import ChannelError
from backline.hub.dashboard import dashboard_blueprint
from backline.hub.dedupe import SqlDedupe
from backline.hub.guidance import ExpertReply
from backline.hub.operators import dashboard_secret
from backline.hub.rasa_client import RasaClient, RasaError
from backline.hub.slack_inbound import Ephemeral, SlackInbound
from backline.hub.telegram_inbound import TelegramInbound, send_message
from backline.hub.webchat import ENV_SOCKET_URL, webchat_blueprint

logger = logging.getLogger(__name__)

ENV_OPERATOR_TOKEN = "BACKLINE_OPERATOR_TOKEN"
ENV_SLACK_SIGNING_SECRET = "BACKLINE_SLACK_SIGNING_SECRET"
ENV_TELEGRAM_WEBHOOK_SECRET = "BACKLINE_TELEGRAM_WEBHOOK_SECRET"
Outcome = Tuple[int, Dict[str, Any]]
TOKEN_FILE = PROJECT_ROOT / "var" / "operator_token"


def operator_token(env: Mapping[str, str]) -> str:
    """BACKLINE_OPERATOR_TOKEN, else one generated once and kept in var/operator_token."""
    if env.get(ENV_OPERATOR_TOKEN):
        return env[ENV_OPERATOR_TOKEN]
    if not TOKEN_FILE.exists():
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        TOKEN_FILE.write_text(secrets.token_urlsafe(24))
        TOKEN_FILE.chmod(0o600)
    return TOKEN_FILE.read_text().strip()


@dataclass(frozen=True)
class HubConfig:
    operator_token: str
    rasa_url: str
    rasa_token: str
    sla_interval: float = 30.0
    dashboard_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    chat_socket_url: Optional[str] = None
    slack_signing_secret: str = ""
    telegram_webhook_secret: str = ""

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "HubConfig":
        from backline.launcher import api_token

        env = dict(os.environ if env is None else env)
        return cls(
            operator_token=operator_token(env),
            rasa_url=env.get("BACKLINE_RASA_URL") or f"http://localhost:{env.get('BACKLINE_RASA_PORT', '5005')}",
            rasa_token=api_token(env),
            sla_interval=float(env.get("BACKLINE_SLA_INTERVAL") or 30),
            dashboard_secret=dashboard_secret(env),
            chat_socket_url=env.get(ENV_SOCKET_URL) or None,
            slack_signing_secret=env.get(ENV_SLACK_SIGNING_SECRET, ""),
            telegram_webhook_secret=env.get(ENV_TELEGRAM_WEBHOOK_SECRET, ""),
        )


def _error(status: int, message: str, **extra: Any) -> HTTPResponse:
    return json({"error": message, **extra}, status=status)


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def create_app(service: ConsultationService, config: HubConfig, rasa: RasaClient, name: str = "backline_hub") -> Sanic:
    """The hub's Sanic app over ``service`` (store, experts, channels) and ``rasa`` (the customer side)."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    store = service.store

    @app.middleware("request")
    async def require_operator(request: Request) -> Optional[HTTPResponse]:
        if request.path.startswith("/api/") and not _authorized(request, config.operator_token):
            return _error(401, "operator token required: Authorization: Bearer <token>")
        return None

    @app.get("/")
    async def home(_: Request) -> HTTPResponse:
        return redirect("/dashboard")

    @app.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/api/consultations")
    async def list_consultations(request: Request) -> HTTPResponse:
        status = request.args.get("status")
        if status is not None and status not in STATUSES:
            return _error(400, f"status must be one of {', '.join(STATUSES)}")
        found = await asyncio.to_thread(
            store.list, request.args.get("conversation_id"), status, request.args.get("queue")
        )
        return json([case.as_dict() for case in found])

    @app.get("/api/consultations/<consultation_id>")
    async def get_consultation(_: Request, consultation_id: str) -> HTTPResponse:
        case = await asyncio.to_thread(store.get, consultation_id)
        if case is None:
            return _error(404, f"no consultation {consultation_id}")
        messages = await asyncio.to_thread(store.messages, consultation_id)
        audit = await asyncio.to_thread(store.audit_trail, consultation_id)
        return json({**case.as_dict(), "messages": [m.as_dict() for m in messages],
                     "audit": [e.as_dict() for e in audit]})

    @app.post("/api/consultations/<consultation_id>/reply")
    async def reply(request: Request, consultation_id: str) -> HTTPResponse:
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            return _error(400, 'send a JSON object: {"action": ..., "text": ..., "allowed_followups": [...]}')
        case = await asyncio.to_thread(store.get, consultation_id)
        if case is None:
            return _error(404, f"no consultation {consultation_id}")
        actor = body.get("actor") or case.assignee or "operator"
        if body.get("actor") and actor not in service.directory.people:
            return _error(400, f"actor {actor!r} is not a person of experts.yml")
        followups = body.get("allowed_followups") or []
        if not isinstance(followups, list) or not all(isinstance(f, str) for f in followups):
            return _error(400, "allowed_followups must be a list of follow-up types")
        try:
            answer = ExpertReply(consultation_id, actor, "api", str(body.get("action") or ""),
                                 str(body.get("text") or ""), tuple(followups))
        except ValueError as error:
            return _error(400, str(error))
        status, payload = await apply(answer)
        return json(payload, status=status)

    async def apply(answer: ExpertReply) -> Outcome:
        """Turn an expert's reply into guidance (``//`` notes stay internal) and resume the customer's conversation."""
        case = await asyncio.to_thread(store.get, answer.consultation_id)
        if case is None:
            return 404, {"error": f"no consultation {answer.consultation_id}"}
        try:
            guidance = answer.to_reply(case.mode)
        except ReplyError as error:
            return 400, {"error": str(error)}
        return await resume(answer.consultation_id, answer.actor, answer.source, guidance)

    async def resume(consultation_id: str, actor: str, source: str, answer: Reply) -> Outcome:
        """Record the reply, then resume the customer's conversation with it."""
        try:
            step = await asyncio.to_thread(record_reply, store, consultation_id, actor, source, answer)
        except ConsultationNotFound:
            return 404, {"error": f"no consultation {consultation_id}"}
        except ConsultationClosed:
            closed = await asyncio.to_thread(store.require, consultation_id)
            return 409, {"error": f"consultation {consultation_id} is already closed ({closed.resolution}); "
                                  "nothing was sent to the customer", "consultation": closed.as_dict()}
        except ReplyError as error:
            return 400, {"error": str(error)}
        case = await asyncio.to_thread(store.require, consultation_id)
        try:
            resumed = await asyncio.to_thread(rasa.trigger_intent, step.conversation_id, step.intent, step.entities)
        except RasaError as error:
            logger.error("consultation %s: reply recorded, customer not reached: %s", consultation_id, error)
            await asyncio.to_thread(store.audit, consultation_id, "hub", "resume_failed", {"error": str(error)})
            return 502, {"error": f"the reply is recorded but the customer was not reached: {error}",
                         "consultation": case.as_dict()}
        return 200, {"consultation": case.as_dict(), "customer_messages": resumed.get("messages", [])}

    dedupe = SqlDedupe(store.engine)
    slack = (SlackInbound(config.slack_signing_secret, service.directory, dedupe,
                          lambda channel, ts: store.find_thread("slack", channel, ts))
             if config.slack_signing_secret else None)
    telegram = (TelegramInbound(config.telegram_webhook_secret, service.directory, dedupe,
                                lambda chat, message: store.find_thread("telegram", chat, message), store.open_for)
                if config.telegram_webhook_secret else None)

    async def webhook(request: Request, handler: Optional[Callable[[bytes, Mapping[str, str]], Any]],
                      setting: str) -> HTTPResponse:
        """Verify and parse at once (Slack wants an answer within 3 s); apply the reply in the background."""
        if handler is None:
            return _error(404, f"this webhook is off: set {setting}")
        result = await asyncio.to_thread(handler, request.body, dict(request.headers))
        if result.reason:
            logger.info("%s: %s", request.path, result.reason)
        ephemeral = getattr(result, "ephemeral", None)
        if ephemeral is not None:
            app.add_task(asyncio.to_thread(tell_slack, ephemeral))
        if result.reply is not None:
            app.add_task(answer_expert(result.reply))
        return json(result.body or {}, status=result.status)

    async def answer_expert(answer: ExpertReply) -> None:
        """Apply a webhook reply; when it could not reach the customer, tell the expert where they wrote."""
        status, payload = await apply(answer)
        if status != 200:
            await asyncio.to_thread(tell_expert, answer, f"Not sent: {payload.get('error')}")

    def tell_expert(answer: ExpertReply, text: str) -> None:
        raw = answer.raw
        if answer.source == "slack":
            tell_slack(Ephemeral(text, response_url=raw.get("response_url"), channel=raw.get("channel"),
                                 user=raw.get("user_id"), thread_ts=raw.get("thread_ts")))
        elif answer.source == "telegram" and "telegram" in service.channels:
            call = send_message(raw.get("chat_id"), text, raw.get("message_id"))
            try:
                service.channels["telegram"].call(call.pop("method"), call)
            except ChannelError as error:
                logger.warning("could not tell the expert on Telegram: %s", error.message)

    def tell_slack(ephemeral: Ephemeral) -> None:
        try:
            if ephemeral.response_url:
                requests.post(ephemeral.response_url, json=ephemeral.payload(), timeout=10).raise_for_status()
            elif "slack" in service.channels:
                service.channels["slack"].client.chat_postEphemeral(**ephemeral.payload())
        except Exception as error:  # the expert's feedback is best effort; the reply itself is recorded
            logger.warning("could not send a Slack ephemeral message: %s", error)

    @app.post("/slack/interactivity")
    async def slack_interactivity(request: Request) -> HTTPResponse:
        return await webhook(request, slack and slack.interactivity, ENV_SLACK_SIGNING_SECRET)

    @app.post("/slack/events")
    async def slack_events(request: Request) -> HTTPResponse:
        return await webhook(request, slack and slack.events, ENV_SLACK_SIGNING_SECRET)

    @app.post("/telegram/webhook")
    async def telegram_webhook(request: Request) -> HTTPResponse:
        return await webhook(request, telegram and telegram.handle, ENV_TELEGRAM_WEBHOOK_SECRET)

    @app.get("/api/metrics")
    async def metrics(_: Request) -> HTTPResponse:
        return json(await asyncio.to_thread(service.metrics))

    async def sla_timer() -> None:
        while True:
            await asyncio.sleep(config.sla_interval)
            try:
                await sla_tick()
            except Exception:  # the timer must survive a bad tick; the next one retries
                logger.exception("SLA tick failed")

    async def sla_tick() -> List[Dict[str, Any]]:
        notified = []
        for outcome in await asyncio.to_thread(service.run_sla):
            if outcome.customer_text:
                await asyncio.to_thread(rasa.trigger_intent, outcome.conversation_id, SLA_DELAY,
                                        {"consultation_id": outcome.consultation_id})
                notified.append({"consultation_id": outcome.consultation_id, "text": outcome.customer_text})
        return notified

    @app.after_server_start
    async def start_timer(app: Sanic, _: Any) -> None:
        if config.sla_interval > 0:
            app.add_task(sla_timer())

    app.blueprint(dashboard_blueprint(service, apply, config.dashboard_secret))
    app.blueprint(webchat_blueprint(service, config.rasa_url, config.chat_socket_url))
    app.ctx.apply = apply
    app.ctx.resume = resume
    app.ctx.sla_tick = sla_tick
    return app


def main(argv: Optional[List[str]] = None) -> int:
    """Run the hub on BACKLINE_HUB_PORT (5006)."""
    parser = argparse.ArgumentParser(prog="python -m backline hub", description=main.__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BACKLINE_HUB_PORT") or 5006))
    parser.add_argument("--host", default=os.environ.get("BACKLINE_HUB_HOST") or "127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  %(message)s")
    config = HubConfig.from_env()
    app = create_app(ConsultationService.from_env(), config, RasaClient(config.rasa_url, config.rasa_token))
    app.run(host=args.host, port=args.port, access_log=False, workers=1)
    return 0
