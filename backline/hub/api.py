"""The hub's JSON API for operators (``Authorization: Bearer <token>``): consultations of the caller's
queues, a consultation with its messages, audit trail and deliveries, replies, sending an undeliverable
reply again. Verdicts, overrides, metrics and QA reviews: `backline.hub.governance_api`.

The token is a person's own (`backline.hub.api_tokens`) or the shared integration token
(`SYSTEM`); `operator_guard` checks it for every ``/api/`` path and says what the caller may see
(`backline.access`). The work is the consultation flow's (`backline.hub.flow.ConsultationFlow`).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Callable, Coroutine, Dict, Optional

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from backline import limits
from backline.access import SYSTEM, access_for
from backline.consult.service import ConsultationService
from backline.consult.store import STATUSES, ConsultationStore
from backline.hub.api_tokens import ApiTokens
from backline.hub.flow import ConsultationFlow
from backline.hub.guidance import GOVERNANCE_FIELDS, ExpertReply

REPLY_SHAPE = (
    '{"action": ..., "text": ..., "allowed_followups": [...], "actor": ..., '
    '"override_reason": ..., "override_note": ..., "corrected_intent": ..., "verdict": ...}'
)


def error(status: int, message: str, **extra: Any) -> HTTPResponse:
    """``{"error": message, ...}`` with ``status``."""
    return json({"error": message, **extra}, status=status)


def caller(request: Request, token: str, tokens: ApiTokens) -> Optional[str]:
    """Who is calling the JSON API: `SYSTEM` for the shared token, the person of a per-operator token
    (`backline.hub.api_tokens`), None for anything else."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return None
    if hmac.compare_digest(given.encode(), token.encode()):
        return SYSTEM
    return tokens.person(given)


def operator_guard(
    flow: ConsultationFlow, token: str, tokens: ApiTokens, max_body: int
) -> Callable[[Request], Coroutine[Any, Any, Optional[HTTPResponse]]]:
    """The request middleware of every ``/api/`` path: 401 without a valid token, else the caller's
    access on ``request.ctx.access`` and the body size checked (``max_body``)."""

    async def require_operator(request: Request) -> Optional[HTTPResponse]:
        if request.path.startswith("/api/"):
            found = await asyncio.to_thread(caller, request, token, tokens)
            if found is None:
                return error(401, "operator token required: Authorization: Bearer <token>")
            request.ctx.access = access_for(flow.service.directory, found)
            return limits.refuse_oversized(request, max_body)
        return None

    return require_operator


def reply_fields(body: bytes, service: ConsultationService) -> Dict[str, Any]:
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
    extra = {name: limits.text_field(name, fields.get(name), required=False) or None for name in GOVERNANCE_FIELDS}
    return {"action": action, "text": text, "actor": actor, "allowed_followups": followups, "extra": extra}


async def visible_case(store: ConsultationStore, request: Request, consultation_id: str) -> Any:
    """The consultation if the caller's queues include it; else an error response (404 / 403)."""
    case = await asyncio.to_thread(store.get, consultation_id)
    if case is None:
        return error(404, f"no consultation {consultation_id}")
    if not request.ctx.access.may_see_case(case):
        return error(403, f"consultation {consultation_id} is not in your queues")
    return case


def api_blueprint(flow: ConsultationFlow) -> Blueprint:
    """The ``/api/`` routes over ``flow`` (`operator_guard` must run before them: ``request.ctx.access``)."""
    bp = Blueprint("api")
    store = flow.store

    async def visible(request: Request, consultation_id: str) -> Any:
        return await visible_case(store, request, consultation_id)

    @bp.get("/api/consultations")
    async def list_consultations(request: Request) -> HTTPResponse:
        status = request.args.get("status")
        if status is not None and status not in STATUSES:
            return error(400, f"status must be one of {', '.join(STATUSES)}")
        queue = request.args.get("queue")
        if queue and not request.ctx.access.may_see(queue):
            return error(403, f"queue {queue[:64]!r} is not one of yours")
        found = await asyncio.to_thread(store.list, request.args.get("conversation_id"), status, queue)
        return json([case.as_dict() for case in found if request.ctx.access.may_see_case(case)])

    @bp.get("/api/consultations/<consultation_id>")
    async def get_consultation(request: Request, consultation_id: str) -> HTTPResponse:
        case = await visible(request, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        messages = await asyncio.to_thread(store.messages, consultation_id)
        audit = await asyncio.to_thread(store.audit_trail, consultation_id)
        sent = await asyncio.to_thread(flow.outbox.for_consultation, consultation_id)
        return json(
            {
                **case.as_dict(),
                "messages": [m.as_dict() for m in messages],
                "audit": [e.as_dict() for e in audit],
                "deliveries": [d.as_dict() for d in sent],
            }
        )

    @bp.post("/api/consultations/<consultation_id>/reply")
    async def reply(request: Request, consultation_id: str) -> HTTPResponse:
        try:
            fields = reply_fields(request.body, flow.service)
        except limits.Refused as refused:
            return refused.response()
        case = await visible(request, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        person = request.ctx.access.person_id
        if fields["actor"] and fields["actor"] != person:
            return error(
                403, "actor is the token's person: a reply cannot name someone else (use that person's own token)"
            )
        speaker = person if person != SYSTEM else case.assignee or "operator"
        try:
            answer = ExpertReply(
                consultation_id,
                speaker,
                "api",
                fields["action"],
                fields["text"],
                fields["allowed_followups"],
                **fields["extra"],
            )
        except ValueError as problem:
            return error(400, str(problem))
        status, payload = await flow.apply_async(answer)
        return json(payload, status=status)

    @bp.post("/api/deliveries/<delivery_id>/retry")
    async def retry_delivery(request: Request, delivery_id: str) -> HTTPResponse:
        """Send an undeliverable reply again (the operator fixed what stopped it)."""
        found = await asyncio.to_thread(flow.outbox.get, delivery_id)
        if found is not None:
            case = await visible(request, found.consultation_id)
            if isinstance(case, HTTPResponse):
                return case
        try:
            delivery = await asyncio.to_thread(flow.outbox.requeue, delivery_id, actor=request.ctx.access.person_id)
        except ValueError as problem:
            return error(409, str(problem))
        flow.wake()
        return json({"delivery": delivery.as_dict()}, status=202)

    return bp
