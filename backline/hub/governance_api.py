"""The hub's JSON API for governance (``Authorization: Bearer <token>``, checked by
`backline.hub.api.operator_guard` like every ``/api/`` path):

- ``GET  /api/metrics?since=&until=&queue=&intent=&channel=&reason=``: the outcome metrics
  (`backline.governance.metrics`) over the window (default the last 30 days; ``30d``, ISO dates, an
  ``until`` date including its day, or datetimes: `backline.governance.window`), within the caller's queues (a supervisor and the integration token: every queue);
- ``POST /api/consultations/{id}/verdict`` ``{"verdict": "needed" | "not_needed" | "too_late", "note"}`` on a
  decided case (409 while it is open: a verdict with the decision goes in the reply's ``verdict``);
- ``POST /api/consultations/{id}/override`` ``{"reason": ..., "note": ..., "intent": ...}``: why the AI's
  draft was denied or edited (governance.yml's ``override_reasons``);
- ``GET  /api/reviews?status=&kind=``, ``GET /api/reviews/{id}`` (with transcript and routing decisions),
  ``POST /api/reviews/{id}`` ``{"verdict": "right" | "should_have_escalated" | "should_not_have_escalated" |
  "wrong_answer", "note", "intent"}``: the QA review queue;
- ``GET  /api/conversations/{id}/decisions``: each user turn's routing decision (supervisor): who decided
  what, when, on what evidence, for the turns the AI took alone too.

The actor of a verdict, a reason or a review is the token's person (the integration token: ``system``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from backline import limits
from backline.consult.governance import CaseStillOpen, ReviewDone
from backline.governance.service import FILTERS, GovernanceService, parse_when
from backline.hub.api import error, visible_case


async def _run(call: Callable[[], Any]) -> Any:
    """``call()`` off the event loop; its errors become responses: ValueError 400, LookupError 404,
    PermissionError 403, ReviewDone and CaseStillOpen 409."""
    try:
        return await asyncio.to_thread(call)
    except (ReviewDone, CaseStillOpen) as conflict:
        return error(409, str(conflict))
    except PermissionError as denied:
        return error(403, str(denied))
    except LookupError as missing:
        return error(404, str(missing).strip("'\""))
    except ValueError as bad:
        return error(400, str(bad))


def _body(request: Request, shape: str) -> Dict[str, Any]:
    fields = limits.json_object(request.body, f"a JSON object: {shape}")
    return {
        key: limits.text_field(key, fields.get(key), required=False)
        for key in ("verdict", "reason", "note", "intent")
        if key in fields
    }


def governance_blueprint(governance: GovernanceService) -> Blueprint:
    """The governance routes over ``governance`` (``request.ctx.access`` set by the operator guard)."""
    bp = Blueprint("governance_api")
    store = governance.store

    async def on_case(
        request: Request, consultation_id: str, shape: str, call: Callable[[Dict[str, Any], str], Any], key: str
    ) -> HTTPResponse:
        """A POST on a case the caller may see: its body checked, ``call(fields, actor)`` off the loop,
        the record answered under ``key``."""
        try:
            fields = _body(request, shape)
        except limits.Refused as refused:
            return refused.response()
        case = await visible_case(store, request, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        result = await _run(lambda: call(fields, request.ctx.access.person_id))
        return result if isinstance(result, HTTPResponse) else json({key: result.as_dict()})

    @bp.get("/api/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        now = governance.clock()
        try:
            since = parse_when(request.args.get("since"), now, "since")
            until = parse_when(request.args.get("until"), now, "until", end_of_day=True)
        except ValueError as bad:
            return error(400, str(bad))
        filters = {name: request.args.get(name) for name in FILTERS}
        queue = filters.get("queue")
        if queue and not request.ctx.access.may_see(queue):
            return error(403, f"queue {queue[:64]!r} is not one of yours")
        result = await _run(lambda: governance.metrics(request.ctx.access, since, until, filters))
        return result if isinstance(result, HTTPResponse) else json(result)

    @bp.post("/api/consultations/<consultation_id>/verdict")
    async def verdict(request: Request, consultation_id: str) -> HTTPResponse:
        return await on_case(
            request,
            consultation_id,
            '{"verdict": "needed" | "not_needed" | "too_late", "note": "..."}',
            lambda fields, actor: governance.record_verdict(
                consultation_id, fields.get("verdict") or "", actor=actor, source="api", note=fields.get("note")
            ),
            "verdict",
        )

    @bp.post("/api/consultations/<consultation_id>/override")
    async def override(request: Request, consultation_id: str) -> HTTPResponse:
        return await on_case(
            request,
            consultation_id,
            '{"reason": "...", "note": "...", "intent": "..."}',
            lambda fields, actor: governance.set_override_reason(
                consultation_id,
                fields.get("reason") or "",
                actor=actor,
                source="api",
                note=fields.get("note"),
                corrected_intent=fields.get("intent"),
            ),
            "override",
        )

    @bp.get("/api/reviews")
    async def reviews(request: Request) -> HTTPResponse:
        status, kind = request.args.get("status"), request.args.get("kind")
        result = await _run(lambda: governance.reviews(request.ctx.access, status, kind))
        return result if isinstance(result, HTTPResponse) else json([r.as_dict() for r in result])

    @bp.get("/api/reviews/<review_id>")
    async def review(request: Request, review_id: str) -> HTTPResponse:
        result = await _run(lambda: governance.review_detail(request.ctx.access, review_id))
        return result if isinstance(result, HTTPResponse) else json(result)

    @bp.post("/api/reviews/<review_id>")
    async def record_review(request: Request, review_id: str) -> HTTPResponse:
        try:
            fields = _body(
                request, '{"verdict": "right" | "should_have_escalated" | ..., "note": "...", "intent": "..."}'
            )
        except limits.Refused as refused:
            return refused.response()
        result = await _run(
            lambda: governance.record_review(
                request.ctx.access, review_id, fields.get("verdict") or "", fields.get("note"), fields.get("intent")
            )
        )
        return result if isinstance(result, HTTPResponse) else json({"review": result.as_dict()})

    @bp.get("/api/conversations/<conversation_id>/decisions")
    async def decisions(request: Request, conversation_id: str) -> HTTPResponse:
        if not request.ctx.access.sees_all:
            return error(403, "a conversation's routing decisions are for the supervisor and integrations")
        result = await _run(lambda: governance.decisions(conversation_id))
        return (
            result
            if isinstance(result, HTTPResponse)
            else json({"conversation_id": conversation_id, "decisions": result})
        )

    return bp
