"""The hub (`python -m backline hub`): the expert-facing web app.

- the operator dashboard (/dashboard, sign-in per operator) and the customer web chat (/chat);
- JSON API for operators (``Authorization: Bearer <token>``: a person's own token, `backline.hub.api_tokens`,
  or the shared integration token): consultations of the caller's queues, replies, metrics (supervisor);
- Slack (``/slack/interactivity``, ``/slack/events``; signing secret) and Telegram (``/telegram/webhook``;
  secret token) webhooks: button clicks and replies from the experts' channels, recorded with the
  platform's delivery key in one transaction and answered at once, each delivery once;
- the SLA timer: every ``BACKLINE_SLA_INTERVAL`` seconds the ladder is walked and customers whose
  promised wait has passed hear about the delay;
- the delivery worker: expert replies and delay notices resume the customer's conversation through
  Rasa's trigger_intent, from the outbox, until Rasa confirms them (`backline.hub.delivery_worker`).

Handlers are thin: the work is in `backline.hub.flow` and `backline.consult` (service, replies, outbox).
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json, redirect

from backline import limits, paths
from backline.access import SYSTEM, access_for
from backline.consult.outbox import Outbox, RetryBudget, env_seconds
from backline.consult.service import ConsultationService
from backline.consult.store import STATUSES
from backline.hub.dashboard import dashboard_blueprint
from backline.hub.delivery_worker import DeliveryWorker
from backline.hub.flow import ConsultationFlow
from backline.hub.api_tokens import ApiTokens
from backline.hub.dedupe import SqlDedupe
from backline.hub.guidance import ExpertReply
from backline.hub.operators import dashboard_secret
from backline.hub.rasa_client import RasaClient
from backline.hub.slack_inbound import SlackInbound
from backline.hub.telegram_inbound import TelegramInbound
from backline.hub.webchat import ENV_SOCKET_URL, socket_url, webchat_blueprint
from backline.hub import headers
from backline.redact import install_log_filter, register, register_env

logger = logging.getLogger(__name__)

ENV_OPERATOR_TOKEN = "BACKLINE_OPERATOR_TOKEN"
ENV_SLACK_SIGNING_SECRET = "BACKLINE_SLACK_SIGNING_SECRET"
ENV_TELEGRAM_WEBHOOK_SECRET = "BACKLINE_TELEGRAM_WEBHOOK_SECRET"
TOKEN_FILE = paths.VAR / "operator_token"


def operator_token(env: Mapping[str, str]) -> str:
    """BACKLINE_OPERATOR_TOKEN, else one generated once into var/operator_token (0600 from creation)."""
    return paths.secret(env, ENV_OPERATOR_TOKEN, TOKEN_FILE)


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
    delivery_interval: float = 1.0
    delivery_timeout: float = 10.0
    delivery_budget: RetryBudget = RetryBudget()
    max_body_bytes: int = limits.MAX_BODY_BYTES
    server_max_bytes: int = limits.SERVER_MAX_BYTES

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "HubConfig":
        from backline.launcher import api_token

        env = dict(os.environ if env is None else env)
        return cls(
            operator_token=operator_token(env),
            rasa_url=env.get("BACKLINE_RASA_URL") or f"http://localhost:{env.get('BACKLINE_RASA_PORT', '5005')}",
            rasa_token=api_token(env),
            sla_interval=env_seconds(env, "BACKLINE_SLA_INTERVAL", 30.0),
            dashboard_secret=dashboard_secret(env),
            chat_socket_url=env.get(ENV_SOCKET_URL) or None,
            slack_signing_secret=env.get(ENV_SLACK_SIGNING_SECRET, ""),
            telegram_webhook_secret=env.get(ENV_TELEGRAM_WEBHOOK_SECRET, ""),
            delivery_interval=env_seconds(env, "BACKLINE_DELIVERY_INTERVAL", 1.0),
            delivery_timeout=env_seconds(env, "BACKLINE_DELIVERY_TIMEOUT", 10.0),
            delivery_budget=RetryBudget.from_env(env),
            max_body_bytes=limits.max_body_bytes(env),
            server_max_bytes=int(env.get(limits.ENV_SANIC_MAX) or limits.SERVER_MAX_BYTES),
        )


def _error(status: int, message: str, **extra: Any) -> HTTPResponse:
    return json({"error": message, **extra}, status=status)


def _caller(request: Request, token: str, tokens: ApiTokens) -> Optional[str]:
    """Who is calling the JSON API: `SYSTEM` for the shared token, the person of a per-operator token
    (`backline.hub.api_tokens`), None for anything else."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return None
    if hmac.compare_digest(given.encode(), token.encode()):
        return SYSTEM
    return tokens.person(given)


def create_app(service: ConsultationService, config: HubConfig, rasa: RasaClient, name: str = "backline_hub",
               *, worker: Optional[DeliveryWorker] = None) -> Sanic:
    """The hub's Sanic app over ``service`` (store, experts, channels) and ``rasa`` (the customer side)."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = config.server_max_bytes
    headers.install(app, lambda request: socket_url(config.rasa_url, config.chat_socket_url, request.host,
                                                    request.scheme))  # CSP, frames, nosniff, no-store
    store = service.store
    worker = worker or DeliveryWorker(Outbox(store, config.delivery_budget), rasa,
                                      interval=config.delivery_interval, attempt_timeout=config.delivery_timeout)
    flow = ConsultationFlow(service, worker)

    tokens = ApiTokens(store)

    @app.middleware("request")
    async def require_operator(request: Request) -> Optional[HTTPResponse]:
        if request.path.startswith("/api/"):
            caller = await asyncio.to_thread(_caller, request, config.operator_token, tokens)
            if caller is None:
                return _error(401, "operator token required: Authorization: Bearer <token>")
            request.ctx.access = access_for(service.directory, caller)
            return limits.refuse_oversized(request, config.max_body_bytes)
        return None

    async def visible(request: Request, consultation_id: str) -> Any:
        """The consultation if the caller's queues include it; else an error response (404 / 403)."""
        case = await asyncio.to_thread(store.get, consultation_id)
        if case is None:
            return _error(404, f"no consultation {consultation_id}")
        if not request.ctx.access.may_see_case(case):
            return _error(403, f"consultation {consultation_id} is not in your queues")
        return case

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
        queue = request.args.get("queue")
        if queue and not request.ctx.access.may_see(queue):
            return _error(403, f"queue {queue[:64]!r} is not one of yours")
        found = await asyncio.to_thread(store.list, request.args.get("conversation_id"), status, queue)
        return json([case.as_dict() for case in found if request.ctx.access.may_see_case(case)])

    @app.get("/api/consultations/<consultation_id>")
    async def get_consultation(request: Request, consultation_id: str) -> HTTPResponse:
        case = await visible(request, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        messages = await asyncio.to_thread(store.messages, consultation_id)
        audit = await asyncio.to_thread(store.audit_trail, consultation_id)
        sent = await asyncio.to_thread(flow.outbox.for_consultation, consultation_id)
        return json({**case.as_dict(), "messages": [m.as_dict() for m in messages],
                     "audit": [e.as_dict() for e in audit], "deliveries": [d.as_dict() for d in sent]})

    @app.post("/api/consultations/<consultation_id>/reply")
    async def reply(request: Request, consultation_id: str) -> HTTPResponse:
        try:
            fields = _api_reply(request.body, service)
        except limits.Refused as refused:
            return refused.response()
        case = await visible(request, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        caller = request.ctx.access.person_id
        if fields["actor"] and fields["actor"] != caller:
            return _error(403, "actor is the token's person: a reply cannot name someone else "
                               "(use that person's own token)")
        speaker = caller if caller != SYSTEM else case.assignee or "operator"
        try:
            answer = ExpertReply(consultation_id, speaker, "api",
                                 fields["action"], fields["text"], fields["allowed_followups"])
        except ValueError as error:
            return _error(400, str(error))
        status, payload = await flow.apply_async(answer)
        return json(payload, status=status)

    @app.post("/api/deliveries/<delivery_id>/retry")
    async def retry_delivery(request: Request, delivery_id: str) -> HTTPResponse:
        """Send an undeliverable reply again (the operator fixed what stopped it)."""
        found = await asyncio.to_thread(flow.outbox.get, delivery_id)
        if found is not None:
            case = await visible(request, found.consultation_id)
            if isinstance(case, HTTPResponse):
                return case
        try:
            delivery = await asyncio.to_thread(flow.outbox.requeue, delivery_id,
                                               actor=request.ctx.access.person_id)
        except ValueError as error:
            return _error(409, str(error))
        worker.wake()
        return json({"delivery": delivery.as_dict()}, status=202)

    dedupe = SqlDedupe(store.engine)
    slack = (SlackInbound(config.slack_signing_secret, service.directory, dedupe,
                          lambda channel, ts: store.find_thread("slack", channel, ts))
             if config.slack_signing_secret else None)
    telegram = (TelegramInbound(config.telegram_webhook_secret, service.directory, dedupe,
                                lambda chat, message: store.find_thread("telegram", chat, message), store.open_for)
                if config.telegram_webhook_secret else None)

    async def webhook(request: Request, handler: Optional[Callable[[bytes, Mapping[str, str]], Any]],
                      setting: str) -> HTTPResponse:
        """Verify and parse, record the reply with its delivery in one transaction (the platform's
        delivery key too), answer at once; the delivery worker reaches the customer. If recording
        fails nothing is kept and the platform is asked to retry (503)."""
        if handler is None:
            return _error(404, f"this webhook is off: set {setting}")
        result = await asyncio.to_thread(handler, request.body, dict(request.headers))
        if result.reason:
            logger.info("%s: %s", request.path, result.reason)
        body = dict(result.body or {})
        if result.reply is not None and not await asyncio.to_thread(allowed, result.reply):
            problem = "Not sent: this case is not in your queues."
            logger.warning("%s: %s replied to a case outside their queues", request.path, result.reply.actor)
            if body.get("method") == "answerCallbackQuery":
                body.update(text=problem, show_alert=True)
            else:
                app.add_task(asyncio.to_thread(flow.tell_expert, result.reply, problem))
        elif result.reply is not None:
            try:
                (status, payload), delivery_id = await asyncio.to_thread(flow.record, result.reply)
            except Exception:
                logger.exception("%s: the reply could not be recorded; the platform will retry", request.path)
                return _error(503, "the reply could not be recorded; please retry")
            if delivery_id is not None:
                worker.wake()
            elif payload.get("duplicate"):
                body = {}  # a re-delivery of what was applied: nothing to answer again
            elif status >= 400:
                problem = f"Not sent: {payload.get('error')}"
                if body.get("method") == "answerCallbackQuery":
                    body.update(text=problem[:200], show_alert=True)
                else:
                    app.add_task(asyncio.to_thread(flow.tell_expert, result.reply, problem))
        ephemeral = getattr(result, "ephemeral", None)
        if ephemeral is not None:
            app.add_task(asyncio.to_thread(flow.tell_slack, ephemeral))
        return json(body, status=result.status)

    @app.post("/slack/interactivity")
    async def slack_interactivity(request: Request) -> HTTPResponse:
        return await webhook(request, slack and slack.interactivity, ENV_SLACK_SIGNING_SECRET)

    @app.post("/slack/events")
    async def slack_events(request: Request) -> HTTPResponse:
        return await webhook(request, slack and slack.events, ENV_SLACK_SIGNING_SECRET)

    @app.post("/telegram/webhook")
    async def telegram_webhook(request: Request) -> HTTPResponse:
        return await webhook(request, telegram and telegram.handle, ENV_TELEGRAM_WEBHOOK_SECRET)

    def allowed(reply: ExpertReply) -> bool:
        """Whether the expert answering from Slack or Telegram may decide the case (their queues)."""
        case = store.get(reply.consultation_id)
        return case is None or access_for(service.directory, reply.actor).may_see_case(case)

    @app.get("/api/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        if not request.ctx.access.sees_all:
            return _error(403, "metrics cover every queue: for the supervisor and integrations")
        return json(await asyncio.to_thread(service.metrics))

    async def sla_timer() -> None:
        while True:
            await asyncio.sleep(config.sla_interval)
            try:
                await asyncio.to_thread(flow.sla_tick)
            except Exception:  # the timer must survive a bad tick; the next one retries
                logger.exception("SLA tick failed")

    timers: List[asyncio.Task] = []

    @app.after_server_start
    async def start_timers(app: Sanic, _: Any) -> None:
        if config.sla_interval > 0:
            timers.append(asyncio.get_running_loop().create_task(sla_timer()))
        if config.delivery_interval > 0:
            timers.append(asyncio.get_running_loop().create_task(worker.run()))

    @app.before_server_stop
    async def stop_timers(app: Sanic, _: Any) -> None:
        """Stop the timers cleanly; a delivery in flight keeps its lease and is retried after it."""
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        timers.clear()

    app.blueprint(dashboard_blueprint(service, flow.apply_async, config.dashboard_secret,
                                      max_body=config.max_body_bytes, wake=worker.wake))
    app.blueprint(webchat_blueprint(service, config.rasa_url, config.chat_socket_url))
    app.ctx.flow = flow
    app.ctx.worker = worker
    return app


REPLY_SHAPE = '{"action": ..., "text": ..., "allowed_followups": [...], "actor": ...}'


def _api_reply(body: bytes, service: ConsultationService) -> Dict[str, Any]:
    """The JSON API's reply body, checked: ``action``, ``text``, ``actor`` ("" when not given: the
    assignee) and ``allowed_followups``; `limits.Refused` 400 for anything malformed or wrongly typed."""
    fields = limits.json_object(body, f"a JSON object: {REPLY_SHAPE}")
    action = limits.text_field("action", fields.get("action"), empty=False)
    text = limits.text_field("text", fields.get("text"), required=False) or ""
    actor = limits.text_field("actor", fields.get("actor"), required=False) or ""
    if actor and actor not in service.directory.people:
        raise limits.Refused(400, f"actor {actor[:64]!r} is not a person of experts.yml")
    followups = fields.get("allowed_followups")
    followups = [] if followups is None else followups
    if not isinstance(followups, list):
        raise limits.Refused(400, "allowed_followups must be a list of follow-up types")
    followups = tuple(limits.text_field("allowed_followups[]", f) for f in followups)
    return {"action": action, "text": text, "actor": actor, "allowed_followups": followups}


def main(argv: Optional[List[str]] = None) -> int:
    """Run the hub on BACKLINE_HUB_PORT (5006)."""
    parser = argparse.ArgumentParser(prog="python -m backline hub", description=main.__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BACKLINE_HUB_PORT") or 5006))
    parser.add_argument("--host", default=os.environ.get("BACKLINE_HUB_HOST") or "127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s  %(message)s")
    register_env(os.environ)
    install_log_filter()
    for name in ("sanic.root", "sanic.error", "sanic.access"):
        install_log_filter(logging.getLogger(name))
    try:  # a setting that is not what it must be (BACKLINE_TRUSTED_PROXIES, ...): say which, start nothing
        config = HubConfig.from_env()
        register(config.operator_token, config.rasa_token, config.slack_signing_secret,
                 config.telegram_webhook_secret)
        app = create_app(ConsultationService.from_env(), config, RasaClient(config.rasa_url, config.rasa_token))
    except ValueError as error:
        print(f"backline hub: {error}", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, access_log=False, workers=1)
    return 0
