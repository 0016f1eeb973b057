"""The dashboard's governance pages against the real `GovernanceService`: the analytics page and its metrics
JSON, the QA review queue, and a case's verdict and override reason, served for real (sign-in, CSRF, Origin,
400/403/404/409) and in Chromium (the charts drawn from the seeded history, filters redrawing them, a review
submitted, a verdict given with one click).

The seeded history (a tracker store with Rasa's events table, and the consultation store), whose values are
known by construction:

- week 2026-W47: conversation w47-a (socketio) answered by the AI alone; w47-b (socketio) handed off to billing
  (case C1, refund_request, opened Tue 10:00 Berlin: business hours), taken over after 30 min, closed after
  2 h, verdict needed, CSAT 4;
- week 2026-W48: w48-a and w48-b (rest) answered by the AI alone, w48-b rejected the answer 5 min later (a
  reopened resolution); w48-c (rest) consulted billing (C2, invoice_wrong, with a draft), answered after 10 min
  with another text from the dashboard: an override, reason wrong_facts, verdict not_needed, CSAT 2;
  C3 (sales, pricing, draft, opened Saturday 19:00 Berlin: off-hours) denied after 60 min, no reason, no
  verdict; C5 (billing, invoice_copy, draft) approved unchanged after 5 min.
- QA: w48-a sampled (ai_alone, support), C2 sampled (closed_case, billing); both pending.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import pytest
import requests
from playwright.sync_api import Browser, Page, expect
from sanic import Sanic

from backline.consult.outbox import Outbox
from backline.consult.replies import Reply, record_reply
from backline.consult.service import ConsultationService
from backline.consult.store import ConsultationStore
from backline.governance.facts import TrackerReader
from backline.governance.service import GovernanceService
from backline.hub import headers
from backline.hub.dashboard import dashboard_blueprint
from backline.hub.delivery_worker import DeliveryWorker
from backline.hub.flow import ConsultationFlow
from backline.hub.operators import Settings
from backline.hub.rasa_client import RasaClient
from backline.routing.directory import ExpertDirectory, load_experts
from tests.channel_servers import LiveApp
from tests.clock import FakeClock
from tests.governance_history import save_conversations, turn
from tests.servers import PROJECT_ROOT
from tests.test_browser import LAPTOP, browser, new_page  # noqa: F401  (browser: the Chromium fixture)

SECRET = b"analytics-test-secret"
PASSWORD = "kestrel-demo"
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CHART_JS_VERSION = "4.4.9"
WINDOW = {"since": "2026-11-16", "until": "2026-11-29"}
T = TypeVar("T")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


# --- the seeded history ---------------------------------------------------------------------------------


def conversation(channel: str, turns: List[Tuple[dt.datetime, str, str, str]]) -> List[Any]:
    """Rasa events for ``turns`` of (when, customer text, intent, routing action); an ``answer`` turn gets the
    AI's reply, a ``handoff``/``consult`` the action that escalates; ``answer_rejected`` has no routing record."""
    reasons = {"handoff": "sensitive_topic", "consult": "medium_confidence"}
    return [
        event
        for moment, text, intent, action in turns
        for event in turn(
            text, intent, moment, action, channel=channel, reply=f"Here is the answer about {intent}.",
            **({"reason": reasons[action], "tier": "low"} if action in reasons else {}),
        )
    ]  # fmt: skip


def seed_tracker(url: str) -> None:
    save_conversations(
        url,
        {
            "w47-a": conversation("socketio", [(at(17, 8), "where is order 10023?", "order_status", "answer")]),
            "w47-b": conversation("socketio", [(at(17, 9), "refund of 780 EUR", "refund_request", "handoff")]),
            "w48-a": conversation("rest", [(at(24, 7), "when are you open?", "opening_hours", "answer")]),
            "w48-b": conversation(
                "rest",
                [
                    (at(24, 10), "where is order 10024?", "order_status", "answer"),
                    (at(24, 10, 5), "that is wrong", "answer_rejected", ""),
                ],
            ),
            "w48-c": conversation("rest", [(at(24, 9), "my invoice is wrong", "invoice_wrong", "consult")]),
        },
    )


def case(
    store: ConsultationStore, conversation_id: str, queue: str, intent: str, when: dt.datetime, **fields: Any
) -> str:
    return store.create(
        conversation_id=conversation_id,
        queue=queue,
        brief={"intent": intent, "user_claim": f"about {intent}"},
        now=when,
        **{"mode": "consult", "reasons": ["medium_confidence"], **fields},
    ).id


class Hub:
    """The dashboard (with the governance pages) over a seeded store and tracker, on loopback."""

    def __init__(self, tmp: Path, directory: ExpertDirectory) -> None:
        self.clock = FakeClock(at(17, 9))
        self.store = ConsultationStore(f"sqlite:///{tmp / 'consultations.db'}", clock=self.clock)
        seed_tracker(f"sqlite:///{tmp / 'tracker.db'}")
        self.governance = GovernanceService(self.store, directory, TrackerReader(f"sqlite:///{tmp / 'tracker.db'}"))
        service = ConsultationService(self.store, directory, {})
        # the hub's own flow; Rasa is not there (port 1): replies are recorded and await delivery (202)
        worker = DeliveryWorker(Outbox(self.store), RasaClient("http://127.0.0.1:1", "no-token", timeout=1))
        self.flow = ConsultationFlow(service, worker, self.governance)

        app = Sanic(f"analytics-{id(self)}", configure_logging=False)
        headers.install(app)
        app.blueprint(
            dashboard_blueprint(
                service, self.flow.apply_async, SECRET, settings=Settings(demo=True), governance=self.governance
            )
        )
        self.live = LiveApp(app).start()
        self.url = self.live.url
        self.ids: Dict[str, str] = {}

    def signed_in(self, username: str) -> requests.Session:
        session = requests.Session()
        session.headers["Origin"] = self.url
        signed = session.post(
            f"{self.url}/dashboard/login", data={"username": username, "password": PASSWORD}, allow_redirects=False
        )
        assert signed.status_code == 303, signed.text
        session.headers["X-CSRF-Token"] = session.get(f"{self.url}/dashboard/api/session").json()["csrf_token"]
        return session

    def seed(self) -> Dict[str, str]:
        """The consultations and reviews of the module's docstring; their ids by name."""
        s = self.store
        ids = {
            "C1": case(s, "w47-b", "billing", "refund_request", at(17, 9), mode="handoff", reasons=["sensitive_topic"])
        }
        record_reply(s, ids["C1"], "mara", "dashboard", Reply("take_over"), now=at(17, 9, 30))
        record_reply(s, ids["C1"], "mara", "dashboard", Reply("close", "Refunded."), now=at(17, 11))
        s.record_verdict(ids["C1"], "needed", actor="mara", source="dashboard", at=at(17, 11))
        s.record_csat(ids["C1"], 4, conversation_id="w47-b", channel="socketio", at=at(17, 12))
        ids["C2"] = case(s, "w48-c", "billing", "invoice_wrong", at(24, 9), ai_draft="Your invoice is correct.")
        self.clock.now = at(24, 9, 10)
        answered = self.signed_in("jonas").post(
            f"{self.url}/dashboard/api/consultations/{ids['C2']}/reply",
            json={
                "action": "answer",
                "text": "We corrected invoice 7 to 120 EUR.",
                "override_reason": "wrong_facts",
                "override_note": "the draft quoted the old total",
                "verdict": "not_needed",
            },
        )
        assert answered.status_code == 202, answered.text
        s.record_csat(ids["C2"], 2, conversation_id="w48-c", channel="rest", at=at(24, 12))
        ids["C3"] = case(s, "w48-d", "sales", "pricing", at(28, 18), ai_draft="Pro costs 20 EUR.")
        record_reply(s, ids["C3"], "lena", "dashboard", Reply("deny"), now=at(28, 19))
        ids["C5"] = case(s, "w48-e", "billing", "invoice_copy", at(25, 13), ai_draft="Here is your invoice copy.")
        record_reply(s, ids["C5"], "jonas", "dashboard", Reply("approve"), now=at(25, 13, 5))
        sampled = [
            s.add_review(
                kind="ai_alone", subject="w48-a", conversation_id="w48-a", subject_at=at(24, 7),
                queue="support", intent="opening_hours", channel="rest", at=at(24, 8),
            ),
            s.add_review(
                kind="closed_case", subject=ids["C2"], conversation_id="w48-c", subject_at=at(24, 9),
                consultation_id=ids["C2"], queue="billing", intent="invoice_wrong", channel="rest", at=at(24, 10),
            ),
        ]  # fmt: skip
        ids.update((f"R{n}", review.id) for n, review in enumerate(sampled, 1) if review is not None)
        self.clock.now = NOW
        return ids


@pytest.fixture(scope="module")
def directory() -> ExpertDirectory:
    return load_experts(PROJECT_ROOT / "experts.yml")


@pytest.fixture
def hub(tmp_path: Path, directory: ExpertDirectory) -> Iterator[Hub]:
    served = Hub(tmp_path, directory)
    served.ids = served.seed()
    yield served
    served.live.stop()
    served.store.dispose()


def held(read: Callable[[str], Optional[T]], key: str) -> T:
    """What the store holds under ``key`` (a review, a verdict, an override): there must be one."""
    found = read(key)
    assert found is not None, key
    return found


def get(session: requests.Session, hub: Hub, path: str, **params: str) -> requests.Response:
    return session.get(f"{hub.url}{path}", params=params, timeout=10)


def post(session: requests.Session, hub: Hub, path: str, body: Any, **headers: Any) -> requests.Response:
    return session.post(f"{hub.url}{path}", json=body, headers=headers, timeout=10)


# --- HTTP ---------------------------------------------------------------------------------------------


def test_without_a_session_the_pages_redirect_and_the_data_is_refused(hub: Hub) -> None:
    for path in ("/dashboard/analytics", "/dashboard/reviews", f"/dashboard/reviews/{hub.ids['R1']}"):
        response = requests.get(f"{hub.url}{path}", allow_redirects=False, timeout=10)
        assert (response.status_code, response.headers["location"]) == (302, f"/dashboard/login?next={path}")
    anonymous = requests.Session()
    for path in (
        "/dashboard/api/metrics",
        "/dashboard/api/governance",
        "/dashboard/api/reviews",
        f"/dashboard/api/reviews/{hub.ids['R1']}",
    ):
        assert get(anonymous, hub, path).status_code == 401, path
    for path in (f"/dashboard/api/reviews/{hub.ids['R1']}", f"/dashboard/api/consultations/{hub.ids['C3']}/verdict"):
        assert post(anonymous, hub, path, {"verdict": "right"}, Origin=hub.url).status_code == 401
    assert held(hub.store.review, hub.ids["R1"]).status == "pending" and hub.store.verdict(hub.ids["C3"]) is None


def test_the_pages_load_chart_js_of_the_pinned_version_with_its_license(hub: Hub) -> None:
    petra = hub.signed_in("petra")
    page = get(petra, hub, "/dashboard/analytics").text
    assert '<script src="/dashboard/static/vendor/chart.umd.min.js"></script>' in page and 'id="chart-weekly"' in page
    for path in ("/dashboard", "/dashboard/analytics", "/dashboard/reviews"):
        assert (
            'href="/dashboard/analytics"' in get(petra, hub, path).text
            and 'href="/dashboard/reviews"' in get(petra, hub, path).text
        )
    library = requests.get(f"{hub.url}/dashboard/static/vendor/chart.umd.min.js", timeout=10)
    assert library.status_code == 200
    assert library.text.startswith(f"/*!\n * Chart.js v{CHART_JS_VERSION}\n * https://www.chartjs.org\n")
    assert " * Released under the MIT License" in library.text[:200]
    vendor = PROJECT_ROOT / "backline" / "hub" / "static" / "dashboard" / "vendor"
    assert (
        (vendor / "LICENSE.chart.js.md")
        .read_text()
        .startswith("The MIT License (MIT)\n\nCopyright (c) 2014-2024 Chart.js Contributors")
    )
    assert f"npm pack chart.js@{CHART_JS_VERSION}" in (vendor / "README.md").read_text()


def test_the_metrics_of_the_seeded_history_for_the_supervisor(hub: Hub) -> None:
    m = get(hub.signed_in("petra"), hub, "/dashboard/api/metrics", **WINDOW).json()
    assert (m["since"], m["until"], m["filters"]) == ("2026-11-16T00:00:00+00:00", "2026-11-30T00:00:00+00:00", {})
    assert (m["conversations"], m["contained"], m["containment_rate"], m["escalation_rate"]) == (5, 3, 0.6, 0.4)
    assert (m["consultations"], m["escalation_accuracy"], m["verdicts"]) == (
        4,
        0.5,
        {"needed": 1, "not_needed": 1, "too_late": 0},
    )
    assert m["first_reply_seconds"] == {
        "count": 4,
        "median": 1200.0,
        "p90": 3600.0,
        "business_hours": {"count": 3, "median": 600.0, "p90": 1800.0},
        "off_hours": {"count": 1, "median": 3600.0, "p90": 3600.0},
    }
    assert (m["resolution_seconds"]["median"], m["resolution_seconds"]["p90"]) == (2100.0, 7200.0)
    assert (m["reopened"], m["csat"], m["override_rate"]) == ({"count": 1, "of": 7}, 3, 0.6667)
    assert m["override_reasons"] == {"wrong_facts": 1, "unspecified": 1}
    assert m["qa"] == {"pending": 2, "reviewed": 0, "by_verdict": {}}
    weeks = m["breakdowns"]["week"]
    assert sorted(weeks) == ["2026-W47", "2026-W48"]
    measures = ("containment_rate", "escalation_rate", "escalation_accuracy", "reopened_rate", "csat", "override_rate")
    assert [weeks["2026-W47"][k] for k in measures] == [0.5, 0.5, 1.0, 0.0, 4, None]
    assert [weeks["2026-W48"][k] for k in measures] == [0.6667, 0.3333, 0.0, 0.2, 2, 0.6667]
    assert {q: row["consultations"] for q, row in m["breakdowns"]["queue"].items()} == {
        "billing": 3,
        "sales": 1,
        "support": 0,
    }


def test_the_metrics_are_those_of_the_operators_queues_and_filters(hub: Hub) -> None:
    jonas = hub.signed_in("jonas")  # billing only
    mine = get(jonas, hub, "/dashboard/api/metrics", **WINDOW).json()
    assert (mine["conversations"], mine["consultations"], mine["by_queue"]) == (2, 3, {"billing": 3})
    assert get(jonas, hub, "/dashboard/api/metrics", queue="sales", **WINDOW).status_code == 403
    petra = hub.signed_in("petra")
    sales = get(petra, hub, "/dashboard/api/metrics", queue="sales", **WINDOW).json()
    assert (sales["filters"], sales["consultations"], sales["override_reasons"]) == (
        {"queue": "sales"},
        1,
        {"unspecified": 1},
    )
    late = get(petra, hub, "/dashboard/api/metrics", since="2026-11-23", until="2026-11-28T12:00:00Z").json()
    assert (late["since"], late["until"], sorted(late["breakdowns"]["week"])) == (
        "2026-11-23T00:00:00+00:00",
        "2026-11-28T12:00:00+00:00",
        ["2026-W48"],
    )
    assert (late["consultations"], late["conversations"]) == (2, 3)  # C3 opened on the 28th at 18:00 is out
    assert get(petra, hub, "/dashboard/api/metrics", channel="socketio", **WINDOW).json()["conversations"] == 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"since": "last tuesday"}, "since must be an ISO date (2026-11-30) or date and time"),
        ({"until": "2026-13-01"}, "until must be an ISO date"),
        ({"since": "2026-11-20", "until": "2026-11-10"}, "until must be after since"),
        ({"intent": "x" * 65}, "intent is longer than 64 characters"),
    ],
)
def test_bad_metrics_queries_get_400(hub: Hub, params: Dict[str, str], message: str) -> None:
    answer = get(hub.signed_in("petra"), hub, "/dashboard/api/metrics", **params)
    assert answer.status_code in (400, 413) and message in answer.json()["error"]


def test_the_review_queue_is_the_operators(hub: Hub) -> None:
    mara = hub.signed_in("mara")  # support and billing
    rows = get(mara, hub, "/dashboard/api/reviews").json()["reviews"]
    assert [(r["id"], r["kind"], r["queue"], r["intent"], r["channel"], r["subject_at"]) for r in rows] == [
        (hub.ids["R1"], "ai_alone", "support", "opening_hours", "rest", "2026-11-24T07:00:00+00:00"),
        (hub.ids["R2"], "closed_case", "billing", "invoice_wrong", "rest", "2026-11-24T09:00:00+00:00"),
    ]
    lena = hub.signed_in("lena")  # sales
    assert get(lena, hub, "/dashboard/api/reviews").json() == {"reviews": []}
    assert get(lena, hub, f"/dashboard/api/reviews/{hub.ids['R1']}").status_code == 403
    assert get(mara, hub, "/dashboard/api/reviews/r_nothing").status_code == 404
    assert get(mara, hub, "/dashboard/api/reviews", status="later").status_code == 400
    detail = get(mara, hub, f"/dashboard/api/reviews/{hub.ids['R1']}").json()
    assert [(t["speaker"], t["text"]) for t in detail["transcript"]] == [
        ("customer", "when are you open?"),
        ("assistant", "Here is the answer about opening_hours."),
    ]
    assert [(d["intent"], d["action"], d["confidence"]) for d in detail["decisions"]] == [
        ("opening_hours", "answer", 0.93)
    ]
    assert detail["consultation"] is None and detail["review"]["status"] == "pending"


def test_a_review_is_recorded_once_with_its_checks(hub: Hub) -> None:
    mara, path = hub.signed_in("mara"), f"/dashboard/api/reviews/{hub.ids['R1']}"
    token = mara.headers.pop("X-CSRF-Token")
    assert post(mara, hub, path, {"verdict": "right"}).status_code == 403  # no CSRF token
    mara.headers["X-CSRF-Token"] = token
    assert post(mara, hub, path, {"verdict": "right"}, Origin="https://evil.example").status_code == 403
    assert post(mara, hub, path, {"verdict": "perfect"}).status_code == 400
    assert post(mara, hub, path, {"verdict": "right", "corrected_intent": "no_such_intent"}).status_code == 400
    assert post(mara, hub, path, ["right"]).status_code == 400
    assert post(hub.signed_in("lena"), hub, path, {"verdict": "right"}).status_code == 403
    assert post(mara, hub, "/dashboard/api/reviews/r_nothing", {"verdict": "right"}).status_code == 404
    assert held(hub.store.review, hub.ids["R1"]).status == "pending"
    done = post(
        mara,
        hub,
        path,
        {"verdict": "should_have_escalated", "note": "they wanted a person", "corrected_intent": "request_human"},
    )
    assert done.status_code == 200 and done.json()["review"]["verdict"] == "should_have_escalated"
    stored = held(hub.store.review, hub.ids["R1"])
    assert (stored.status, stored.reviewer, stored.verdict, stored.note, stored.corrected_intent) == (
        "reviewed",
        "mara",
        "should_have_escalated",
        "they wanted a person",
        "request_human",
    )
    again = post(hub.signed_in("felix"), hub, path, {"verdict": "right"})
    assert again.status_code == 409 and "already made by mara" in again.json()["error"]
    assert get(mara, hub, "/dashboard/api/metrics", **WINDOW).json()["missed_escalations"] == 1


def test_a_verdict_on_a_closed_case_from_the_dashboard(hub: Hub) -> None:
    lena, c3 = hub.signed_in("lena"), hub.ids["C3"]
    path = f"/dashboard/api/consultations/{c3}/verdict"
    assert post(hub.signed_in("jonas"), hub, path, {"verdict": "needed"}).status_code == 403  # not his queue
    assert post(lena, hub, path, {"verdict": "urgent"}).status_code == 400
    assert post(lena, hub, path, {"verdict": "needed", "note": 5}).status_code == 400
    assert post(lena, hub, path, {"verdict": "needed"}, Origin="https://evil.example").status_code == 403
    assert post(lena, hub, "/dashboard/api/consultations/c_nothing/verdict", {"verdict": "needed"}).status_code == 404
    assert hub.store.verdict(c3) is None
    given = post(lena, hub, path, {"verdict": "Should have come earlier", "note": "asked twice before"})
    assert given.status_code == 200 and given.json()["verdict"]["verdict"] == "too_late"
    stored = held(hub.store.verdict, c3)
    assert (stored.verdict, stored.actor, stored.source, stored.note) == (
        "too_late",
        "lena",
        "dashboard",
        "asked twice before",
    )
    shown = get(lena, hub, f"/dashboard/api/consultations/{c3}").json()["consultation"]
    assert (shown["verdict"]["verdict"], shown["override"]["kind"], shown["override"]["ai_draft"]) == (
        "too_late",
        "denied",
        "Pro costs 20 EUR.",
    )
    open_case = case(hub.store, "w49-a", "sales", "pricing", NOW)
    early = post(lena, hub, f"/dashboard/api/consultations/{open_case}/verdict", {"verdict": "needed"})
    assert early.status_code == 409 and hub.store.verdict(open_case) is None


def test_an_override_reason_after_the_decision(hub: Hub) -> None:
    lena, c3 = hub.signed_in("lena"), hub.ids["C3"]
    path = f"/dashboard/api/consultations/{c3}/override"
    assert post(lena, hub, path, {"reason": "mood"}).status_code == 400
    assert post(lena, hub, path, {"reason": "wrong_intent", "intent": "no_such_intent"}).status_code == 400
    assert post(hub.signed_in("mara"), hub, path, {"reason": "tone"}).status_code == 403
    approved = post(
        hub.signed_in("jonas"), hub, f"/dashboard/api/consultations/{hub.ids['C5']}/override", {"reason": "tone"}
    )
    assert approved.status_code == 404 and "no override" in approved.json()["error"]  # approved unchanged
    assert held(hub.store.override, c3).reason is None
    saved = post(
        lena, hub, path, {"reason": "Wrong intent", "note": "they asked about upgrades", "intent": "upgrade_interest"}
    )
    assert saved.status_code == 200, saved.text
    stored = held(hub.store.override, c3)
    assert (stored.reason, stored.note, stored.corrected_intent, stored.kind) == (
        "wrong_intent",
        "they asked about upgrades",
        "upgrade_interest",
        "denied",
    )


def test_a_reply_carries_its_override_reason_and_verdict_or_is_refused_whole(hub: Hub) -> None:
    c2 = held(hub.store.override, hub.ids["C2"])
    assert (c2.kind, c2.reason, c2.note, c2.final_text) == (
        "edited",
        "wrong_facts",
        "the draft quoted the old total",
        "We corrected invoice 7 to 120 EUR.",
    )
    assert held(hub.store.verdict, hub.ids["C2"]).verdict == "not_needed"
    fresh = case(hub.store, "w49-b", "billing", "invoice_wrong", NOW, ai_draft="It is correct.")
    jonas = hub.signed_in("jonas")
    path = f"/dashboard/api/consultations/{fresh}/reply"
    bad = post(jonas, hub, path, {"action": "deny", "override_reason": "mood"})
    assert bad.status_code == 400 and "override reason must be one of" in bad.json()["error"]
    assert post(jonas, hub, path, {"action": "deny", "verdict": 3}).status_code == 400
    assert hub.store.require(fresh).status == "open" and hub.store.override(fresh) is None
    denied = post(jonas, hub, path, {"action": "deny", "override_reason": "policy", "verdict": "needed"})
    assert denied.status_code == 202, denied.text
    assert (held(hub.store.override, fresh).reason, held(hub.store.verdict, fresh).verdict) == ("policy", "needed")


# --- in Chromium ----------------------------------------------------------------------------------------


def open_signed_in(browser: Browser, hub: Hub, username: str, path: str, errors: List[str]) -> Page:
    """A fresh browser page signed in as ``username`` at ``path``; JavaScript errors and CSP refusals go to ``errors``."""
    page = new_page(browser, LAPTOP, errors)
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
    )
    page.goto(f"{hub.url}/dashboard/login?next={urllib.parse.quote(path)}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}{path.split('?')[0]}**")
    return page


def chart(page: Page, name: str) -> Dict[str, Any]:
    """The labels and each dataset's label and data of ``window.backlineCharts[name]``."""
    return page.evaluate(
        """(name) => { const c = window.backlineCharts[name];
        return { labels: c.data.labels, data: Object.fromEntries(c.data.datasets.map((d) => [d.label, d.data])) }; }""",
        name,
    )


def wait_for_labels(page: Page, name: str, labels: List[str]) -> None:
    page.wait_for_function(
        "([name, labels]) => window.backlineCharts && window.backlineCharts[name]"
        " && JSON.stringify(window.backlineCharts[name].data.labels) === JSON.stringify(labels)",
        arg=[name, labels],
    )


def painted(page: Page, name: str) -> int:
    """How many pixels of the chart's canvas are not transparent."""
    return page.evaluate(
        """(name) => { const canvas = window.backlineCharts[name].canvas;
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0; for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) n++; return n; }""",
        name,
    )


def test_the_analytics_page_draws_the_seeded_metrics_and_filters_redraw_them(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    page = open_signed_in(browser, hub, "petra", "/dashboard/analytics?since=2026-11-16&until=2026-11-29", errors)
    wait_for_labels(page, "weekly", ["2026-W47", "2026-W48"])
    expect(page.locator("#until")).to_have_value("2026-11-29")
    assert chart(page, "weekly")["data"] == {
        "Containment": [50, 66.7],
        "Escalation": [50, 33.3],
        "Escalation accuracy": [100, 0],
        "Reopened": [0, 20],
        "Override": [None, 66.7],
        "CSAT": [4, 2],
    }
    assert chart(page, "times") == {
        "labels": [
            "median",
            "P90",
            "median, business hours",
            "P90, business hours",
            "median, off-hours",
            "P90, off-hours",
        ],
        "data": {"First reply": [20, 60, 10, 30, 60, 60], "Resolution": [35, 120, 10, 120, 60, 60]},
    }
    assert chart(page, "verdicts") == {
        "labels": ["Escalation needed", "Not needed", "Should have come earlier"],
        "data": {"count": [1, 1, 0]},
    }
    assert chart(page, "overrides") == {
        "labels": ["Wrong intent", "Wrong facts", "Policy", "Tone", "Other", "Unspecified"],
        "data": {"count": [0, 1, 0, 0, 0, 1]},
    }
    assert chart(page, "breakdown") == {"labels": ["billing", "sales", "support"], "data": {"consultations": [3, 1, 0]}}
    for name in ("weekly", "times", "verdicts", "overrides", "breakdown"):
        assert painted(page, name) > 500, name
    expect(page.locator("#kpi-containment strong")).to_have_text("60 %")
    expect(page.locator("#kpi-first-reply strong")).to_have_text("20 min")
    expect(page.locator("#kpi-csat strong")).to_have_text("3")
    expect(page.locator(".nav a[aria-current=page]")).to_have_text("Analytics")

    page.select_option("#dimension", "channel")
    wait_for_labels(page, "breakdown", ["rest", "socketio", "unknown"])
    assert chart(page, "breakdown")["data"] == {"consultations": [1, 1, 2]}
    page.select_option("#measure", "escalation_rate")
    page.wait_for_function("window.backlineCharts.breakdown.data.datasets[0].label === 'escalation_rate'")
    assert chart(page, "breakdown")["data"] == {"escalation_rate": [33.3, 50, None]}

    page.select_option("#queue", "sales")
    wait_for_labels(page, "weekly", ["2026-W48"])
    assert chart(page, "verdicts")["data"] == {"count": [0, 0, 0]}
    assert chart(page, "overrides")["data"] == {"count": [0, 0, 0, 0, 0, 1]}
    assert chart(page, "times")["data"]["First reply"] == [60, 60, None, None, 60, 60]
    assert "queue=sales" in page.url

    page.select_option("#queue", "")
    page.fill("#since", "2026-11-23")
    wait_for_labels(page, "breakdown", ["rest", "unknown"])  # no socketio conversation after the 23rd
    assert chart(page, "weekly")["labels"] == ["2026-W48"]
    assert chart(page, "verdicts")["data"] == {"count": [0, 1, 0]}
    assert chart(page, "weekly")["data"]["Containment"] == [66.7]
    page.context.close()
    assert errors == []


def test_a_reviewer_submits_a_review_from_the_review_page(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    page = open_signed_in(browser, hub, "mara", "/dashboard/reviews", errors)
    rows = page.locator("#reviews tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("AI alone")
    expect(rows.first).to_contain_text("opening hours")
    rows.first.locator("a").click()
    expect(page).to_have_url(f"{hub.url}/dashboard/reviews/{hub.ids['R1']}")
    expect(page.locator("#review-transcript")).to_contain_text("when are you open?")
    expect(page.locator("#review-transcript")).to_contain_text("Here is the answer about opening_hours.")
    expect(page.locator("#review-decisions tbody tr")).to_contain_text("opening hours")
    page.click("#review-submit")
    expect(page.locator("#review-flash")).to_have_text("Choose a verdict.")
    page.check("input[name=review-verdict][value=should_have_escalated]")
    page.fill("#review-note", "they asked for a person")
    page.fill("#review-intent", "request_human")
    page.click("#review-submit")
    expect(page.locator("#review-flash")).to_have_text("Review recorded.")
    expect(page.locator("#review-verdict")).to_contain_text("Should have escalated · mara")
    stored = held(hub.store.review, hub.ids["R1"])
    assert (stored.status, stored.verdict, stored.reviewer, stored.note, stored.corrected_intent) == (
        "reviewed",
        "should_have_escalated",
        "mara",
        "they asked for a person",
        "request_human",
    )
    page.goto(f"{hub.url}/dashboard/reviews")
    expect(page.locator("#reviews tbody tr")).to_have_count(1)  # pending only: R2
    page.context.close()
    assert errors == []


def test_the_verdict_buttons_and_the_override_reason_on_a_closed_case(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    c3 = hub.ids["C3"]
    page = open_signed_in(browser, hub, "lena", f"/dashboard/consultations/{c3}", errors)
    expect(page.locator("#verdict-current")).to_have_text("No verdict yet.")
    expect(page.locator("#override-draft")).to_have_text("Pro costs 20 EUR.")
    expect(page.locator("#override-final")).to_have_text("(denied: nothing sent)")
    buttons = page.locator(".verdict button")
    expect(buttons).to_have_text(["Escalation needed", "Not needed", "Should have come earlier"])
    page.click("button[data-verdict=too_late]")
    expect(page.locator("#verdict-current")).to_contain_text("Should have come earlier · lena")
    verdict = held(hub.store.verdict, c3)
    assert (verdict.verdict, verdict.actor, verdict.source) == ("too_late", "lena", "dashboard")

    page.select_option("#override-reason", "wrong_intent")
    expect(page.locator("#override-intent")).to_be_visible()
    page.fill("#override-intent", "upgrade_interest")
    page.fill("#override-note", "an upgrade, not a price question")
    page.click("#override-save")
    expect(page.locator("#override-current")).to_have_text("Reason: Wrong intent — an upgrade, not a price question")
    override = held(hub.store.override, c3)
    assert (override.reason, override.corrected_intent, override.actor) == ("wrong_intent", "upgrade_interest", "lena")
    page.context.close()
    assert errors == []


def test_the_reply_form_sends_the_override_reason_and_the_verdict(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    fresh = case(hub.store, "w49-c", "sales", "pricing", NOW, ai_draft="Pro costs 20 EUR.")
    page = open_signed_in(browser, hub, "lena", f"/dashboard/consultations/{fresh}", errors)
    expect(page.locator("#reply-text")).to_have_value("Pro costs 20 EUR.")
    page.click(".governance-fields summary")
    page.select_option("#reply-override-reason", "wrong_facts")
    page.fill("#reply-override-note", "the price went up")
    page.select_option("#reply-verdict", "needed")
    page.fill("#reply-text", "Pro costs 24 EUR per user and month.")
    page.click("#send-answer")
    expect(page.locator(".decision")).to_contain_text("Resolution: answered")
    override = held(hub.store.override, fresh)
    assert (override.kind, override.reason, override.note, override.final_text) == (
        "edited",
        "wrong_facts",
        "the price went up",
        "Pro costs 24 EUR per user and month.",
    )
    assert held(hub.store.verdict, fresh).verdict == "needed"
    expect(page.locator("#verdict-current")).to_contain_text("Escalation needed · lena")
    page.context.close()
    assert errors == []
