"""The hub (`python -m backline hub`): the expert-facing web app.

- JSON API for operators (``Authorization: Bearer <operator token>``): consultations, replies, metrics;
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
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json

from backline.consult.replies import SLA_DELAY, Reply, ReplyError, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import PROJECT_ROOT, ConsultationClosed, ConsultationNotFound, STATUSES
from backline.hub.rasa_client import RasaClient, RasaError

logger = logging.getLogger(__name__)

ENV_OPERATOR_TOKEN = "BACKLINE_OPERATOR_TOKEN"
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

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "HubConfig":
        from backline.launcher import api_token

        env = dict(os.environ if env is None else env)
        return cls(
            operator_token=operator_token(env),
            rasa_url=env.get("BACKLINE_RASA_URL") or f"http://localhost:{env.get('BACKLINE_RASA_PORT', '5005')}",
            rasa_token=api_token(env),
            sla_interval=float(env.get("BACKLINE_SLA_INTERVAL") or 30),
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
        answer = Reply(action=str(body.get("action") or ""), text=str(body.get("text") or ""),
                       allowed_followups=tuple(followups))
        return await resume(consultation_id, actor, "api", answer)

    async def resume(consultation_id: str, actor: str, source: str, answer: Reply) -> HTTPResponse:
        """Record the reply, then resume the customer's conversation with it."""
        try:
            step = await asyncio.to_thread(record_reply, store, consultation_id, actor, source, answer)
        except ConsultationNotFound:
            return _error(404, f"no consultation {consultation_id}")
        except ConsultationClosed:
            closed = await asyncio.to_thread(store.require, consultation_id)
            return _error(409, f"consultation {consultation_id} is already closed ({closed.resolution}); "
                               "nothing was sent to the customer", consultation=closed.as_dict())
        except ReplyError as error:
            return _error(400, str(error))
        case = await asyncio.to_thread(store.require, consultation_id)
        try:
            resumed = await asyncio.to_thread(rasa.trigger_intent, step.conversation_id, step.intent, step.entities)
        except RasaError as error:
            logger.error("consultation %s: reply recorded, customer not reached: %s", consultation_id, error)
            await asyncio.to_thread(store.audit, consultation_id, "hub", "resume_failed", {"error": str(error)})
            return _error(502, f"the reply is recorded but the customer was not reached: {error}",
                          consultation=case.as_dict())
        return json({"consultation": case.as_dict(), "customer_messages": resumed.get("messages", [])})

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
