"""The hub as a real process (`python -m backline hub`) in front of a loopback Rasa API: what the
operator API answers while the customer can or cannot be reached (200, 202 awaiting delivery, the
undeliverable alert and sending it again), two final decisions at once, and no secret in its log."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from backline.consult.store import ConsultationStore
from tests.faults import healthy, wait_for
from tests.rasa_api import TOKEN, FakeRasa
from tests.servers import PROJECT_ROOT, free_port

OPERATOR = "hub-delivery-operator-token"


@pytest.fixture(scope="module")
def rasa() -> Iterator[FakeRasa]:
    server = FakeRasa().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(rasa: FakeRasa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hub_delivery")
    port = free_port()
    url = f"sqlite:///{tmp / 'consultations.db'}"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "BACKLINE_CONSULT_DB_URL": url,
           "BACKLINE_RASA_URL": rasa.url, "BACKLINE_RASA_TOKEN": TOKEN, "BACKLINE_OPERATOR_TOKEN": OPERATOR,
           "BACKLINE_DASHBOARD_SECRET": "hub-delivery-dashboard-secret", "BACKLINE_SLA_INTERVAL": "0",
           "BACKLINE_DELIVERY_INTERVAL": "0.2", "BACKLINE_DELIVERY_MAX_DELAY": "0.5",
           "BACKLINE_DELIVERY_BUDGET": "3", "BACKLINE_DELIVERY_TIMEOUT": "2",
           "BACKLINE_SLACK_BOT_TOKEN": "", "BACKLINE_TELEGRAM_BOT_TOKEN": "", "BACKLINE_SMTP_HOST": ""}
    log = tmp / "hub.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "backline", "hub", "--port", str(port)], cwd=PROJECT_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}/health") or process.poll() is not None, 60, "the hub")
        assert process.poll() is None, log.read_text()
        with ConsultationStore(url) as store:
            yield {"url": f"http://127.0.0.1:{port}", "store": store, "log": log}
    finally:
        process.terminate()
        process.wait(timeout=30)


def api(hub: Dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, hub["url"] + path, headers={"Authorization": f"Bearer {OPERATOR}"},
                            timeout=30, **kwargs)


def new_case(hub: Dict[str, Any], conversation: str) -> str:
    store: ConsultationStore = hub["store"]
    created = store.create(conversation_id=conversation, mode="consult", queue="billing",
                           reasons=["medium_confidence"], ai_draft="Your refund is on its way.")
    return store.assign(created.id, "mara", "dashboard").id


def test_a_reachable_customer_gets_the_reply_at_once(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-ok")
    answer = api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "approve"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["delivery"]["status"] == "delivered" and body["consultation"]["delivery_status"] == "delivered"
    assert rasa.shown("hd-ok") == [body["delivery"]["id"]]


def test_an_unreachable_customer_means_202_awaiting_delivery_then_delivered(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-later")
    rasa.fail_next(503, {"status": "failure"}, times=3)
    answer = api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "answer", "text": "Approved."})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["consultation"]["status"] == "closed"
    assert body["consultation"]["delivery_status"] == "awaiting_delivery"
    assert body["delivery"]["status"] == "pending" and "awaiting delivery" in body["message"]
    listed = api(hub, "GET", "/api/consultations", params={"conversation_id": "hd-later"}).json()
    assert listed[0]["delivery_status"] in ("awaiting_delivery", "delivered")
    wait_for(lambda: api(hub, "GET", f"/api/consultations/{case}").json()["delivery_status"] == "delivered", 20,
             "the worker delivering it")
    assert rasa.shown("hd-later") == [body["delivery"]["id"]]


def test_past_the_budget_the_reply_is_an_alert_and_can_be_sent_again(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-alert")
    rasa.fail_next(503, {"status": "failure"}, times=40)
    answer = api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "deny", "text": "No."})
    assert answer.status_code == 202
    detail = wait_for(lambda: (lambda d: d if d["delivery_status"] == "undeliverable" else None)(
        api(hub, "GET", f"/api/consultations/{case}").json()), 30, "the retry budget to run out")
    [delivery] = detail["deliveries"]
    assert delivery["status"] == "undeliverable" and delivery["attempts"] >= 3
    assert "Rasa answered 503" in delivery["last_error"]
    assert [e["action"] for e in detail["audit"]].count("delivery_undeliverable") == 1
    rasa.script.clear()
    again = api(hub, "POST", f"/api/deliveries/{delivery['id']}/retry")
    assert again.status_code == 202 and again.json()["delivery"]["status"] == "pending"
    wait_for(lambda: api(hub, "GET", f"/api/consultations/{case}").json()["delivery_status"] == "delivered", 20,
             "the resent reply")
    assert rasa.shown("hd-alert") == [delivery["id"]]
    assert api(hub, "POST", f"/api/deliveries/{delivery['id']}/retry").status_code == 409


def test_two_final_decisions_at_once_reach_the_customer_once(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-race")
    answers: List[requests.Response] = []
    barrier = threading.Barrier(2)

    def decide(action: str, actor: str) -> None:
        barrier.wait()
        answers.append(api(hub, "POST", f"/api/consultations/{case}/reply",
                           json={"action": action, "text": "x", "actor": actor}))

    threads = [threading.Thread(target=decide, args=args) for args in (("approve", "mara"), ("deny", "jonas"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    refused = next(a for a in answers if a.status_code == 409).json()["error"]
    winner = next(a for a in answers if a.status_code == 200).json()["consultation"]["resolution"]
    name = {"approved": "Mara Klein", "denied": "Jonas Weber"}[winner]
    assert f"already decided by {name} ({winner})" in refused
    assert len(rasa.shown("hd-race")) == 1


def test_no_secret_in_the_hubs_log(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-log")
    rasa.fail_next(500, {"message": "boom"}, times=2)
    api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "answer", "text": "Approved."})
    wait_for(lambda: rasa.shown("hd-log"), 20, "the delivery")
    time.sleep(0.5)
    text = Path(hub["log"]).read_text()
    assert "not delivered yet" in text  # the failures were logged ...
    assert TOKEN not in text and OPERATOR not in text  # ... without the tokens
