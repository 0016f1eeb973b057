"""The dashboard's governance pages: analytics, the QA review queue, and verdicts and override reasons on a case.

Pages (signed-in operator; otherwise a redirect to sign-in, as the other dashboard pages):

- ``/dashboard/analytics``: charts of the outcome metrics (Chart.js, vendored in
  ``static/dashboard/vendor``) by week and by a chosen breakdown, with filters;
- ``/dashboard/reviews`` and ``/dashboard/reviews/<id>``: the QA review queue and one review (the
  transcript, the routing decisions, the reviewer's verdict).

Their JSON (401 without a session; every POST passes the dashboard's forgery checks, `backline.hub.forgery`):

- ``GET /dashboard/api/governance``: the labels of governance.yml (verdicts, override reasons), the
  review verdicts, the matrix's intents and the operator's queues, for the pages' buttons and filters;
- ``GET /dashboard/api/metrics?since=&until=&queue=&intent=&channel=&reason=``: `GovernanceService.metrics`
  for the operator's queues. ``since``/``until`` are ISO dates (``2026-11-30``: ``until`` includes that
  day) or date-times (``2026-11-30T09:00:00Z``, UTC when no offset is given); a bad one, ``until`` before
  ``since``, or a queue that is not the operator's gets 400 / 403;
- ``GET /dashboard/api/reviews?status=pending&kind=``, ``GET /dashboard/api/reviews/<id>``,
  ``POST /dashboard/api/reviews/<id>`` ``{"verdict", "note", "corrected_intent"}``: 404 no such review,
  403 not in the operator's queues, 409 already reviewed, 400 a bad verdict;
- ``POST /dashboard/api/consultations/<id>/verdict`` ``{"verdict", "note"}`` (once the case is closed,
  409 before) and ``.../override`` ``{"reason", "note", "intent"}`` (404 when the draft was not
  overridden): the operator as the actor, source ``dashboard``; 403 outside their queues, 400 bad values.

The work is the lead's `backline.governance.service.GovernanceService` (``flow.governance``); this
module only reads requests and answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json as jsonlib
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, file, json

from backline import configuration
from backline.access import access_for
from backline.consult.governance import REVIEW_VERDICTS, CaseStillOpen, ReviewDone
from backline.consult.store import ConsultationStore
from backline.governance.config import governance as governance_rules
from backline.governance.service import FILTERS
from backline.governance.window import parse_moment
from backline.hub.operators import Operator
from backline.limits import Refused, json_object, text_field
from backline.routing.directory import ExpertDirectory
from backline.utc import utcnow

MAX_FILTER_CHARS = 64
MAX_NOTE_CHARS = 2000
DATE_SHAPE = "an ISO date (2026-11-30) or date and time (2026-11-30T09:00:00Z), or 30d / 12w / 24h"

Mine = Callable[[Operator, str], Awaitable[Any]]
"""The dashboard's case lookup: the consultation, or the 404 / 403 answer."""


def _dumps(value: Any) -> str:
    return jsonlib.dumps(value, default=str)


def answer(payload: Any, status: int = 200) -> HTTPResponse:
    """JSON whose dates (datetime, date) are written as ISO text."""
    return json(payload, status=status, dumps=_dumps)


def error(status: int, message: str) -> HTTPResponse:
    return json({"error": message}, status=status)


def moment(name: str, value: Optional[str], *, end_of_day: bool = False) -> Optional[dt.datetime]:
    """A ``since``/``until`` query value (`backline.governance.window`; None when absent); `Refused` 400
    for anything else."""
    try:
        return parse_moment(value, utcnow(), end_of_day=end_of_day)
    except ValueError:
        raise Refused(400, f"{name} must be {DATE_SHAPE}, not {str(value).strip()[:40]!r}") from None


def metrics_query(args: Any) -> tuple:
    """(since, until, filters) of the metrics' query string; `Refused` 400 for a bad value."""
    since = moment("since", args.get("since"))
    until = moment("until", args.get("until"), end_of_day=True)
    if since and until and until <= since:
        raise Refused(400, "until must be after since")
    filters: Dict[str, str] = {}
    for name in FILTERS:
        value = (args.get(name) or "").strip()
        if value:
            filters[name] = text_field(name, value, max_chars=MAX_FILTER_CHARS)
    return since, until, filters


def optional_text(payload: Dict[str, Any], name: str, limit: int = MAX_NOTE_CHARS) -> Optional[str]:
    """An optional text field of a JSON body; None when absent or blank; `Refused` otherwise."""
    value = text_field(name, payload.get(name), required=False, max_chars=limit)
    return value.strip() if value and value.strip() else None


def case_fields(store: ConsultationStore, consultation_id: str) -> Dict[str, Any]:
    """What the case page shows of its governance: the verdict and the override (draft and final text)."""
    verdict, override = store.verdict(consultation_id), store.override(consultation_id)
    return {
        "verdict": verdict.as_dict() if verdict else None,
        "override": override.as_dict() if override else None,
    }


def register(
    bp: Blueprint,
    *,
    governance: Any,
    store: ConsultationStore,
    directory: ExpertDirectory,
    signed_in: Callable[[bool], Callable],
    mine: Mine,
    static: Path,
) -> None:
    """Add the pages and JSON above to the dashboard's blueprint ``bp``; ``governance``: the hub's
    `GovernanceService` (None: the JSON answers 503); ``signed_in``/``mine``: the dashboard's session
    check and case lookup."""

    def guarded(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
        """Refused → its status; LookupError 404, PermissionError 403, ReviewDone and CaseStillOpen 409,
        ValueError 400."""

        @functools.wraps(handler)
        async def checked(request: Request, operator: Operator, *args: Any, **kwargs: Any) -> HTTPResponse:
            if governance is None:
                return error(503, "governance is not configured on this hub")
            try:
                return await handler(request, operator, *args, **kwargs)
            except Refused as refused:
                return refused.response()
            except LookupError as missing:
                return error(404, str(missing).strip("'\""))
            except PermissionError as refused_access:
                return error(403, str(refused_access))
            except (ReviewDone, CaseStillOpen) as conflict:
                return error(409, str(conflict))
            except ValueError as bad:
                return error(400, str(bad))

        return checked

    def page(name: str) -> Callable[..., Awaitable[HTTPResponse]]:
        async def serve(_: Request, __: Operator, *___: Any, **____: Any) -> HTTPResponse:
            return await file(static / name)

        return serve

    bp.add_route(signed_in(True)(page("analytics.html")), "/dashboard/analytics", name="analytics_page")
    bp.add_route(signed_in(True)(page("reviews.html")), "/dashboard/reviews", name="reviews_page")
    bp.add_route(signed_in(True)(page("reviews.html")), "/dashboard/reviews/<review_id>", name="review_page")

    @bp.get("/dashboard/api/governance")
    @signed_in(False)
    async def governance_labels(_: Request, operator: Operator) -> HTTPResponse:
        rules = governance_rules()
        access = access_for(directory, operator.person_id)
        return json(
            {
                "verdicts": [{"key": key, "label": label} for key, label in rules.verdicts.items()],
                "override_reasons": [{"key": key, "label": label} for key, label in rules.override_reasons.items()],
                "review_verdicts": list(REVIEW_VERDICTS),
                "intents": list(configuration.matrix().intents),
                "queues": [name for name in directory.queues if access.may_see(name)],
            }
        )

    @bp.get("/dashboard/api/metrics")
    @signed_in(False)
    @guarded
    async def metrics(request: Request, operator: Operator) -> HTTPResponse:
        since, until, filters = metrics_query(request.args)
        access = access_for(directory, operator.person_id)
        if "queue" in filters and not access.may_see(filters["queue"]):
            return error(403, f"queue {filters['queue']!r} is not one of yours")
        found = await asyncio.to_thread(governance.metrics, access, since, until, filters)
        return answer(found)

    @bp.get("/dashboard/api/reviews")
    @signed_in(False)
    @guarded
    async def review_queue(request: Request, operator: Operator) -> HTTPResponse:
        status = request.args.get("status") or "pending"
        kind = request.args.get("kind") or None
        access = access_for(directory, operator.person_id)
        found = await asyncio.to_thread(
            governance.reviews, access, status=None if status == "all" else status, kind=kind
        )
        return answer({"reviews": [review.as_dict() for review in found]})

    @bp.get("/dashboard/api/reviews/<review_id>")
    @signed_in(False)
    @guarded
    async def review_detail(_: Request, operator: Operator, review_id: str) -> HTTPResponse:
        access = access_for(directory, operator.person_id)
        return answer(await asyncio.to_thread(governance.review_detail, access, review_id))

    @bp.post("/dashboard/api/reviews/<review_id>")
    @signed_in(False)
    @guarded
    async def review_verdict(request: Request, operator: Operator, review_id: str) -> HTTPResponse:
        payload = json_object(request.body or b"", '{"verdict": "right", "note": "...", "corrected_intent": null}')
        verdict = text_field("verdict", payload.get("verdict"), empty=False, max_chars=MAX_FILTER_CHARS)
        note = optional_text(payload, "note")
        corrected = optional_text(payload, "corrected_intent", MAX_FILTER_CHARS)
        access = access_for(directory, operator.person_id)
        review = await asyncio.to_thread(governance.record_review, access, review_id, verdict, note, corrected)
        return answer({"review": review.as_dict()})

    @bp.post("/dashboard/api/consultations/<consultation_id>/verdict")
    @signed_in(False)
    @guarded
    async def case_verdict(request: Request, operator: Operator, consultation_id: str) -> HTTPResponse:
        payload = json_object(request.body or b"", '{"verdict": "needed", "note": "..."}')
        verdict = text_field("verdict", payload.get("verdict"), empty=False, max_chars=MAX_FILTER_CHARS)
        note = optional_text(payload, "note")
        case = await mine(operator, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        recorded = await asyncio.to_thread(
            functools.partial(
                governance.record_verdict,
                consultation_id,
                verdict,
                actor=operator.person_id,
                source="dashboard",
                note=note,
            )
        )
        return answer({"verdict": recorded.as_dict()})

    @bp.post("/dashboard/api/consultations/<consultation_id>/override")
    @signed_in(False)
    @guarded
    async def case_override(request: Request, operator: Operator, consultation_id: str) -> HTTPResponse:
        payload = json_object(request.body or b"", '{"reason": "wrong_facts", "note": "...", "intent": null}')
        reason = text_field("reason", payload.get("reason"), empty=False, max_chars=MAX_FILTER_CHARS)
        note = optional_text(payload, "note")
        intent = optional_text(payload, "intent", MAX_FILTER_CHARS)
        case = await mine(operator, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        recorded = await asyncio.to_thread(
            functools.partial(
                governance.set_override_reason,
                consultation_id,
                reason,
                actor=operator.person_id,
                source="dashboard",
                note=note,
                corrected_intent=intent,
            )
        )
        return answer({"override": recorded.as_dict()})
