"""The governance API on a real hub process (`python -m backline hub`) over a known history
(tests/governance_history.py): metrics with a window, filters and the caller's queues; verdicts and
override reasons; the QA review queue; a conversation's routing decisions. Every refusal names why and
changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from backline.consult.store import ConsultationStore
from backline.hub.api_tokens import ApiTokens
from tests.governance_history import T0, seed, write_trackers
from tests.hub_process import call, start_hub
from tests.servers import free_port, interrupt

pytestmark = pytest.mark.stack
SYSTEM_TOKEN = "governance-operator-token"
WINDOW = "since=2026-11-02&until=2026-11-13"  # an until date includes its day


class Hub:
    def __init__(self, url: str, tokens: Dict[str, str], db: str, cases: Tuple[str, ...], reviews: Dict[str, str]):
        self.url, self.tokens, self.db, self.cases, self.reviews = url, tokens, db, cases, reviews

    def api(self, who: str, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        answer = call(f"{self.url}{path}", method, headers=headers, body=data)
        try:
            return answer.status, json.loads(answer.text)
        except ValueError:
            return answer.status, answer.text

    def store(self) -> ConsultationStore:
        return ConsultationStore(self.db, migrate_schema=False)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("governance_api")
    tracker_url, db = f"sqlite:///{tmp / 'tracker.db'}", f"sqlite:///{tmp / 'consult.db'}"
    write_trackers(tracker_url)
    store = ConsultationStore(db)
    cases = seed(store)
    store.record_csat(cases[0], 5, conversation_id="t-tg-1", channel="telegram", at=T0)
    drafted = store.create(  # after the window of the metrics tests: an open case with an AI draft
        conversation_id="t-late-1",
        mode="consult",
        queue="billing",
        reasons=["medium_confidence"],
        brief={"intent": "invoice_copy"},
        ai_draft="Here is your invoice.",
        now=T0 + dt.timedelta(days=20),
    ).id
    cases = (*cases, drafted)
    tokens = {person: ApiTokens(store).create(person, "governance test")[1] for person in ("felix", "jonas", "anna")}
    tokens["system"] = SYSTEM_TOKEN
    reviews = {
        "t-web-1": store.add_review(
            kind="ai_alone",
            subject="t-web-1",
            conversation_id="t-web-1",
            subject_at=T0,
            queue="support",
            intent="order_status",
            channel="socketio",
        ).id,
        "k2": store.add_review(
            kind="closed_case",
            subject=cases[1],
            conversation_id="t-rest-1",
            consultation_id=cases[1],
            subject_at=T0,
            queue="billing",
            intent="invoice_wrong",
            channel="rest",
        ).id,
    }
    store.dispose()
    process, url, log_path = start_hub(
        tmp,
        {
            "BACKLINE_CONSULT_DB_URL": db,
            "BACKLINE_TRACKER_DB_URL": tracker_url,
            "BACKLINE_OPERATOR_TOKEN": SYSTEM_TOKEN,
            "BACKLINE_DASHBOARD_SECRET": "governance-secret",
            "BACKLINE_RASA_URL": f"http://127.0.0.1:{free_port()}",
            "BACKLINE_RASA_TOKEN": "governance-rasa",
            "BACKLINE_CHAT_SECRET": "governance-chat",
        },
    )
    try:
        yield Hub(url, tokens, db, cases, reviews)
    finally:
        interrupt(process)
        assert SYSTEM_TOKEN not in log_path.read_text() and tokens["felix"] not in log_path.read_text()


def test_metrics_over_a_window_for_the_integration(hub: Hub) -> None:
    status, metrics = hub.api("system", "GET", f"/api/metrics?{WINDOW}")
    assert status == 200
    assert (metrics["since"], metrics["until"]) == ("2026-11-02T00:00:00+00:00", "2026-11-14T00:00:00+00:00")
    assert (metrics["conversations"], metrics["containment_rate"], metrics["consultations"]) == (5, 0.4, 3)
    assert (metrics["override_rate"], metrics["override_reasons"], metrics["csat"]) == (1.0, {"policy": 1}, 5.0)
    assert metrics["breakdowns"]["channel"]["rest"]["consultations"] == 1
    first_week = hub.api("system", "GET", "/api/metrics?since=2026-11-02&until=2026-11-06")[1]
    assert (first_week["conversations"], first_week["containment_rate"]) == (4, 0.25)
    telegram = hub.api("system", "GET", f"/api/metrics?{WINDOW}&channel=telegram")[1]
    assert (telegram["conversations"], telegram["consultations"], telegram["filters"]) == (
        1,
        1,
        {"channel": "telegram"},
    )


def test_metrics_are_restricted_to_the_callers_queues(hub: Hub) -> None:
    status, felix = hub.api("felix", "GET", f"/api/metrics?{WINDOW}")
    assert status == 200
    assert (felix["conversations"], felix["consultations"], felix["by_queue"]) == (2, 1, {"support": 1})
    status, refused = hub.api("felix", "GET", f"/api/metrics?{WINDOW}&queue=billing")
    assert (status, refused["error"]) == (403, "queue 'billing' is not one of yours")
    assert hub.api("nobody", "GET", "/api/metrics")[0] == 401


@pytest.mark.parametrize(
    "query, message",
    [
        ("since=yesterday", "since must be like 30d"),
        ("until=2026-02-30", "until must be like 30d"),
        ("since=2026-11-10&until=2026-11-01", "since must be before until"),
        ("colour=red&intent=x", None),
    ],
)
def test_bad_windows_are_refused(hub: Hub, query: str, message: Optional[str]) -> None:
    status, body = hub.api("system", "GET", f"/api/metrics?{query}")
    if message is None:  # unknown parameters are ignored; a filter on an intent nobody had gives zeros
        assert (status, body["conversations"], body["consultations"]) == (200, 0, 0)
    else:
        assert status == 400 and message in body["error"]


def test_verdicts_through_the_api(hub: Hub) -> None:
    k1, k2, k3, _ = hub.cases
    status, body = hub.api(
        "felix",
        "POST",
        f"/api/consultations/{k3}/verdict",
        {"verdict": "should have come earlier", "note": "asked twice"},
    )
    assert (status, body["verdict"]["verdict"], body["verdict"]["actor"], body["verdict"]["source"]) == (
        200,
        "too_late",
        "felix",
        "api",
    )
    assert hub.api("felix", "POST", f"/api/consultations/{k1}/verdict", {"verdict": "needed"})[0] == 403
    status, bad = hub.api("felix", "POST", f"/api/consultations/{k3}/verdict", {"verdict": "meh"})
    assert status == 400 and "verdict must be one of needed, not_needed, too_late" in bad["error"]
    assert hub.api("system", "POST", "/api/consultations/c_nothere/verdict", {"verdict": "needed"})[0] == 404
    status, still_open = hub.api("jonas", "POST", f"/api/consultations/{hub.cases[3]}/verdict", {"verdict": "needed"})
    assert (status, still_open["error"]) == (
        409,
        f"consultation {hub.cases[3]} is still open: give the verdict when you close it",
    )
    answer = call(
        f"{hub.url}/api/consultations/{k3}/verdict",
        "POST",
        headers={"Authorization": f"Bearer {hub.tokens['felix']}"},
        body=b"not json",
    )
    assert answer.status == 400
    store = hub.store()
    try:
        verdict = store.verdict(k3)
        assert (verdict.verdict, verdict.actor, verdict.note) == ("too_late", "felix", "asked twice")
        assert store.verdict(k1) is None
    finally:
        store.dispose()


def test_override_reasons_through_the_api(hub: Hub) -> None:
    k1, k2, k3, _ = hub.cases
    status, body = hub.api(
        "jonas", "POST", f"/api/consultations/{k2}/override", {"reason": "wrong intent", "intent": "invoice_copy"}
    )
    assert (status, body["override"]["reason"], body["override"]["corrected_intent"]) == (
        200,
        "wrong_intent",
        "invoice_copy",
    )
    assert body["override"]["ai_draft"] == "Your invoice is correct."
    status, missing = hub.api("felix", "POST", f"/api/consultations/{k3}/override", {"reason": "tone"})
    assert (status, missing["error"]) == (404, f"consultation {k3} has no override of an AI draft")
    assert hub.api("felix", "POST", f"/api/consultations/{k2}/override", {"reason": "tone"})[0] == 403
    assert hub.api("jonas", "POST", f"/api/consultations/{k2}/override", {"reason": "bad mood"})[0] == 400


def test_the_review_queue(hub: Hub) -> None:
    status, felix = hub.api("felix", "GET", "/api/reviews?status=pending")
    assert status == 200 and [r["subject"] for r in felix] == ["t-web-1"]
    assert len(hub.api("system", "GET", "/api/reviews")[1]) == 2
    status, detail = hub.api("felix", "GET", f"/api/reviews/{hub.reviews['t-web-1']}")
    assert status == 200
    assert [line["text"] for line in detail["transcript"]] == [
        "where is my order 4711",
        "Your order 4711 left our warehouse yesterday.",
    ]
    assert [(d["intent"], d["action"]) for d in detail["decisions"]] == [("order_status", "answer")]
    assert hub.api("felix", "GET", f"/api/reviews/{hub.reviews['k2']}")[0] == 403
    assert hub.api("felix", "POST", f"/api/reviews/{hub.reviews['t-web-1']}", {"verdict": "bad"})[0] == 400
    status, done = hub.api(
        "felix",
        "POST",
        f"/api/reviews/{hub.reviews['t-web-1']}",
        {"verdict": "should_have_escalated", "note": "a refund was hidden in it"},
    )
    assert (status, done["review"]["reviewer"], done["review"]["status"]) == (200, "felix", "reviewed")
    status, again = hub.api("felix", "POST", f"/api/reviews/{hub.reviews['t-web-1']}", {"verdict": "right"})
    assert (status, again["error"]) == (409, f"review {hub.reviews['t-web-1']} was already made by felix")
    assert hub.api("system", "GET", "/api/reviews/r_nothere")[0] == 404
    metrics = hub.api("system", "GET", f"/api/metrics?{WINDOW}")[1]
    assert (metrics["missed_escalations"], metrics["qa"]["pending"], metrics["qa"]["reviewed"]) == (1, 1, 1)


def test_routing_decisions_of_a_conversation_are_for_the_supervisor(hub: Hub) -> None:
    status, body = hub.api("system", "GET", "/api/conversations/t-web-2/decisions")
    assert status == 200
    assert [(d["text"], d["action"], d.get("reason")) for d in body["decisions"]] == [
        ("order status please", "answer", None),
        ("that does not help", "handoff", "no_convergence"),
    ]
    assert hub.api("felix", "GET", "/api/conversations/t-web-2/decisions")[0] == 403


def test_a_reply_carries_its_override_reason_and_verdict(hub: Hub) -> None:
    drafted = hub.cases[3]
    path = f"/api/consultations/{drafted}/reply"
    status, bad = hub.api(
        "jonas", "POST", path, {"action": "answer", "text": "Invoice attached.", "override_reason": "bad mood"}
    )
    assert status == 400 and "override reason must be one of" in bad["error"]
    status, early = hub.api("jonas", "POST", path, {"action": "need_info", "text": "Which month?", "verdict": "needed"})
    assert status == 400 and "a verdict on the escalation goes with a final decision" in early["error"]
    store = hub.store()
    try:
        assert (store.require(drafted).status, store.override(drafted), store.verdict(drafted)) == ("open", None, None)
    finally:
        store.dispose()
    status, body = hub.api(
        "jonas",
        "POST",
        path,
        {
            "action": "answer",
            "text": "Your invoice for May is attached.",
            "override_reason": "wrong facts",
            "override_note": "the draft had no month",
            "verdict": "not needed",
        },
    )
    assert status == 202  # recorded; Rasa is not running, so the customer is reached later
    store = hub.store()
    try:
        override, verdict = store.override(drafted), store.verdict(drafted)
        assert (override.kind, override.reason, override.note, override.actor, override.source) == (
            "edited",
            "wrong_facts",
            "the draft had no month",
            "jonas",
            "api",
        )
        assert (override.ai_draft, override.final_text) == (
            "Here is your invoice.",
            "Your invoice for May is attached.",
        )
        assert (verdict.verdict, verdict.actor) == ("not_needed", "jonas")
    finally:
        store.dispose()
