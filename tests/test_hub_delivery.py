"""The hub as a real process (`python -m backline hub`) in front of a loopback Rasa API: what the
operator API answers while the customer can or cannot be reached (200, 202 awaiting delivery, the
undeliverable alert and sending it again), two final decisions at once, and no secret in its log."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from backline.consult.store import ConsultationStore
from backline.hub.api_tokens import ApiTokens
from tests.faults import healthy, wait_for
from tests.rasa_api import TOKEN, FakeRasa
from tests.servers import PROJECT_ROOT, free_port

pytestmark = pytest.mark.stack  # every test runs `python -m backline hub` as a process

OPERATOR = "hub-delivery-operator-token"


@pytest.fixture(scope="module")
def rasa() -> Iterator[FakeRasa]:
    server = FakeRasa().start()
    yield server
    server.stop()


@contextmanager
def running_hub(rasa: FakeRasa, tmp: Path, url: str, **extra: str) -> Iterator[Dict[str, Any]]:
    """``python -m backline hub`` on a free port over the consultation store at ``url``."""
    port = free_port()
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "BACKLINE_CONSULT_DB_URL": url,
        "BACKLINE_RASA_URL": rasa.url,
        "BACKLINE_RASA_TOKEN": TOKEN,
        "BACKLINE_OPERATOR_TOKEN": OPERATOR,
        "BACKLINE_DASHBOARD_SECRET": "hub-delivery-dashboard-secret",
        "BACKLINE_SLA_INTERVAL": "0",
        "BACKLINE_DELIVERY_INTERVAL": "0.2",
        "BACKLINE_DELIVERY_MAX_DELAY": "0.5",
        "BACKLINE_DELIVERY_BUDGET": "3",
        "BACKLINE_DELIVERY_TIMEOUT": "2",
        "BACKLINE_SLACK_BOT_TOKEN": "",
        "BACKLINE_TELEGRAM_BOT_TOKEN": "",
        "BACKLINE_SMTP_HOST": "",
        **extra,
    }
    log = tmp / "hub.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backline", "hub", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}/health") or process.poll() is not None, 60, "the hub")
        assert process.poll() is None, log.read_text()
        yield {"url": f"http://127.0.0.1:{port}", "log": log}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def hub(rasa: FakeRasa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hub_delivery")
    url = f"sqlite:///{tmp / 'consultations.db'}"
    with ConsultationStore(url) as store, running_hub(rasa, tmp, url) as running:
        yield {**running, "store": store}


def api(hub: Dict[str, Any], method: str, path: str, token: str = OPERATOR, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, hub["url"] + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
    )


def new_case(hub: Dict[str, Any], conversation: str) -> str:
    store: ConsultationStore = hub["store"]
    created = store.create(
        conversation_id=conversation,
        mode="consult",
        queue="billing",
        reasons=["medium_confidence"],
        ai_draft="Your refund is on its way.",
    )
    return store.assign(created.id, "mara", "dashboard").id


def test_a_reachable_customer_gets_the_reply_at_once(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-ok")
    answer = api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "approve"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["delivery"]["status"] == "delivered" and body["consultation"]["delivery_status"] == "delivered"
    assert rasa.shown("hd-ok") == [body["delivery"]["id"]]


def test_an_unreachable_customer_means_202_awaiting_delivery_then_delivered(
    hub: Dict[str, Any], rasa: FakeRasa
) -> None:
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
    wait_for(
        lambda: api(hub, "GET", f"/api/consultations/{case}").json()["delivery_status"] == "delivered",
        20,
        "the worker delivering it",
    )
    assert rasa.shown("hd-later") == [body["delivery"]["id"]]


def test_past_the_budget_the_reply_is_an_alert_and_can_be_sent_again(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-alert")
    rasa.fail_next(503, {"status": "failure"}, times=40)
    answer = api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "deny", "text": "No."})
    assert answer.status_code == 202
    detail = wait_for(
        lambda: (lambda d: d if d["delivery_status"] == "undeliverable" else None)(
            api(hub, "GET", f"/api/consultations/{case}").json()
        ),
        30,
        "the retry budget to run out",
    )
    [delivery] = detail["deliveries"]
    assert delivery["status"] == "undeliverable" and delivery["attempts"] >= 3
    assert "Rasa answered 503" in delivery["last_error"]
    assert [e["action"] for e in detail["audit"]].count("delivery_undeliverable") == 1
    rasa.script.clear()
    again = api(hub, "POST", f"/api/deliveries/{delivery['id']}/retry")
    assert again.status_code == 202 and again.json()["delivery"]["status"] == "pending"
    wait_for(
        lambda: api(hub, "GET", f"/api/consultations/{case}").json()["delivery_status"] == "delivered",
        20,
        "the resent reply",
    )
    assert rasa.shown("hd-alert") == [delivery["id"]]
    assert api(hub, "POST", f"/api/deliveries/{delivery['id']}/retry").status_code == 409


def test_two_final_decisions_at_once_reach_the_customer_once(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-race")
    answers: List[requests.Response] = []
    barrier = threading.Barrier(2)

    tokens = {person: ApiTokens(hub["store"]).create(person, "race test")[1] for person in ("mara", "jonas")}

    def decide(action: str, actor: str) -> None:  # each with their own token: the API acts as its person
        barrier.wait()
        answers.append(
            api(
                hub,
                "POST",
                f"/api/consultations/{case}/reply",
                token=tokens[actor],
                json={"action": action, "text": "x"},
            )
        )

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


def test_closing_in_human_mode_through_the_api_with_each_persons_token(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    store: ConsultationStore = hub["store"]
    created = store.create(
        conversation_id="hd-close",
        mode="handoff",
        queue="billing",
        reasons=["explicit_request"],
        brief={"intent": "refund_request"},
    )
    case = store.assign(created.id, "mara", "dashboard").id
    tokens = {person: ApiTokens(store).create(person, "close test")[1] for person in ("mara", "anna", "petra")}
    path = f"/api/consultations/{case}/reply"
    assert api(hub, "POST", path, token=tokens["mara"], json={"action": "take_over"}).status_code == 200

    outsider = api(hub, "POST", path, token=tokens["anna"], json={"action": "close", "text": "Sorted."})
    no_text = api(hub, "POST", path, token=tokens["mara"], json={"action": "close", "text": "  "})
    as_someone_else = api(
        hub, "POST", path, token=tokens["mara"], json={"action": "close", "text": "Sorted.", "actor": "jonas"}
    )
    assert (outsider.status_code, no_text.status_code, as_someone_else.status_code) == (403, 400, 403)
    assert "not in your queues" in outsider.json()["error"]
    assert "'close' needs the text for the customer" in no_text.json()["error"]
    assert store.require(case).status == "replied" and len(rasa.shown("hd-close")) == 1

    closed = api(
        hub,
        "POST",
        path,
        token=tokens["mara"],
        json={"action": "close", "text": "Your refund of 780 EUR was sent today.\n// ticket 4411"},
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["consultation"]["status"], body["consultation"]["resolution"]) == ("closed", "closed")
    assert body["delivery"]["intent"] == "EXTERNAL_expert_reply" and body["delivery"]["status"] == "delivered"
    assert len(rasa.shown("hd-close")) == 2
    detail = api(hub, "GET", f"/api/consultations/{case}", token=tokens["petra"]).json()
    [event] = [e for e in detail["audit"] if e["action"] == "closed"]
    assert (event["actor"], event["detail"]["resolution"], event["detail"]["text"]) == (
        "mara",
        "closed",
        "Your refund of 780 EUR was sent today.",
    )
    last = detail["messages"][-1]
    assert (last["meta"]["action"], last["meta"]["customer_text"], last["meta"]["internal_notes"]) == (
        "close",
        "Your refund of 780 EUR was sent today.",
        ["ticket 4411"],
    )

    again = api(hub, "POST", path, token=tokens["petra"], json={"action": "close", "text": "Closing twice."})
    assert again.status_code == 409
    assert "already decided by Mara Klein (closed)" in again.json()["error"]
    assert len(rasa.shown("hd-close")) == 2


def test_no_secret_in_the_hubs_log(hub: Dict[str, Any], rasa: FakeRasa) -> None:
    case = new_case(hub, "hd-log")
    rasa.fail_next(500, {"message": "boom"}, times=2)
    api(hub, "POST", f"/api/consultations/{case}/reply", json={"action": "answer", "text": "Approved."})
    wait_for(lambda: rasa.shown("hd-log"), 20, "the delivery")
    time.sleep(0.5)
    text = Path(hub["log"]).read_text()
    assert "not delivered yet" in text  # the failures were logged ...
    assert TOKEN not in text and OPERATOR not in text  # ... without the tokens


def test_a_webhook_reply_the_database_refuses_is_retried_by_the_platform_and_applied_once(
    rasa: FakeRasa, postgres_url: str, tmp_path: Path
) -> None:
    """The hub's database role may not write (a real PostgreSQL refusal): the webhook answers 503
    and keeps nothing, so Telegram's retry is applied once the database takes writes again."""
    name, role = f"hub_{uuid.uuid4().hex[:8]}", f"hub_role_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, future=True, isolation_level="AUTOCOMMIT")
    owner_url = make_url(postgres_url).set(database=name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    owner = create_engine(owner_url, future=True, isolation_level="AUTOCOMMIT")
    try:
        with ConsultationStore(owner_url.render_as_string(hide_password=False)) as store:
            with owner.connect() as connection:
                connection.exec_driver_sql(
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'
                )
                connection.exec_driver_sql(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
                connection.exec_driver_sql(f'REVOKE INSERT ON deliveries FROM "{role}"')
            case = new_case({"store": store}, "hd-pg")
            hub_url = owner_url.set(username=role).render_as_string(hide_password=False)
            press = {
                "update_id": 81,
                "callback_query": {
                    "id": "q81",
                    "from": {"id": 5100000001, "is_bot": False, "first_name": "Jonas"},
                    "chat_instance": "-1",
                    "data": f"deny:{case}",
                    "message": {"message_id": 5, "date": 1764000000, "chat": {"id": 5100000001, "type": "private"}},
                },
            }
            headers = {"X-Telegram-Bot-Api-Secret-Token": "pg-telegram-secret"}
            with running_hub(rasa, tmp_path, hub_url, BACKLINE_TELEGRAM_WEBHOOK_SECRET="pg-telegram-secret") as hub:
                refused = requests.post(f"{hub['url']}/telegram/webhook", json=press, headers=headers, timeout=30)
                assert refused.status_code == 503 and "retry" in refused.json()["error"]
                assert store.messages(case) == [] and store.require(case).status == "assigned"
                with owner.connect() as connection:
                    assert connection.exec_driver_sql("SELECT count(*) FROM webhook_deliveries").scalar() == 0
                    connection.exec_driver_sql(f'GRANT INSERT ON deliveries TO "{role}"')
                retries = [
                    requests.post(f"{hub['url']}/telegram/webhook", json=press, headers=headers, timeout=30)
                    for _ in range(2)
                ]
                assert [r.status_code for r in retries] == [200, 200]
                wait_for(lambda: store.require(case).delivery_status == "delivered", 20, "the retried reply delivered")
            assert [m.meta["action"] for m in store.messages(case)] == ["deny"]
            assert store.require(case).resolution == "denied" and len(rasa.shown("hd-pg")) == 1
    finally:
        owner.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


@pytest.mark.parametrize(
    "name, value",
    [
        ("BACKLINE_DELIVERY_BUDGET", "an hour"),
        ("BACKLINE_DELIVERY_LEASE", "0"),
        ("BACKLINE_DELIVERY_INTERVAL", "-1"),
        ("BACKLINE_SLA_INTERVAL", "soon"),
        ("BACKLINE_TRUSTED_PROXIES", "10.0.0.1, the proxy"),
        ("BACKLINE_ESCALATIONS_PER_CONVERSATION", "many"),
    ],
)
def test_a_bad_setting_stops_the_hub_with_its_name(name: str, value: str) -> None:
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "BACKLINE_OPERATOR_TOKEN": OPERATOR,
        "BACKLINE_RASA_TOKEN": TOKEN,
        "BACKLINE_DASHBOARD_SECRET": "x" * 32,
        name: value,
    }
    run = subprocess.run(
        [sys.executable, "-m", "backline", "hub", "--port", str(free_port())],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith(f"backline hub: {name}")
    assert "Traceback" not in run.stderr
