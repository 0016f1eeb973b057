"""The operator dashboard: sign-in, the priority queue, a consultation's page, live updates.

Pages (``/dashboard``, ``/dashboard/consultations/<id>``) and their JSON (``/dashboard/api/...``)
need a signed-in operator (`backline.hub.operators`): pages redirect to ``/dashboard/login``,
JSON answers 401. ``/dashboard/events`` is a Server-Sent Events stream that says ``change``
whenever the consultation store changed (checked at most once a second for all listeners);
the page then fetches what it shows again. Replies go through the hub's ``apply`` (``//`` lines
stay internal; record the reply, resume the customer's conversation), as the JSON API's and the
Slack and Telegram replies do, with the signed-in operator as the actor. A reply may also carry why the AI's
draft was overridden and the verdict on the escalation (`GOVERNANCE_FIELDS`). The analytics and QA
review pages, and a case's verdict and override reason: `backline.hub.analytics_pages`.

Bodies are checked before anything happens (`backline.limits`): a POST body over
BACKLINE_MAX_BODY_BYTES (65,536) gets 413; a sign-in without a username and password, or with one
too long to be real, 400 (and counts no failure); a reply that is not a JSON object whose
``action`` is a string, ``text`` a string (or absent) and ``allowed_followups`` a list of strings
(or absent) gets 400 ``{"error": "..."}``. None of them touches the store.

Every POST that changes something (replies, resends, sign-out) must come from the dashboard's own
page: Origin (or Referer) check, CSRF token, JSON bodies only (`backline.hub.forgery`: 403, 415).
Sign-in (`backline.hub.sign_in`): the Origin check; failures limited per address, per username and
address (backoff) and overall, in the database (429 with Retry-After, the same page whatever the
username); scrypt on its own small pool (503 with Retry-After when it is full); the demo password
refused unless BACKLINE_DEMO=1. The session cookie is HttpOnly, SameSite=Lax, and Secure over HTTPS
or with BACKLINE_COOKIE_SECURE=1.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import math
import time
import urllib.parse
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, file, json, redirect
from sanic.response import html as html_response

from backline import configuration
from backline.access import access_for
from backline.consult import board
from backline.consult.outbox import Outbox
from backline.consult.service import ConsultationService
from backline.hub import analytics_pages, forgery
from backline.hub.guidance import GOVERNANCE_FIELDS, ExpertReply
from backline.hub.operators import (
    SESSION_SECONDS,
    Operator,
    Settings,
    authenticate,
    csrf_token,
    csrf_valid,
    demo_refused,
    operators,
    read_session,
    sign_session,
)
from backline.hub.sign_in import PasswordPool, PoolFull, SignInLimits, client_address, retry_after
from backline.limits import Refused, json_object, max_body_bytes, text_field, too_large
from backline.utc import utcnow

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "backline_session"
STREAM_SECONDS = 300
"""An event stream ends after this long; the browser reconnects at once (``retry``)."""
HEARTBEAT_SECONDS = 15
MAX_USERNAME = 200
MAX_PASSWORD = 1024
REPLY_SHAPE = '{"action": "approve", "text": "...", "allowed_followups": ["informational"], "verdict": "needed"}'

Apply = Callable[[ExpertReply], Awaitable[Tuple[int, Dict[str, Any]]]]
"""The hub's ``app.ctx.apply``: the reply as guidance, recorded and resumed; the HTTP status and body."""


class StoreVersion:
    """The store's version (`board.store_version`), read at most once per ``interval`` seconds
    however many listeners ask."""

    def __init__(self, read: Callable[[], int], interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.read, self.interval, self.clock = read, interval, clock
        self._value: Optional[int] = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self) -> int:
        async with self._lock:
            if self.clock() - self._at >= self.interval:
                self._value = await asyncio.to_thread(self.read)
                self._at = self.clock()
        return self._value  # type: ignore[return-value]


def _safe_next(target: Optional[str]) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


def _login_page(
    error: str = "", target: str = "/dashboard", status: int = 200, wait: Optional[float] = None
) -> HTTPResponse:
    page = (STATIC / "dashboard" / "login.html").read_text()
    page = page.replace("{{error}}", html.escape(error)).replace("{{next}}", html.escape(target, quote=True))
    headers = {"Retry-After": retry_after(wait)} if wait is not None else None
    return html_response(page, status=status, headers=headers)


def _later(seconds: float) -> str:
    return f"{math.ceil(seconds)} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


def reply_fields(body: bytes) -> Tuple[str, str, Tuple[str, ...], Dict[str, Any]]:
    """(action, text, allowed follow-ups, governance fields) of a dashboard reply's JSON body: the last
    holds those of `GOVERNANCE_FIELDS` given (why the draft was overridden, the verdict); `Refused` 400
    otherwise."""
    payload = json_object(body, REPLY_SHAPE)
    action = text_field("action", payload.get("action"), empty=False)
    text = text_field("text", payload.get("text"), required=False) or ""
    followups = payload.get("allowed_followups")
    if followups is None:
        followups = []
    if not isinstance(followups, list):
        raise Refused(400, "allowed_followups must be a list of follow-up types")
    extra = {name: text_field(name, payload.get(name), required=False) for name in GOVERNANCE_FIELDS}
    chosen = {name: value.strip() for name, value in extra.items() if value and value.strip()}
    return action, text, tuple(text_field("allowed_followups[]", f) for f in followups), chosen  # type: ignore[misc]


def dashboard_blueprint(
    service: ConsultationService,
    apply: Apply,
    secret: bytes,
    *,
    poll_interval: float = 1.0,
    max_body: Optional[int] = None,
    wake: Callable[[], None] = lambda: None,
    settings: Optional[Settings] = None,
    pool: Optional[PasswordPool] = None,
    governance: Any = None,
) -> Blueprint:
    """The dashboard over ``service`` (store, expert directory); ``apply`` applies a reply;
    ``secret`` signs the session cookies (`backline.hub.operators.dashboard_secret`); ``max_body``:
    the largest POST body (BACKLINE_MAX_BODY_BYTES); ``wake``: starts a delivery round now (after a
    reply that could not be delivered is sent again); ``settings``: sign-in and cookie settings
    (default: from the environment, `Settings.from_env`); ``pool``: where passwords are checked;
    ``governance``: the hub's `GovernanceService` for the analytics and review pages and a case's verdict
    and override reason (`backline.hub.analytics_pages`)."""
    bp = Blueprint("dashboard")
    limit = max_body or max_body_bytes()
    store, directory = service.store, service.directory
    accounts = operators(directory)
    settings = settings or Settings.from_env()
    limits = SignInLimits(store.engine, secret, settings.rules)
    pool = pool or PasswordPool()
    by_person = {account.person_id: account for account in accounts.values()}
    version = StoreVersion(functools.partial(board.store_version, store), poll_interval)
    stopping = asyncio.Event()
    bp.static("/dashboard/static", str(STATIC / "dashboard"), name="dashboard_static")

    def operator_of(request: Request) -> Optional[Operator]:
        return by_person.get(read_session(secret, request.cookies.get(COOKIE), time.time()) or "")

    def forged(request: Request) -> Optional[HTTPResponse]:
        """Why a signed-in POST is refused (`backline.hub.forgery`), else None."""
        if not forgery.same_origin(request, settings.origins):
            return json({"error": "cross-site request refused: the Origin is not this dashboard's"}, status=403)
        if not csrf_valid(secret, request.cookies.get(COOKIE), request.headers.get(forgery.CSRF_HEADER)):
            return json(
                {"error": f"the {forgery.CSRF_HEADER} header of this session is required (GET /dashboard/api/session)"},
                status=403,
            )
        if len(request.body or b"") > limit:
            return too_large(limit).response()
        if request.body and not forgery.is_json(request):
            return json({"error": "send the body as Content-Type: application/json"}, status=415)
        return None

    def signed_in(page: bool) -> Callable:
        """Handlers get the operator; without a session, pages redirect to sign-in and data is 401.
        A POST must also pass the forgery checks (403, 413, 415)."""

        def decorate(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
            @functools.wraps(handler)
            async def checked(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
                operator = operator_of(request)
                if operator is None:
                    if page:
                        return redirect("/dashboard/login?next=" + urllib.parse.quote(request.path))
                    return json({"error": "sign in at /dashboard/login"}, status=401)
                refused = forged(request) if request.method == "POST" else None
                if refused is not None:
                    return refused
                return await handler(request, operator, *args, **kwargs)

            return checked

        return decorate

    @bp.get("/dashboard/login")
    async def login_form(request: Request) -> HTTPResponse:
        return _login_page(target=_safe_next(request.args.get("next")))

    @bp.post("/dashboard/login")
    async def login(request: Request) -> HTTPResponse:
        if len(request.body or b"") > limit:
            return _login_page(too_large(limit).message, status=413)
        if not forgery.same_origin(request, settings.origins):
            return _login_page("Sign in from the dashboard's own sign-in page.", status=403)
        form = request.form or {}
        target = _safe_next(form.get("next"))
        username = form.get("username") or ""
        password = form.get("password") or ""
        if not username.strip() or not password:
            return _login_page("Enter your username and password.", target, status=400)
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            return _login_page("Wrong username or password.", target, status=400)
        address = client_address(request.ip, request.headers.getall("x-forwarded-for", []), settings.trusted_proxies)
        wait = await asyncio.to_thread(limits.wait, username, address)
        if wait > 0:
            return _login_page(
                f"Too many sign-in attempts: try again in {_later(wait)}.", target, status=429, wait=wait
            )
        try:
            account = await pool.run(authenticate, accounts, username, password)
        except PoolFull:
            return _login_page(
                "The dashboard is busy signing others in: try again in a moment.", target, status=503, wait=2
            )
        if account is not None and demo_refused(password, settings.demo):
            logger.warning(
                "dashboard sign-in refused for %r: the demo password is accepted only with "
                "BACKLINE_DEMO=1; give this operator a password_hash of their own "
                "(python -m backline hash-password)",
                account.username,
            )
            account = None
        if account is None:
            await asyncio.to_thread(limits.failed, username, address)
            return _login_page("Wrong username or password.", target, status=401)
        await asyncio.to_thread(limits.succeeded, username, address)
        response = redirect(target, status=303)
        response.cookies[COOKIE] = sign_session(secret, account.person_id, time.time())
        cookie = response.cookies[COOKIE]
        cookie.update({"httponly": True, "samesite": "Lax", "path": "/", "max-age": SESSION_SECONDS})
        if request.scheme == "https" or settings.cookie_secure:
            cookie["secure"] = True
        return response

    @bp.post("/dashboard/logout")
    async def logout(request: Request) -> HTTPResponse:
        """Sign out: from the dashboard's page (Origin), with the session's CSRF token when there is
        a session (another site cannot sign an operator out either)."""
        if not forgery.same_origin(request, settings.origins):
            return json({"error": "cross-site request refused: the Origin is not this dashboard's"}, status=403)
        if operator_of(request) is not None and not csrf_valid(
            secret, request.cookies.get(COOKIE), request.headers.get(forgery.CSRF_HEADER)
        ):
            return json({"error": f"the {forgery.CSRF_HEADER} header of this session is required"}, status=403)
        response = redirect("/dashboard/login", status=303)
        del response.cookies[COOKIE]
        return response

    @bp.get("/dashboard")
    @signed_in(page=True)
    async def queue_page(_: Request, __: Operator) -> HTTPResponse:
        return await file(STATIC / "dashboard" / "dashboard.html")

    @bp.get("/dashboard/consultations/<consultation_id>")
    @signed_in(page=True)
    async def case_page(_: Request, __: Operator, consultation_id: str) -> HTTPResponse:
        return await file(STATIC / "dashboard" / "dashboard.html")

    async def mine(operator: Operator, consultation_id: str) -> Any:
        """The consultation if it is in the operator's queues (or assigned to them); else 404 / 403."""
        case = await asyncio.to_thread(store.get, consultation_id)
        if case is None:
            return json({"error": f"no consultation {consultation_id}"}, status=404)
        if not access_for(directory, operator.person_id).may_see_case(case):
            return json({"error": f"consultation {consultation_id} is not in your queues"}, status=403)
        return case

    @bp.get("/dashboard/api/session")
    @signed_in(page=False)
    async def session(request: Request, operator: Operator) -> HTTPResponse:
        access = access_for(directory, operator.person_id)
        return json(
            {
                "operator": {"id": operator.person_id, "name": operator.name, "title": operator.title},
                "csrf_token": csrf_token(secret, request.cookies.get(COOKIE) or ""),
                "queues": [name for name in directory.queues if access.may_see(name)],
                "statuses": list(board.STATUS_FILTERS),
                "followups": [{"key": key, "label": label} for key, label in configuration.hand_back().labels.items()],
            }
        )

    @bp.get("/dashboard/api/queue")
    @signed_in(page=False)
    async def queue(request: Request, operator: Operator) -> HTTPResponse:
        access = access_for(directory, operator.person_id)
        wanted_queue = request.args.get("queue") or None
        status = request.args.get("status") or "active"
        if status not in board.STATUS_FILTERS:
            return json({"error": f"status must be one of {', '.join(board.STATUS_FILTERS)}"}, status=400)
        if wanted_queue and not access.may_see(wanted_queue):
            return json({"error": f"queue {wanted_queue[:64]!r} is not one of yours"}, status=403)
        listed = await asyncio.to_thread(store.list, None, None, wanted_queue)
        cases = board.select_cases([c for c in listed if access.may_see_case(c)], status=status)
        now = utcnow()
        return json({"now": now.isoformat(), "consultations": [board.queue_row(c, directory, now) for c in cases]})

    @bp.get("/dashboard/api/consultations/<consultation_id>")
    @signed_in(page=False)
    async def consultation(_: Request, operator: Operator, consultation_id: str) -> HTTPResponse:
        case = await mine(operator, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        messages = await asyncio.to_thread(store.messages, consultation_id)
        sent = await asyncio.to_thread(Outbox(store).for_consultation, consultation_id)
        now = utcnow()
        view = board.case_view(case, messages, directory, now)
        view.update(await asyncio.to_thread(analytics_pages.case_fields, store, consultation_id))
        return json({"now": now.isoformat(), "consultation": {**view, "deliveries": [d.as_dict() for d in sent]}})

    @bp.post("/dashboard/api/deliveries/<delivery_id>/retry")
    @signed_in(page=False)
    async def resend(_: Request, operator: Operator, delivery_id: str) -> HTTPResponse:
        """Send a reply that did not reach the customer within the retry budget again."""
        found = await asyncio.to_thread(Outbox(store).get, delivery_id)
        if found is not None:
            case = await mine(operator, found.consultation_id)
            if isinstance(case, HTTPResponse):
                return case
        try:
            delivery = await asyncio.to_thread(Outbox(store).requeue, delivery_id, actor=operator.person_id)
        except ValueError as error:
            return json({"error": str(error)}, status=409)
        wake()
        return json({"delivery": delivery.as_dict()}, status=202)

    @bp.post("/dashboard/api/consultations/<consultation_id>/reply")
    @signed_in(page=False)
    async def reply(request: Request, operator: Operator, consultation_id: str) -> HTTPResponse:
        try:
            if len(request.body or b"") > limit:
                raise too_large(limit)
            action, text, followups, extra = reply_fields(request.body or b"")
            answer = ExpertReply(consultation_id, operator.person_id, "dashboard", action, text, followups, **extra)
        except Refused as refused:
            return refused.response()
        except ValueError as error:
            return json({"error": str(error)}, status=400)
        case = await mine(operator, consultation_id)
        if isinstance(case, HTTPResponse):
            return case
        status, payload = await apply(answer)
        return json(payload, status=status)

    analytics_pages.register(
        bp,
        governance=governance,
        store=store,
        directory=directory,
        signed_in=signed_in,
        mine=mine,
        static=STATIC / "dashboard",
    )

    @bp.get("/dashboard/events")
    @signed_in(page=False)
    async def events(request: Request, _: Operator) -> None:
        if request.stream is not None:
            request.stream.keep_alive = False  # the connection closes with the stream (no idle wait at shutdown)
        response = await request.respond(
            content_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.send("retry: 1000\n\n")
        loop = asyncio.get_running_loop()
        ends, seen, quiet_since = loop.time() + STREAM_SECONDS, None, loop.time()
        while loop.time() < ends and not stopping.is_set():
            current = await version.get()
            if current != seen:
                await response.send(f"event: change\ndata: {current}\n\n")
                seen, quiet_since = current, loop.time()
            elif loop.time() - quiet_since >= HEARTBEAT_SECONDS:
                await response.send(": still here\n\n")
                quiet_since = loop.time()
            await asyncio.sleep(poll_interval)
        await response.eof()

    @bp.listener("before_server_stop")
    async def end_streams(*_: Any) -> None:
        stopping.set()  # open streams end now rather than hold up the shutdown

    @bp.listener("after_server_stop")
    async def stop_pool(*_: Any) -> None:
        pool.shutdown()

    return bp
