"""The hub (`python -m backline hub`): the expert-facing web app.

- the operator dashboard (/dashboard, sign-in per operator) and the customer web chat (/chat);
- JSON API for operators (``Authorization: Bearer <token>``: a person's own token, `backline.hub.api_tokens`,
  or the shared integration token): consultations of the caller's queues, replies, verdicts and
  override reasons, outcome metrics, the QA review queue, a conversation's routing decisions;
- QA sampling: every ``BACKLINE_QA_INTERVAL`` seconds (300) a share of the AI's work goes to the review
  queue (`backline.governance.sampling`);
- Slack (``/slack/interactivity``, ``/slack/events``; signing secret) and Telegram (``/telegram/webhook``;
  secret token) webhooks: button clicks and replies from the experts' channels, recorded with the
  platform's delivery key in one transaction and answered at once, each delivery once;
- the SLA timer: every ``BACKLINE_SLA_INTERVAL`` seconds the ladder is walked and customers whose
  promised wait has passed hear about the delay;
- the delivery worker: expert replies and delay notices resume the customer's conversation through
  Rasa's trigger_intent, from the outbox, until Rasa confirms them (`backline.hub.delivery_worker`).

`create_app` only wires: the consultation flow (`backline.hub.flow.ConsultationFlow`: replies, the SLA
timer, the delivery worker) is the one object the route handlers use, in `backline.hub.api` (JSON API),
`backline.hub.webhooks` (Slack, Telegram), `backline.hub.dashboard` and `backline.hub.webchat`; the
work is in `backline.consult` (service, replies, outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json, redirect

from backline import limits, paths
from backline.consult.outbox import Outbox, RetryBudget, env_seconds
from backline.consult.service import ConsultationService
from backline.governance import sampling
from backline.governance.facts import TrackerReader, tracker_url
from backline.governance.service import GovernanceService
from backline.hub import headers
from backline.hub.api import api_blueprint, operator_guard
from backline.hub.api_tokens import ApiTokens
from backline.hub.dashboard import dashboard_blueprint
from backline.hub.dedupe import SqlDedupe
from backline.hub.delivery_worker import DeliveryWorker
from backline.hub.flow import ConsultationFlow
from backline.hub.governance_api import governance_blueprint
from backline.hub.operators import dashboard_secret
from backline.hub.rasa_client import RasaClient
from backline.hub.slack_inbound import SlackInbound
from backline.hub.telegram_inbound import TelegramInbound
from backline.hub.webchat import ENV_SOCKET_URL, socket_url, webchat_blueprint
from backline.hub.webhooks import ENV_SLACK_SIGNING_SECRET, ENV_TELEGRAM_WEBHOOK_SECRET, webhooks_blueprint
from backline.redact import install_log_filter, register, register_env

logger = logging.getLogger(__name__)

ENV_OPERATOR_TOKEN = "BACKLINE_OPERATOR_TOKEN"
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
    qa_interval: float = 300.0

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
            qa_interval=env_seconds(env, "BACKLINE_QA_INTERVAL", 300.0),
        )


def create_app(
    service: ConsultationService,
    config: HubConfig,
    rasa: RasaClient,
    name: str = "backline_hub",
    *,
    worker: Optional[DeliveryWorker] = None,
    governance: Optional[GovernanceService] = None,
) -> Sanic:
    """The hub's Sanic app over ``service`` (store, experts, channels) and ``rasa`` (the customer side):
    the consultation flow (`ConsultationFlow`) wired to the API, the webhooks, the dashboard and the
    web chat, with its timers started and stopped with the server."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = config.server_max_bytes
    headers.install(
        app, lambda request: socket_url(config.rasa_url, config.chat_socket_url, request.host, request.scheme)
    )  # CSP, frames, nosniff, no-store
    store = service.store
    worker = worker or DeliveryWorker(
        Outbox(store, config.delivery_budget),
        rasa,
        interval=config.delivery_interval,
        attempt_timeout=config.delivery_timeout,
    )
    governance = governance or GovernanceService(store, service.directory, TrackerReader(tracker_url()))
    flow = ConsultationFlow(service, worker, governance)
    app.register_middleware(
        operator_guard(flow, config.operator_token, ApiTokens(store), config.max_body_bytes), "request"
    )

    @app.get("/")
    async def home(_: Request) -> HTTPResponse:
        return redirect("/dashboard")

    @app.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return json({"status": "ok"})

    dedupe = SqlDedupe(store.engine)
    slack = (
        SlackInbound(
            config.slack_signing_secret,
            service.directory,
            dedupe,
            lambda channel, ts: store.find_thread("slack", channel, ts),
        )
        if config.slack_signing_secret
        else None
    )
    telegram = (
        TelegramInbound(
            config.telegram_webhook_secret,
            service.directory,
            dedupe,
            lambda chat, message: store.find_thread("telegram", chat, message),
            store.open_for,
        )
        if config.telegram_webhook_secret
        else None
    )

    qa_timer: List[asyncio.Task] = []

    @app.after_server_start
    async def start_timers(app: Sanic, _: Any) -> None:
        flow.start_timers(config.sla_interval, config.delivery_interval)
        if config.qa_interval > 0:
            qa_timer.append(asyncio.get_running_loop().create_task(qa_sampling(governance, config.qa_interval)))

    @app.before_server_stop
    async def stop_timers(app: Sanic, _: Any) -> None:
        await flow.stop_timers()
        for task in qa_timer:
            task.cancel()
        await asyncio.gather(*qa_timer, return_exceptions=True)

    app.blueprint(api_blueprint(flow))
    app.blueprint(governance_blueprint(governance))
    app.blueprint(webhooks_blueprint(flow, slack, telegram))
    app.blueprint(
        dashboard_blueprint(
            service,
            flow.apply_async,
            config.dashboard_secret,
            max_body=config.max_body_bytes,
            wake=flow.wake,
            governance=governance,
        )
    )
    app.blueprint(webchat_blueprint(service, config.rasa_url, config.chat_socket_url))
    app.ctx.flow = flow
    app.ctx.worker = worker
    return app


async def qa_sampling(governance: GovernanceService, interval: float) -> None:
    """QA sampling (`backline.governance.sampling.sample`) every ``interval`` seconds, off the event loop."""
    while True:
        try:
            added = await asyncio.to_thread(sampling.sample, governance)
            if any(added.values()):
                logger.info("QA sampling added %s", added)
        except Exception:  # the timer must survive a bad round (a database restart); the next one retries
            logger.exception("QA sampling failed")
        await asyncio.sleep(interval)


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
        register(config.operator_token, config.rasa_token, config.slack_signing_secret, config.telegram_webhook_secret)
        app = create_app(ConsultationService.from_env(), config, RasaClient(config.rasa_url, config.rasa_token))
    except ValueError as error:
        print(f"backline hub: {error}", file=sys.stderr)
        return 2
    app.run(
        host=args.host,
        port=args.port,
        access_log=False,
        workers=1,
        backlog=int(os.environ.get("SANIC_BACKLOG") or 1024),
    )
    return 0
