"""The dashboard with its governance pages over the real `GovernanceService` and a seeded history, on loopback,
for tests/test_analytics_page.py (HTTP) and tests/test_analytics_browser.py (Chromium).

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
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import pytest
import requests
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
