"""The operator dashboard and the web chat without Rasa: password hashes, sessions, the queue's order,
the views, and the hub's pages and JSON served for real (sign-in, redirects, 401, replies, live events,
bodies of the wrong shape or size refused with 400 or 413). Requests send what the dashboard's page
sends: Origin, the session's X-CSRF-Token on POSTs, JSON bodies as application/json."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests
from sanic import Sanic

from backline.consult import board
from backline.consult.outbox import Outbox, RetryBudget
from backline.consult.replies import Reply, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import Consultation, ConsultationStore
from backline.hub import headers, operators
from backline.hub.dashboard import COOKIE, StoreVersion, dashboard_blueprint
from backline.hub.guidance import ExpertReply
from backline.hub.operators import (
    Settings,
    authenticate,
    csrf_token,
    hash_password,
    read_session,
    sign_session,
    verify_password,
)
from backline.hub.webchat import socket_url, webchat_blueprint
from backline.limits import MAX_BODY_BYTES
from backline.rasa.channels import new_session, web_conversation
from backline.routing.directory import ExpertDirectory, load_experts
from backline.routing.source import ExpertsError
from tests.channel_servers import LiveApp
from tests.servers import PROJECT_ROOT

DEMO_PASSWORD = "kestrel-demo"
SECRET = b"test-dashboard-secret"
CHAT_SECRET = "test-chat-secret"
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


# --- passwords and sessions -------------------------------------------------------------------


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert hash_password("correct horse") != stored  # a fresh salt each time
    with pytest.raises(ValueError):
        hash_password("")


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$abc$def", "scrypt$3$8$1$AAAA$AAAA", "scrypt$x$8$1$AA$AA"])
def test_a_malformed_hash_matches_nothing(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_the_demo_operators_sign_in_with_their_dashboard_username(directory: ExpertDirectory) -> None:
    accounts = operators.operators(directory)
    assert set(accounts) == {"petra", "mara", "jonas", "anna", "tariq", "lena", "felix", "sofia.costa"}
    assert authenticate(accounts, "sofia.costa", DEMO_PASSWORD).person_id == "sofia"
    assert authenticate(accounts, " mara ", DEMO_PASSWORD).name == "Mara Klein"
    assert authenticate(accounts, "mara", "kestrel-demo2") is None
    assert authenticate(accounts, "sofia", DEMO_PASSWORD) is None  # her username is sofia.costa
    assert authenticate(accounts, "mallory", DEMO_PASSWORD) is None


def test_a_session_cookie_is_valid_only_signed_with_the_secret_and_unexpired() -> None:
    value = sign_session(SECRET, "mara", now=1000, seconds=60)
    assert read_session(SECRET, value, now=1059) == "mara"
    assert read_session(SECRET, value, now=1060) is None
    assert read_session(b"another secret", value, now=1000) is None
    person, expires, mac = value.split(":")
    assert read_session(SECRET, f"petra:{expires}:{mac}", now=1000) is None
    assert read_session(SECRET, f"{person}:{int(expires) + 3600}:{mac}", now=1000) is None
    for broken in (None, "", "mara", "mara:soon:abc"):
        assert read_session(SECRET, broken, now=1000) is None


def test_the_secret_comes_from_the_environment_or_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert operators.dashboard_secret({operators.ENV_SECRET: "from-env"}) == b"from-env"
    monkeypatch.setattr(operators, "SECRET_FILE", tmp_path / "var" / "dashboard_secret")
    first = operators.dashboard_secret({})
    assert len(first) >= 32 and operators.dashboard_secret({}) == first
    assert (tmp_path / "var" / "dashboard_secret").stat().st_mode & 0o777 == 0o600


def test_the_cli_prints_a_hash_of_the_password_it_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert operators.main(["--stdin"]) == 0
    assert verify_password("a long passphrase", capsys.readouterr().out.strip())
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert operators.main(["--stdin"]) == 1


@pytest.mark.parametrize(
    "old, new",
    [
        (
            "{type: slack, user_id: U07KESTR02}",
            '{type: slack, user_id: U07KESTR02, password_hash: "' + hash_password("x" * 8) + '"}',
        ),
        ('{type: dashboard, password_hash: "scrypt$', '{type: dashboard, password_hash: "secret123", x: "'),
    ],
)
def test_experts_yml_refuses_misplaced_or_malformed_password_hashes(tmp_path: Path, old: str, new: str) -> None:
    text = (PROJECT_ROOT / "experts.yml").read_text()
    assert old in text
    (tmp_path / "experts.yml").write_text(text.replace(old, new, 1))
    with pytest.raises(ExpertsError, match="password_hash"):
        load_experts(tmp_path / "experts.yml")


# --- the queue and the views ------------------------------------------------------------------


def _case(**fields: Any) -> Consultation:
    base: Dict[str, Any] = dict(
        id=uuid.uuid4().hex[:8],
        conversation_id="c",
        mode="consult",
        status="assigned",
        queue="billing",
        priority="normal",
        reasons=(),
        detail=None,
        brief={},
        ai_draft=None,
        transcript=(),
        created_at=T0,
    )
    return Consultation(**{**base, **fields})


def test_the_queue_puts_handoffs_first_then_priority_then_the_oldest() -> None:
    minutes = lambda m: T0 + dt.timedelta(minutes=m)  # noqa: E731
    cases = {
        "consult_urgent": _case(priority="urgent", created_at=minutes(5)),
        "handoff_low": _case(mode="handoff", priority="low", created_at=minutes(1)),
        "handoff_high_new": _case(mode="handoff", priority="high", created_at=minutes(9)),
        "handoff_high_old": _case(mode="handoff", priority="high", created_at=minutes(2)),
        "consult_normal": _case(created_at=minutes(0)),
        "closed_handoff": _case(mode="handoff", priority="urgent", status="closed", created_at=minutes(0)),
    }
    named = {id(c): name for name, c in cases.items()}
    order = lambda found: [named[id(c)] for c in found]  # noqa: E731
    assert order(board.select_cases(cases.values(), status="all")) == [
        "handoff_high_old",
        "handoff_high_new",
        "handoff_low",
        "consult_urgent",
        "consult_normal",
        "closed_handoff",
    ]
    assert "closed_handoff" not in order(board.select_cases(cases.values()))
    assert order(board.select_cases(cases.values(), status="closed")) == ["closed_handoff"]
    assert board.select_cases(cases.values(), queue="legal") == []
    with pytest.raises(ValueError):
        board.select_cases(cases.values(), status="pending")


def test_the_sla_countdown_runs_until_the_first_reply(directory: ExpertDirectory) -> None:
    due = T0 + dt.timedelta(minutes=30)
    assert board.sla_seconds_left(_case(sla_due_at=due), T0 + dt.timedelta(minutes=10)) == 1200
    assert board.sla_seconds_left(_case(sla_due_at=due), T0 + dt.timedelta(minutes=40)) == -600
    assert board.sla_seconds_left(_case(sla_due_at=due, first_reply_at=T0), T0) is None
    row = board.queue_row(_case(sla_due_at=due, assignee="mara"), directory, T0)
    assert (row["assignee_name"], row["team"], row["sla_seconds_left"]) == ("Mara Klein", "billing", 1800)
    assert "context" not in row and "transcript" not in row


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConsultationStore]:
    with ConsultationStore(f"sqlite:///{tmp_path / 'consultations.db'}") as opened:
        yield opened


def test_the_customer_sees_checking_then_the_named_person_then_the_ai(
    store: ConsultationStore, directory: ExpertDirectory
) -> None:
    assert board.chat_state(None, [], directory) == {"state": "ai"}
    case = store.create(conversation_id="web-1", mode="handoff", queue="billing", reasons=["sensitive_topic"])
    assert board.chat_state(case, store.messages(case.id), directory) == {"state": "checking", "team": "billing"}
    record_reply(store, case.id, "mara", "dashboard", Reply("take_over"))
    assert board.chat_state(store.require(case.id), store.messages(case.id), directory) == {
        "state": "human",
        "team": "billing",
        "agent": "Mara Klein",
    }
    record_reply(store, case.id, "mara", "dashboard", Reply("hand_back", allowed_followups=("informational",)))
    assert board.chat_state(store.require(case.id), store.messages(case.id), directory) == {"state": "ai"}


def test_the_case_view_follows_the_conversation_with_internal_notes_apart(
    store: ConsultationStore, directory: ExpertDirectory
) -> None:
    case = store.create(
        conversation_id="web-2",
        mode="handoff",
        queue="billing",
        reasons=["sensitive_topic"],
        transcript=[{"role": "customer", "text": "refund of 780 EUR please"}],
    )
    record_reply(store, case.id, "jonas", "dashboard", Reply("take_over"))
    store.add_message(case.id, "from_customer", "customer", "socketio", "any news?")
    record_reply(
        store,
        case.id,
        "jonas",
        "dashboard",
        Reply(
            "message", "On it.\n// checked the ledger", customer_text="On it.", internal_notes=("checked the ledger",)
        ),
    )
    view = board.case_view(store.require(case.id), store.messages(case.id), directory, T0)
    assert (view["human_mode"], view["human_agent"]) == (True, "Jonas Weber")
    assert [(e["role"], e["text"]) for e in view["timeline"]] == [
        ("customer", "refund of 780 EUR please"),
        ("expert", ""),
        ("customer", "any news?"),
        ("expert", "On it."),
    ]
    assert view["timeline"][-1]["notes"] == ["checked the ledger"]


def test_the_store_version_grows_with_every_write(store: ConsultationStore) -> None:
    before = board.store_version(store)
    case = store.create(conversation_id="web-3", mode="consult", queue="support", reasons=[])
    created = board.store_version(store)
    store.add_message(case.id, "from_customer", "customer", "socketio", "hello")
    assert before < created < board.store_version(store)


def test_listeners_share_one_read_of_the_store_per_interval() -> None:
    reads: List[int] = []
    now = [0.0]
    version = StoreVersion(lambda: reads.append(1) or len(reads), interval=1.0, clock=lambda: now[0])

    async def ask(times: int) -> List[int]:
        return [await version.get() for _ in range(times)]

    assert asyncio.run(ask(5)) == [1] * 5
    now[0] = 1.0
    assert asyncio.run(ask(3)) == [2] * 3 and len(reads) == 2


@pytest.mark.parametrize(
    "public, host, scheme, expected",
    [
        (None, "localhost:5006", "http", "http://localhost:5005"),
        (None, "support.example:8080", "https", "https://support.example:5005"),
        (None, "[::1]:5006", "http", "http://[::1]:5005"),
        ("https://chat.example/", "localhost:5006", "http", "https://chat.example"),
    ],
)
def test_the_chat_finds_rasa_on_the_hosts_the_browser_used(public: Any, host: str, scheme: str, expected: str) -> None:
    assert socket_url("http://localhost:5005", public, host, scheme) == expected


# --- the pages and their data, served ---------------------------------------------------------


class Hub:
    """The dashboard and web chat blueprints in a Sanic app on loopback; replies are recorded."""

    def __init__(
        self, store: ConsultationStore, directory: ExpertDirectory, settings: Settings = Settings(demo=True)
    ) -> None:
        self.store = store
        self.replies: List[ExpertReply] = []
        service = ConsultationService(store, directory, {})

        async def apply(answer: ExpertReply) -> Tuple[int, Dict[str, Any]]:
            self.replies.append(answer)
            reply = answer.to_reply(store.require(answer.consultation_id).mode)
            record_reply(store, answer.consultation_id, answer.actor, answer.source, reply)
            return 200, {"consultation": store.require(answer.consultation_id).as_dict(), "customer_messages": []}

        app = Sanic(f"dashboard-{uuid.uuid4().hex[:8]}", configure_logging=False)
        headers.install(app, lambda _: "http://localhost:5005")
        app.blueprint(dashboard_blueprint(service, apply, SECRET, poll_interval=0.1, settings=settings))
        app.blueprint(webchat_blueprint(service, "http://localhost:5005", secret=CHAT_SECRET))
        self.live = LiveApp(app).start()
        self.url = self.live.url
        self.origin = {"Origin": self.url}

    def sign_in(self, form: Dict[str, str], **headers: str) -> requests.Response:
        """The sign-in form's POST, as the sign-in page sends it (its Origin) unless ``headers`` say otherwise."""
        return requests.post(
            f"{self.url}/dashboard/login",
            data=form,
            allow_redirects=False,
            timeout=10,
            headers={**self.origin, **headers},
        )

    def signed_in(self, username: str = "mara", password: str = DEMO_PASSWORD) -> requests.Session:
        """A browser session of ``username``: its cookie, and the Origin and CSRF token the page sends."""
        session = requests.Session()
        session.headers.update(self.origin)
        response = session.post(
            f"{self.url}/dashboard/login",
            data={"username": username, "password": password},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 303, response.text
        token = session.get(f"{self.url}/dashboard/api/session", timeout=10).json()["csrf_token"]
        session.headers["X-CSRF-Token"] = token
        return session


@pytest.fixture
def hub(store: ConsultationStore, directory: ExpertDirectory) -> Iterator[Hub]:
    served = Hub(store, directory)
    yield served
    served.live.stop()


def test_without_a_session_pages_redirect_to_sign_in_and_data_is_refused(hub: Hub) -> None:
    for path in ("/dashboard", "/dashboard/consultations/c_1"):
        response = requests.get(f"{hub.url}{path}", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and response.headers["location"] == f"/dashboard/login?next={path}"
    for path in (
        "/dashboard/api/session",
        "/dashboard/api/queue",
        "/dashboard/api/consultations/c_1",
        "/dashboard/events",
    ):
        assert requests.get(f"{hub.url}{path}", timeout=10).status_code == 401
    forged = {COOKIE: sign_session(b"not the secret", "mara", now=T0.timestamp() + 10**9)}
    assert requests.get(f"{hub.url}/dashboard/api/queue", cookies=forged, timeout=10).status_code == 401
    reply = requests.post(f"{hub.url}/dashboard/api/consultations/c_1/reply", json={"action": "take_over"}, timeout=10)
    assert reply.status_code == 401 and hub.replies == []


def test_a_wrong_password_is_refused_and_a_right_one_signs_in(hub: Hub) -> None:
    refused = hub.sign_in({"username": "mara", "password": "guess"})
    assert refused.status_code == 401 and "Wrong username or password" in refused.text and COOKIE not in refused.cookies
    response = hub.sign_in({"username": "mara", "password": DEMO_PASSWORD, "next": "https://evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    session = requests.Session()
    session.cookies.update(response.cookies)
    state = session.get(f"{hub.url}/dashboard/api/session", timeout=10).json()
    assert state["operator"]["name"] == "Mara Klein"
    assert state["csrf_token"] == csrf_token(SECRET, response.cookies[COOKIE])
    assert '<main id="app">' in session.get(f"{hub.url}/dashboard", timeout=10).text
    kept = session.post(f"{hub.url}/dashboard/logout", headers=hub.origin, allow_redirects=False, timeout=10)
    assert kept.status_code == 403  # without the session's token another site could sign her out
    assert session.get(f"{hub.url}/dashboard/api/session", timeout=10).status_code == 200
    gone = session.post(
        f"{hub.url}/dashboard/logout",
        headers={**hub.origin, "X-CSRF-Token": state["csrf_token"]},
        allow_redirects=False,
        timeout=10,
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/dashboard/login"
    assert session.get(f"{hub.url}/dashboard/api/session", timeout=10).status_code == 401


def test_the_session_cookie_is_secure_when_configured_behind_tls(
    store: ConsultationStore, directory: ExpertDirectory
) -> None:
    served = Hub(store, directory, Settings(demo=True, cookie_secure=True, origins=("https://support.example",)))
    try:
        response = served.sign_in({"username": "mara", "password": DEMO_PASSWORD}, Origin="https://support.example")
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]
    finally:
        served.live.stop()


def test_the_demo_password_is_refused_without_the_demo_flag(
    store: ConsultationStore, directory: ExpertDirectory, caplog: pytest.LogCaptureFixture
) -> None:
    served = Hub(store, directory, Settings(demo=False))
    try:
        refused = served.sign_in({"username": "mara", "password": DEMO_PASSWORD})
        wrong = served.sign_in({"username": "jonas", "password": "not-the-password"})
        assert (refused.status_code, wrong.status_code) == (401, 401)
        assert refused.text.replace("mara", "jonas") == wrong.text  # the page gives no hint
        assert COOKIE not in refused.cookies
    finally:
        served.live.stop()
    assert "the demo password is accepted only with BACKLINE_DEMO=1" in caplog.text and DEMO_PASSWORD not in caplog.text


def test_guessing_a_password_over_http_is_slowed_for_that_user_and_address(hub: Hub) -> None:
    def sign_in(password: str) -> requests.Response:
        return hub.sign_in({"username": "jonas", "password": password})

    assert [sign_in(f"guess-{n}").status_code for n in range(3)] == [401] * 3
    blocked = sign_in(DEMO_PASSWORD)
    assert blocked.status_code == 429 and "Too many sign-in attempts" in blocked.text and COOKIE not in blocked.cookies
    assert 1 <= int(blocked.headers["retry-after"]) <= 5
    assert hub.signed_in("mara")  # other operators are not affected


def test_a_sign_in_from_another_site_is_refused(hub: Hub) -> None:
    form = {"username": "mara", "password": DEMO_PASSWORD}
    for origin in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": ""},
        {"Referer": "https://evil.example/login"},
    ):
        refused = requests.post(
            f"{hub.url}/dashboard/login", data=form, headers=origin, allow_redirects=False, timeout=10
        )
        assert refused.status_code == 403 and COOKIE not in refused.cookies, origin
    referred = requests.post(
        f"{hub.url}/dashboard/login",
        data=form,
        headers={"Referer": f"{hub.url}/dashboard/login"},
        allow_redirects=False,
        timeout=10,
    )
    assert referred.status_code == 303  # no Origin: the Referer's origin is checked instead


def test_a_dashboard_post_needs_its_origin_token_and_json(hub: Hub) -> None:
    case = hub.store.create(conversation_id="q-x", mode="consult", queue="billing", reasons=["medium_confidence"])
    session = hub.signed_in()
    url = f"{hub.url}/dashboard/api/consultations/{case.id}/reply"
    body = json.dumps({"action": "answer", "text": "hello"})
    token = session.headers["X-CSRF-Token"]
    plain = {"Content-Type": "application/json"}
    version = board.store_version(hub.store)
    attempts = {
        "foreign origin": {**plain, "Origin": "https://evil.example"},
        "no origin": {**plain, "Origin": None},
        "no token": {**plain, "X-CSRF-Token": None},
        "another session's token": {**plain, "X-CSRF-Token": csrf_token(SECRET, "petra:1:abc")},
        "text/plain": {"Content-Type": "text/plain"},
        "form": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    statuses = {
        name: session.post(url, data=body, headers=headers, timeout=10).status_code
        for name, headers in attempts.items()
    }
    assert statuses == {
        "foreign origin": 403,
        "no origin": 403,
        "no token": 403,
        "another session's token": 403,
        "text/plain": 415,
        "form": 415,
    }
    assert hub.replies == [] and board.store_version(hub.store) == version and token
    assert session.post(url, data=body, headers=plain, timeout=10).status_code == 200


def test_every_answer_carries_the_security_headers(hub: Hub) -> None:
    session = hub.signed_in()
    for path in (
        "/dashboard",
        "/dashboard/api/queue",
        "/dashboard/login",
        "/chat",
        "/dashboard/static/dashboard.js",
        "/nowhere",
    ):
        answer = session.get(f"{hub.url}{path}", timeout=10)
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert (
            answer.headers["x-frame-options"],
            answer.headers["x-content-type-options"],
            answer.headers["referrer-policy"],
        ) == ("DENY", "nosniff", "same-origin")
        assert ("ws://localhost:5005" in policy) == (path == "/chat"), path
    assert session.get(f"{hub.url}/dashboard/api/queue", timeout=10).headers["cache-control"] == "no-store"
    with session.get(f"{hub.url}/dashboard/events", stream=True, timeout=10) as stream:
        assert (
            stream.headers["cache-control"] == "no-store"
            and "frame-ancestors" in stream.headers["content-security-policy"]
        )


def test_the_queue_and_a_reply_through_the_dashboard(hub: Hub) -> None:
    consult = hub.store.create(
        conversation_id="q-1",
        mode="consult",
        queue="billing",
        reasons=["medium_confidence"],
        ai_draft="Pro costs 20 EUR a month.",
    )
    handoff = hub.store.create(conversation_id="q-2", mode="handoff", queue="billing", reasons=["sensitive_topic"])
    legal = hub.store.create(conversation_id="q-3", mode="handoff", queue="legal", reasons=["legal_risk"])
    session = hub.signed_in("jonas")  # billing only (experts.yml)
    rows = session.get(f"{hub.url}/dashboard/api/queue", timeout=10).json()["consultations"]
    assert [r["id"] for r in rows] == [handoff.id, consult.id]
    billing = session.get(f"{hub.url}/dashboard/api/queue", params={"queue": "billing"}, timeout=10).json()
    assert [r["id"] for r in billing["consultations"]] == [handoff.id, consult.id]
    assert session.get(f"{hub.url}/dashboard/api/queue", params={"status": "nope"}, timeout=10).status_code == 400
    assert session.get(f"{hub.url}/dashboard/api/queue", params={"queue": "legal"}, timeout=10).status_code == 403
    assert session.get(f"{hub.url}/dashboard/api/consultations/{legal.id}", timeout=10).status_code == 403
    assert session.get(f"{hub.url}/dashboard/api/session", timeout=10).json()["queues"] == ["billing"]
    assert (
        session.post(
            f"{hub.url}/dashboard/api/consultations/{legal.id}/reply",
            json={"action": "answer", "text": "x"},
            timeout=10,
        ).status_code
        == 403
        and hub.replies == []
    )
    petra = hub.signed_in("petra")  # the supervisor: every queue
    assert {r["id"] for r in petra.get(f"{hub.url}/dashboard/api/queue", timeout=10).json()["consultations"]} == {
        consult.id,
        handoff.id,
        legal.id,
    }

    bad = session.post(
        f"{hub.url}/dashboard/api/consultations/{handoff.id}/reply", json={"action": "teleport"}, timeout=10
    )
    assert bad.status_code == 400 and "teleport" in bad.json()["error"] and hub.replies == []
    sent = session.post(
        f"{hub.url}/dashboard/api/consultations/{consult.id}/reply",
        json={
            "action": "answer",
            "text": "Pro is 20 EUR.\n// quoted the list price",
            "allowed_followups": ["informational"],
        },
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    [answer] = hub.replies
    assert (answer.consultation_id, answer.actor, answer.source, answer.action, answer.allowed_followups) == (
        consult.id,
        "jonas",
        "dashboard",
        "answer",
        ("informational",),
    )
    assert answer.text == "Pro is 20 EUR.\n// quoted the list price"
    closed = session.get(f"{hub.url}/dashboard/api/queue", params={"status": "closed"}, timeout=10).json()
    assert [r["id"] for r in closed["consultations"]] == [consult.id]


@pytest.mark.parametrize(
    "body, error",
    [
        (b"", "the body is empty"),
        (b"action=answer&text=hi", "the body is not JSON"),
        (b'["answer"]', "the body is an array, not a JSON object"),
        (b'{"text": "hi"}', "action must be a string, not missing"),
        (b'{"action": 1}', "action must be a string, not a number"),
        (b'{"action": "answer", "text": 5}', "text must be a string, not a number"),
        (
            b'{"action": "answer", "text": "hi", "allowed_followups": "informational"}',
            "allowed_followups must be a list",
        ),
        (b'{"action": "answer", "text": "hi", "allowed_followups": false}', "allowed_followups must be a list"),
        (b'{"action": "answer", "text": "hi", "allowed_followups": [1]}', "allowed_followups[] must be a string"),
        (b'{"action": "answer", "text": "a\\u0000b"}', "text contains NUL or an unpaired surrogate"),
        (b'{"action": "answer", "text": "\\udc00"}', "text contains NUL or an unpaired surrogate"),
        (b'{"action": "answer", "text": "hi", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nests deeper than 32 levels"),
        (b'{"action": "answer", "text": "caf\xe9"}', "the body is not UTF-8"),
    ],
)
def test_a_reply_of_the_wrong_shape_gets_400_and_changes_nothing(hub: Hub, body: bytes, error: str) -> None:
    case = hub.store.create(conversation_id="q-3", mode="consult", queue="sales", reasons=["medium_confidence"])
    session = hub.signed_in()
    version = board.store_version(hub.store)

    answer = session.post(
        f"{hub.url}/dashboard/api/consultations/{case.id}/reply",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert answer.status_code == 400
    assert error in answer.json()["error"]
    assert hub.replies == [] and board.store_version(hub.store) == version


def test_an_expert_reply_keeps_only_text_that_can_be_stored() -> None:
    for text in ("a\x00b", "\ud800", 42):
        with pytest.raises(ValueError, match="text"):
            ExpertReply("c_1", "mara", "api", "answer", text)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allowed_followups"):
        ExpertReply("c_1", "mara", "api", "hand_back", "", "informational")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="consultation_id"):
        ExpertReply("c" * 300, "mara", "api", "answer", "hi")
    assert ExpertReply("c_1", "mara", "api", "hand_back", "", ["informational"]).allowed_followups == ("informational",)


def test_oversized_posts_get_413_and_an_empty_sign_in_400_without_counting_a_failure(hub: Hub) -> None:
    case = hub.store.create(conversation_id="q-4", mode="consult", queue="sales", reasons=["medium_confidence"])
    session = hub.signed_in()
    big = json.dumps({"action": "answer", "text": "x" * MAX_BODY_BYTES}).encode()
    sign_in = hub.sign_in

    too_big = session.post(f"{hub.url}/dashboard/api/consultations/{case.id}/reply", data=big, timeout=10)
    assert (too_big.status_code, too_big.json()) == (413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
    assert sign_in({"username": "jonas", "password": "x" * MAX_BODY_BYTES}).status_code == 413
    empty = [
        sign_in(form)
        for form in ({}, {"username": "jonas"}, {"username": " ", "password": "p"}, {"password": "p"})
        for _ in range(2)
    ]
    assert {r.status_code for r in empty} == {400} and "Enter your username and password" in empty[0].text
    assert sign_in({"username": "jonas", "password": "x" * 2000}).status_code == 400
    assert [sign_in({"username": "jonas", "password": f"guess-{n}"}).status_code for n in range(3)] == [401] * 3
    assert hub.replies == []


def test_the_event_stream_says_when_the_store_changed(hub: Hub) -> None:
    session = hub.signed_in()
    with session.get(f"{hub.url}/dashboard/events", stream=True, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        changes: List[str] = []

        def next_change() -> str:
            for line in lines:
                if line.startswith("data: "):
                    return line[len("data: ") :]
            raise AssertionError("the stream ended")

        changes.append(next_change())
        hub.store.create(conversation_id="live-1", mode="handoff", queue="support", reasons=["explicit_request"])
        changes.append(next_change())
    assert int(changes[1]) > int(changes[0])


def test_the_chat_page_its_config_and_the_conversation_state(hub: Hub) -> None:
    assert "socket.io.min.js" in requests.get(f"{hub.url}/chat", timeout=10).text
    assert requests.get(f"{hub.url}/chat/static/vendor/socket.io.min.js", timeout=10).text.startswith(
        "/*!\n * Socket.IO v4.7.5"
    )
    config = requests.get(f"{hub.url}/chat/config.json", timeout=10).json()
    assert config == {"socket_url": "http://127.0.0.1:5005", "socket_path": "/socket.io"}
    assert requests.get(f"{hub.url}/chat/state/nobody", timeout=10).status_code == 403  # not a signed session
    session = new_session(CHAT_SECRET)
    assert requests.get(f"{hub.url}/chat/state/{session}", timeout=10).json() == {"state": "ai"}
    hub.store.create(
        conversation_id=web_conversation(session, CHAT_SECRET),
        mode="handoff",
        queue="security",
        reasons=["sensitive_topic"],
    )
    assert requests.get(f"{hub.url}/chat/state/{session}", timeout=10).json() == {
        "state": "checking",
        "team": "account security",
    }


def test_an_undelivered_reply_is_an_alert_an_operator_can_send_again(hub: Hub, store: ConsultationStore) -> None:
    case = store.create(conversation_id="conv-alert", mode="handoff", queue="billing", reasons=["sensitive_topic"])
    resume = record_reply(store, case.id, "mara", "dashboard", Reply("answer", text="Approved."))
    outbox = Outbox(store, RetryBudget(budget=1))
    [leased] = outbox.claim_due("hub-test")
    assert outbox.failed(leased, "cannot reach Rasa", at=leased.created_at + dt.timedelta(seconds=5)).status == (
        "undeliverable"
    )
    session = hub.signed_in()
    queue = session.get(f"{hub.url}/dashboard/api/queue", timeout=10).json()["consultations"]
    assert [(c["id"], c["status"], c["delivery_status"]) for c in queue if c["id"] == case.id] == [
        (case.id, "closed", "undeliverable")
    ]  # closed, but still in the active queue: it needs a person
    view = session.get(f"{hub.url}/dashboard/api/consultations/{case.id}", timeout=10).json()["consultation"]
    assert [(d["id"], d["status"]) for d in view["deliveries"]] == [(resume.delivery_id, "undeliverable")]

    assert (
        requests.post(f"{hub.url}/dashboard/api/deliveries/{resume.delivery_id}/retry", timeout=10).status_code == 401
    )
    again = session.post(f"{hub.url}/dashboard/api/deliveries/{resume.delivery_id}/retry", timeout=10)
    assert again.status_code == 202 and again.json()["delivery"]["status"] == "pending"
    assert store.require(case.id).delivery_status == "awaiting_delivery"
    assert [e.actor for e in store.audit_trail(case.id) if e.action == "delivery_requeued"] == ["mara"]
    assert session.post(f"{hub.url}/dashboard/api/deliveries/{resume.delivery_id}/retry", timeout=10).status_code == 409


def test_an_operator_closes_a_case_in_human_mode_from_the_dashboard(hub: Hub, store: ConsultationStore) -> None:
    case = store.create(conversation_id="conv-close", mode="handoff", queue="billing", reasons=["explicit_request"])
    record_reply(store, case.id, "jonas", "dashboard", Reply("take_over"))
    path = f"{hub.url}/dashboard/api/consultations/{case.id}/reply"
    view = hub.signed_in("jonas").get(f"{hub.url}/dashboard/api/consultations/{case.id}", timeout=10).json()
    assert (view["consultation"]["human_mode"], view["consultation"]["human_agent"]) == (True, "Jonas Weber")

    outsider = hub.signed_in("anna").post(path, json={"action": "close", "text": "Sorted."}, timeout=10)
    assert outsider.status_code == 403 and hub.replies == []
    closed = hub.signed_in("jonas").post(
        path, json={"action": "close", "text": "Your refund was sent.\n// RMA 7"}, timeout=10
    )

    assert closed.status_code == 200, closed.text
    [answer] = hub.replies
    assert (answer.actor, answer.source, answer.action) == ("jonas", "dashboard", "close")
    after = store.require(case.id)
    assert (after.status, after.resolution) == ("closed", "closed")
    last = store.messages(case.id)[-1]
    assert (last.meta["action"], last.meta["customer_text"], last.meta["internal_notes"]) == (
        "close",
        "Your refund was sent.",
        ["RMA 7"],
    )
    script = requests.get(f"{hub.url}/dashboard/static/dashboard.js", timeout=10).text
    assert 'id: "close-case", onclick: () => act("close")' in script  # the human-mode panel offers it
    assert 'close: "closed the case"' in script
