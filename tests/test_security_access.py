"""Operator access attacked, with the real processes (`backline run`) and loopback Slack, Telegram and
SMTP servers: a billing operator reaching a legal case through her own API token, the dashboard, a
Slack button; a support expert pressing a Telegram button on it; a spoofed actor; a revoked token;
metrics for a non-supervisor. Tokens are made and revoked with the real command
(`python -m backline tokens`). The last test writes docs/security.md (section ``access``).

Experts (tests/fixtures/experts_security.yml): mara billing (Slack), jonas support and security
(Telegram), lea legal (e-mail), petra the supervisor.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
from typing import Any, Dict, Iterator

import pytest
import requests

from tests.channels_stack import (
    HUB_SLACK_SECRET,
    HUB_TELEGRAM_SECRET,
    JONAS_CHAT,
    MARA,
    PROJECT_ROOT,
    Channels,
    _ids,
    case_detail,
    consultation,
    eventually,
    running_channels,
    slack_signed,
    telegram_update,
)
from tests.security_report import SecurityReport

EXPERTS = PROJECT_ROOT / "tests" / "fixtures" / "experts_security.yml"
pytestmark = pytest.mark.stack  # `backline run` with the channels; the report needs the whole module

COMMAND = "pytest tests/test_security_access.py"
REPORT = SecurityReport(COMMAND, {"access": "Operator access"})
record = REPORT.recorder("access")


@pytest.fixture(scope="module")
def c(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    with running_channels(business_url_today, tmp_path_factory.mktemp("access"), EXPERTS) as channels:
        yield channels


def tokens_command(c: Channels, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "BACKLINE_CONSULT_DB_URL": c.stack.consult_url,
        "BACKLINE_EXPERTS": str(EXPERTS),
        "RASA_TELEMETRY_ENABLED": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "backline", "tokens", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cases(c: Channels) -> Dict[str, Dict[str, Any]]:
    """A legal case (lea's) and a billing case (mara's), opened by customers over REST."""
    opened = {}
    for name, text in (
        ("legal", "My lawyer will sue you over the broken Hub X1, order 10023"),
        ("billing", "I want a refund of €780 for my Hub X1, order 10023"),
    ):
        sender = f"access-{name}-{next(_ids)}"
        requests.post(
            f"{c.stack.rasa_url}/webhooks/rest/webhook",
            headers=c.stack.channel_auth,
            timeout=120,
            json={"sender": sender, "message": text},
        ).raise_for_status()
        opened[name] = consultation(c.stack, sender, assigned=True)
    assert (opened["legal"]["queue"], opened["legal"]["assignee"]) == ("legal", "lea")
    assert (opened["billing"]["queue"], opened["billing"]["assignee"]) == ("billing", "mara")
    return opened


@pytest.fixture(scope="module")
def mara_token(c: Channels) -> str:
    made = tokens_command(c, "create", "--person", "mara", "--label", "mara's laptop")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("bkl_") and token not in tokens_command(c, "list").stdout
    return token


def api(c: Channels, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{c.stack.hub_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs
    )


def unchanged(c: Channels, case: Dict[str, Any]) -> bool:
    now = case_detail(c.stack, case["id"])
    return now["status"] == "assigned" and not [m for m in now["messages"] if m["direction"] == "from_expert"]


def test_a_billing_operators_token_does_not_reach_a_legal_case(
    c: Channels, cases: Dict[str, Any], mara_token: str
) -> None:
    legal, billing = cases["legal"], cases["billing"]
    listed = [case["id"] for case in api(c, mara_token, "GET", "/api/consultations").json()]
    read = api(c, mara_token, "GET", f"/api/consultations/{legal['id']}")
    decided = api(
        c,
        mara_token,
        "POST",
        f"/api/consultations/{legal['id']}/reply",
        json={"action": "answer", "text": "We settle."},
    )
    by_queue = api(c, mara_token, "GET", "/api/consultations", params={"queue": "legal"})
    own = api(c, mara_token, "GET", f"/api/consultations/{billing['id']}")

    assert billing["id"] in listed and legal["id"] not in listed
    assert (read.status_code, decided.status_code, by_queue.status_code, own.status_code) == (403, 403, 403, 200)
    assert unchanged(c, legal)
    record(
        "A billing operator reads or decides a legal case (API)",
        "mara's own token: list, read, reply, list by queue",
        f"refused: read {read.status_code}, reply {decided.status_code}, queue {by_queue.status_code}; "
        "absent from her list; the case unchanged",
    )


def test_the_dashboard_keeps_an_operator_to_her_queues(c: Channels, cases: Dict[str, Any]) -> None:
    legal = cases["legal"]
    session = requests.Session()
    session.headers["Origin"] = c.stack.hub_url
    signed = session.post(
        f"{c.stack.hub_url}/dashboard/login",
        data={"username": "mara", "password": "kestrel-demo"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed.status_code == 303, signed.text
    me = session.get(f"{c.stack.hub_url}/dashboard/api/session", timeout=30).json()
    session.headers["X-CSRF-Token"] = me["csrf_token"]
    queue = [
        row["id"] for row in session.get(f"{c.stack.hub_url}/dashboard/api/queue", timeout=30).json()["consultations"]
    ]
    read = session.get(f"{c.stack.hub_url}/dashboard/api/consultations/{legal['id']}", timeout=30)
    decided = session.post(
        f"{c.stack.hub_url}/dashboard/api/consultations/{legal['id']}/reply",
        json={"action": "answer", "text": "We settle."},
        timeout=30,
    )

    assert me["queues"] == ["billing", "sales"] and legal["id"] not in queue and cases["billing"]["id"] in queue
    assert (read.status_code, decided.status_code) == (403, 403)
    assert unchanged(c, legal)
    record(
        "A billing operator reads or decides a legal case (dashboard)",
        "mara signed in: queue, case page data, reply",
        f"refused: read {read.status_code}, reply {decided.status_code}; the queue lists her queues only",
    )


def test_slack_and_telegram_buttons_on_a_case_outside_the_experts_queues_change_nothing(
    c: Channels, cases: Dict[str, Any]
) -> None:
    legal = cases["legal"]
    payload = {
        "type": "block_actions",
        "user": {"id": MARA},
        "trigger_id": "1.2.3",
        "container": {"type": "message", "channel_id": "D0MARA01", "message_ts": "1.000001"},
        "actions": [{"action_id": "consult_approve", "value": legal["id"], "action_ts": f"{time.time():.6f}"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    slack = requests.post(
        f"{c.stack.hub_url}/slack/interactivity",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/x-www-form-urlencoded", **slack_signed(body, HUB_SLACK_SECRET)},
    )
    press = {
        "update_id": next(_ids),
        "callback_query": {
            "id": f"cbq-{next(_ids)}",
            "from": {"id": JONAS_CHAT, "is_bot": False, "first_name": "Jonas"},
            "message": {"message_id": 1, "chat": {"id": JONAS_CHAT}},
            "data": f"approve:{legal['id']}",
        },
    }
    telegram = telegram_update(f"{c.stack.hub_url}/telegram/webhook", HUB_TELEGRAM_SECRET, press)
    told = eventually(
        lambda: [
            p
            for p in c.expert_slack.requests
            if p.path.endswith("postEphemeral") and "not in your queues" in str(p.payload)
        ],
        what="mara told on Slack",
    )

    assert slack.status_code == 200 and told[-1].payload["user"] == MARA
    assert telegram.status_code == 200 and telegram.json()["method"] == "answerCallbackQuery"
    assert "not in your queues" in telegram.json()["text"] and telegram.json()["show_alert"] is True
    time.sleep(1)
    assert unchanged(c, legal)
    record(
        "An expert decides another queue's case from Slack or Telegram",
        "mara (billing) presses Approve on the legal case in Slack; jonas (support) on Telegram",
        "refused: each told on their channel (not in your queues); the case unchanged",
    )


def test_the_audit_names_the_tokens_person_never_a_chosen_actor(
    c: Channels, cases: Dict[str, Any], mara_token: str
) -> None:
    billing = cases["billing"]
    spoofed = api(
        c,
        mara_token,
        "POST",
        f"/api/consultations/{billing['id']}/reply",
        json={"action": "need_info", "text": "Which card?", "actor": "petra"},
    )
    shared = api(
        c,
        c.stack.operator_token,
        "POST",
        f"/api/consultations/{billing['id']}/reply",
        json={"action": "need_info", "text": "Which card?", "actor": "lea"},
    )
    own = api(
        c,
        mara_token,
        "POST",
        f"/api/consultations/{billing['id']}/reply",
        json={"action": "need_info", "text": "Which card did you pay with?"},
    )

    assert (spoofed.status_code, shared.status_code, own.status_code) == (403, 403, 200)
    messages = [m for m in case_detail(c.stack, billing["id"])["messages"] if m["direction"] == "from_expert"]
    assert [(m["author"], m["text"]) for m in messages] == [("mara", "Which card did you pay with?")]
    record(
        "A caller writes someone else's name into the audit trail",
        "a reply naming `actor` petra with mara's token, lea with the shared token",
        f"refused: {spoofed.status_code}, {shared.status_code}; mara's own reply recorded as mara",
    )


def test_a_revoked_token_stops_at_once_and_metrics_cover_only_the_callers_queues(c: Channels, mara_token: str) -> None:
    metrics_mara = api(c, mara_token, "GET", "/api/metrics")
    other_queue = api(c, mara_token, "GET", "/api/metrics?queue=legal")
    metrics_system = api(c, c.stack.operator_token, "GET", "/api/metrics")
    token_id = next(line.split()[0] for line in tokens_command(c, "list").stdout.splitlines() if "mara" in line)
    revoked = tokens_command(c, "revoke", token_id)
    after = api(c, mara_token, "GET", "/api/consultations")
    unknown = tokens_command(c, "create", "--person", "mallory", "--label", "x")
    guessed = api(c, "bkl_" + "A" * 43, "GET", "/api/consultations")

    assert (metrics_mara.status_code, other_queue.status_code, metrics_system.status_code) == (200, 403, 200)
    assert "billing" in metrics_mara.json()["by_queue"]
    assert set(metrics_mara.json()["by_queue"]) <= {"billing", "sales"}  # her queues: the legal case is not hers
    assert metrics_system.json()["by_queue"]["legal"] >= 1
    assert revoked.returncode == 0 and (after.status_code, guessed.status_code) == (401, 401)
    assert unknown.returncode == 2 and "not a person of experts.yml" in unknown.stderr
    assert "revoked" in tokens_command(c, "list").stdout
    record(
        "An operator reads the figures of queues that are not theirs",
        "GET /api/metrics with mara's token (billing), and with ?queue=legal",
        f"only her queues' cases counted; ?queue=legal refused: {other_queue.status_code}",
    )
    record(
        "A lost token keeps working; a guessed one works",
        "`backline tokens revoke`, then a call; a well-formed guess",
        f"refused: {after.status_code}, {guessed.status_code}",
    )


def test_write_the_access_report() -> None:
    REPORT.write(expected={"access": 6})
