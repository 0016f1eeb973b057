"""The dashboard's governance pages served for real against the real `GovernanceService`: the analytics
page and its metrics JSON, the QA review queue, and a case's verdict and override reason (sign-in, CSRF,
Origin, 400/403/404/409). The seeded history and what it must give: tests/analytics_hub.py."""

from __future__ import annotations

from typing import Dict

import pytest
import requests

from tests.analytics_hub import CHART_JS_VERSION, NOW, PASSWORD, WINDOW, Hub, at, case, directory, get, held, hub, post  # noqa: F401
from tests.servers import PROJECT_ROOT


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
