"""Verdicts and override reasons in one click on every expert channel: after a decision the expert is asked
(tests/test_governance_feedback.py: the keywords and what each channel asks), and the clicks and replies
coming back through the hub's signed webhooks are recorded
on the consultation store with the person as actor and the channel as source, once, and only from
the case's queues. In process (the hub's Sanic app before loopback Slack, Telegram and Rasa APIs) and
through `python -m backline hub` as a process."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from backline.consult.outbox import Outbox
from backline.consult.service import ConsultationService
from backline.consult.store import ConsultationStore
from backline.experts.dashboard import DashboardChannel
from backline.experts.slack import SlackChannel
from backline.experts.telegram import TelegramChannel, feedback_markup
from backline.hub.app import HubConfig, create_app
from backline.hub.feedback import Feedback, record_feedback
from backline.hub.rasa_client import RasaClient
from backline.routing.directory import ExpertDirectory, load_experts
from tests.channel_servers import FakeBotApi, LiveApp
from tests.expert_apis import FakeSlack, RecordingApi
from tests.faults import wait_for
from tests.hub_process import start_hub
from tests.rasa_api import TOKEN, FakeRasa
from tests.servers import PROJECT_ROOT, interrupt
from tests.test_hub_slack_inbound import form, sign

SIGNING = "governance-slack-signing-secret"
TG_SECRET = "governance-telegram-secret"
SLACK_TOKEN = "xoxb-governance-test"
TG_TOKEN = "123456:governance-test-token"
MARA, LENA = "U07KESTR02", "U07KESTR04"  # billing / sales (not billing)
JONAS, SOFIA = 5100000001, 5100000003  # billing / support (not billing)
DM = "D07KESTR02"
DRAFT = "Your refund of 780 EUR is on its way."
VERDICT_IDS = ["verdict_needed", "verdict_not_needed", "verdict_too_late"]
REASON_IDS = [f"override_reason_{k}" for k in ("wrong_intent", "wrong_facts", "policy", "tone", "other")]


# --- the hub in process: a case closes, the expert is asked, the click is recorded -----------------


class Hub:
    """The hub's Sanic app (create_app) over its own SQLite store, with Slack and Telegram pointing at
    loopback fakes; the feedback question is asked at once (not in a background thread)."""

    def __init__(self, tmp: Path) -> None:
        self.slack_api, self.telegram_api = FakeSlack(SLACK_TOKEN).start(), FakeBotApi(TG_TOKEN).start()
        self.rasa, self.hooks = FakeRasa().start(), RecordingApi(lambda r: (200, {"ok": True}, {})).start()
        self.directory: ExpertDirectory = load_experts(PROJECT_ROOT / "experts.yml")
        self.store = ConsultationStore(f"sqlite:///{tmp / 'consultations.db'}")
        channels = {
            "slack": SlackChannel(SLACK_TOKEN, self.slack_api.url + "/api/"),
            "telegram": TelegramChannel(TG_TOKEN, self.telegram_api.url),
            "dashboard": DashboardChannel([]),
        }
        service = ConsultationService(self.store, self.directory, channels)
        config = HubConfig(
            operator_token="governance-operator",
            rasa_url=self.rasa.url,
            rasa_token=TOKEN,
            sla_interval=0,
            slack_signing_secret=SIGNING,
            telegram_webhook_secret=TG_SECRET,
            delivery_interval=0,  # no worker loop: the outbox shows what would reach the customer
        )
        app = create_app(service, config, RasaClient(self.rasa.url, TOKEN), name=f"gov_{uuid.uuid4().hex[:8]}")
        app.ctx.flow.feedback_runner = lambda job: job()
        self.live = LiveApp(app).start()
        self.url = self.live.url

    def stop(self) -> None:
        self.live.stop()
        for server in (self.slack_api, self.telegram_api, self.rasa, self.hooks):
            server.stop()
        self.store.dispose()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    running = Hub(tmp_path)
    yield running
    running.stop()


def slack_case(store: ConsultationStore, conversation: str, draft: Optional[str] = DRAFT) -> str:
    """A billing consultation sent to Mara on Slack (its DM thread linked)."""
    case = store.create(
        conversation_id=conversation, mode="consult", queue="billing", reasons=["medium_confidence"], ai_draft=draft
    )
    ts = f"1764000000.{uuid.uuid4().int % 10**6:06d}"
    store.assign(case.id, "mara", "slack", detail={"message_id": ts, "thread_id": ts})
    store.link_thread(case.id, "slack", DM, ts)
    return case.id


def telegram_case(store: ConsultationStore, conversation: str, message_id: int) -> str:
    """A billing consultation sent to Jonas on Telegram (our message ``message_id`` linked)."""
    case = store.create(
        conversation_id=conversation, mode="consult", queue="billing", reasons=["medium_confidence"], ai_draft=DRAFT
    )
    store.assign(case.id, "jonas", "telegram", detail={"message_id": str(message_id), "thread_id": str(message_id)})
    store.link_thread(case.id, "telegram", str(JONAS), str(message_id))
    return case.id


def thread_of(store: ConsultationStore, case: str) -> str:
    return next(e.detail["thread_id"] for e in store.audit_trail(case) if e.action == "assigned")


def slack_post(url: str, path: str, body: bytes, content_type: str) -> requests.Response:
    headers = {**sign(body, int(time.time()), SIGNING), "Content-Type": content_type}
    return requests.post(f"{url}{path}", data=body, headers=headers, timeout=30)


def slack_reply(url: str, case_thread: str, text: str, user: str = MARA) -> requests.Response:
    """A message in the consultation's Slack thread (Events API)."""
    payload = {
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10]}",
        "event": {
            "type": "message",
            "text": text,
            "user": user,
            "ts": f"{time.time():.6f}",
            "thread_ts": case_thread,
            "channel": DM,
        },
    }
    return slack_post(url, "/slack/events", json.dumps(payload).encode(), "application/json")


def slack_click(url: str, button: Dict[str, Any], user: str, response_url: str, action_ts: str) -> requests.Response:
    """A block_actions click on ``button`` (as we posted it) in the DM thread."""
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "container": {"type": "message", "message_ts": "1764000999.000001", "channel_id": DM},
        "channel": {"id": DM},
        "response_url": response_url,
        "actions": [{**button, "action_ts": action_ts}],
    }
    return slack_post(url, "/slack/interactivity", form(payload), "application/x-www-form-urlencoded")


def feedback_posts(slack_api: FakeSlack) -> List[Dict[str, Any]]:
    return [
        p
        for p in slack_api.posts()
        if any(
            b.get("block_id") == "feedback_verdict" or b.get("block_id") == "feedback_reason"
            for b in p.get("blocks") or []
        )
    ]


def buttons(post: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {e["action_id"]: e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]}


def events_of(store: ConsultationStore, case: str, action: str) -> List[Any]:
    return [e for e in store.audit_trail(case) if e.action == action]


def test_slack_close_asks_and_clicks_record_verdict_and_reason_once(hub: Hub) -> None:
    case = slack_case(hub.store, "gov-slack-1")
    thread = thread_of(hub.store, case)
    assert slack_reply(hub.url, thread, "deny: we cannot refund an activated licence").status_code == 200
    assert hub.store.require(case).resolution == "denied"
    (asked,) = feedback_posts(hub.slack_api)
    assert (asked["channel"], asked["thread_ts"]) == (MARA, thread)  # in the consultation's thread of her DM
    assert list(buttons(asked)) == VERDICT_IDS + REASON_IDS  # denied without a reason: both questions
    assert {b["value"] for b in buttons(asked).values()} == {case}
    assert events_of(hub.store, case, "feedback_asked")[0].detail["channel"] == "slack"

    hook = f"{hub.hooks.url}/actions/{case}"
    click = slack_click(hub.url, buttons(asked)["verdict_not_needed"], MARA, hook, "1764000030.000001")
    assert click.status_code == 200
    verdict = hub.store.verdict(case)
    assert (verdict.verdict, verdict.actor, verdict.source) == ("not_needed", "mara", "slack")
    wait_for(lambda: hub.hooks.requests, 10, "the ephemeral confirmation")
    assert hub.hooks.requests[0].payload == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "Recorded: verdict Not needed. Thank you!",
    }

    again = slack_click(hub.url, buttons(asked)["verdict_not_needed"], MARA, hook, "1764000030.000001")  # a retry
    assert again.status_code == 200 and len(events_of(hub.store, case, "verdict")) == 1
    time.sleep(0.3)
    assert len(hub.hooks.requests) == 1  # nothing answered twice

    slack_click(hub.url, buttons(asked)["override_reason_tone"], MARA, hook, "1764000031.000001")
    override = hub.store.override(case)
    assert (override.kind, override.reason, override.actor, override.source) == ("denied", "tone", "mara", "slack")
    assert override.ai_draft == DRAFT

    said = slack_reply(
        hub.url, thread, "verdict: should have come earlier\nreason: wrong intent -> cancel_subscription"
    )
    assert said.status_code == 200
    verdict, override = hub.store.verdict(case), hub.store.override(case)
    assert (verdict.verdict, verdict.source, override.reason, override.corrected_intent) == (
        "too_late",
        "slack",
        "wrong_intent",
        "cancel_subscription",
    )
    assert [m.meta["action"] for m in hub.store.messages(case)] == ["deny"]  # nothing for the customer
    assert len(Outbox(hub.store).for_consultation(case)) == 1
    ephemeral = wait_for(
        lambda: [r.payload for r in hub.slack_api.requests if r.path.endswith("postEphemeral")], 10, "the ephemeral"
    )
    assert ephemeral[-1]["text"].startswith("Recorded: verdict Should have come earlier, reason Wrong intent")


def test_slack_clicks_from_outside_the_queue_or_unknown_users_change_nothing(hub: Hub) -> None:
    case = slack_case(hub.store, "gov-slack-2")
    slack_reply(hub.url, thread_of(hub.store, case), "deny: not possible")
    (asked,) = feedback_posts(hub.slack_api)
    hook = f"{hub.hooks.url}/actions/outsider"
    assert slack_click(hub.url, buttons(asked)["verdict_needed"], LENA, hook, "1764000040.000001").status_code == 200
    assert (
        slack_click(hub.url, buttons(asked)["verdict_needed"], "U0NOBODY", hook, "1764000041.000001").status_code == 200
    )
    assert hub.store.verdict(case) is None and hub.store.override(case).reason is None
    texts = wait_for(
        lambda: [r.payload["text"] for r in hub.hooks.requests] if len(hub.hooks.requests) == 2 else None,
        10,
        "two refusals",
    )
    assert sorted(texts) == sorted(
        [
            "Not recorded: this case is not in your queues",
            "Not recorded: your Slack user (U0NOBODY) is not an expert in Backline's experts.yml. "
            "Ask your Backline admin to add it.",
        ]
    )


def test_a_verdict_given_with_the_decision_is_not_asked_again(hub: Hub) -> None:
    case = slack_case(hub.store, "gov-slack-3", draft=None)
    reply = slack_reply(hub.url, thread_of(hub.store, case), "close: your refund was sent today\nverdict: needed")
    assert reply.status_code == 200
    verdict = hub.store.verdict(case)
    assert (verdict.verdict, verdict.actor, verdict.source) == ("needed", "mara", "slack")
    assert feedback_posts(hub.slack_api) == [] and events_of(hub.store, case, "feedback_asked") == []

    edited = slack_case(hub.store, "gov-slack-4")
    slack_reply(hub.url, thread_of(hub.store, edited), "answer: Your refund of 780 EUR left today.\nverdict: needed")
    (asked,) = feedback_posts(hub.slack_api)
    assert list(buttons(asked)) == REASON_IDS  # edited without a reason: only the reason is asked


def test_a_case_on_slack_decided_through_the_api_is_asked_about_on_slack(hub: Hub) -> None:
    case = slack_case(hub.store, "gov-slack-api")
    answer = requests.post(
        f"{hub.url}/api/consultations/{case}/reply",
        json={"action": "approve"},
        headers={"Authorization": "Bearer governance-operator"},
        timeout=30,
    )
    assert answer.status_code in (200, 202), answer.text
    (asked,) = feedback_posts(hub.slack_api)
    assert (asked["channel"], asked["thread_ts"]) == (MARA, thread_of(hub.store, case))
    assert list(buttons(asked)) == VERDICT_IDS  # approved unchanged: no override, no reason to ask


def test_a_failed_question_is_audited_and_the_decision_stands(hub: Hub) -> None:
    case = slack_case(hub.store, "gov-slack-5")
    hub.slack_api.fail_next(200, {"ok": False, "error": "channel_not_found"})
    assert slack_reply(hub.url, thread_of(hub.store, case), "deny: not possible").status_code == 200
    assert hub.store.require(case).resolution == "denied"
    (failed,) = [e for e in events_of(hub.store, case, "delivery_failed") if e.detail.get("feedback")]
    assert (failed.detail["channel"], failed.detail["code"]) == ("slack", "channel_not_found")
    assert SLACK_TOKEN not in json.dumps(failed.detail)


def telegram_update(url: str, update: Dict[str, Any]) -> requests.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    return requests.post(f"{url}/telegram/webhook", json=update, headers=headers, timeout=30)


def tg_press(data: str, from_id: int, update_id: int, message_id: int) -> Dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"q{update_id}",
            "from": {"id": from_id, "is_bot": False, "first_name": "X"},
            "chat_instance": "-1",
            "data": data,
            "message": {"message_id": message_id, "date": 1764000000, "chat": {"id": from_id, "type": "private"}},
        },
    }


def test_telegram_close_asks_with_a_keyboard_and_presses_are_recorded_once(hub: Hub) -> None:
    case = telegram_case(hub.store, "gov-tg-1", 77)
    decided = telegram_update(hub.url, tg_press(f"deny:{case}", JONAS, 1001, 77))
    assert decided.status_code == 200 and hub.store.require(case).resolution == "denied"
    (asked,) = [m for m in hub.telegram_api.calls("sendMessage") if "reply_markup" in m]
    assert asked["chat_id"] == JONAS and asked["reply_parameters"]["message_id"] == 77
    assert asked["reply_markup"] == feedback_markup(case, verdict=True, reasons=True)
    data = [b["callback_data"] for row in asked["reply_markup"]["inline_keyboard"] for b in row]
    assert data[:3] == [f"v:needed:{case}", f"v:not_needed:{case}", f"v:too_late:{case}"]
    question = int(events_of(hub.store, case, "feedback_asked")[0].detail["message_id"])

    pressed = telegram_update(hub.url, tg_press(f"v:too_late:{case}", JONAS, 1002, question))
    assert pressed.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "q1002",
        "text": "Recorded: verdict Should have come earlier. Thank you!",
        "show_alert": False,
    }
    verdict = hub.store.verdict(case)
    assert (verdict.verdict, verdict.actor, verdict.source) == ("too_late", "jonas", "telegram")
    again = telegram_update(hub.url, tg_press(f"v:too_late:{case}", JONAS, 1002, question))
    assert again.json() == {} and len(events_of(hub.store, case, "verdict")) == 1

    stranger = telegram_update(hub.url, tg_press(f"r:policy:{case}", SOFIA, 1003, question))
    assert stranger.json()["text"] == "Not recorded: this case is not in your queues" and stranger.json()["show_alert"]
    assert hub.store.override(case).reason is None

    reason = telegram_update(hub.url, tg_press(f"r:wrong_facts:{case}", JONAS, 1004, question))
    assert reason.json()["text"] == "Recorded: reason Wrong facts. Thank you!"
    override = hub.store.override(case)
    assert (override.reason, override.actor, override.source) == ("wrong_facts", "jonas", "telegram")

    typed = {
        "update_id": 1005,
        "message": {
            "message_id": 300,
            "from": {"id": JONAS, "is_bot": False, "first_name": "Jonas"},
            "chat": {"id": JONAS, "type": "private"},
            "date": 1764000100,
            "text": "verdict: not needed",
            "reply_to_message": {"message_id": question, "date": 1764000000, "chat": {"id": JONAS, "type": "private"}},
        },
    }
    assert telegram_update(hub.url, typed).status_code == 200
    assert hub.store.verdict(case).verdict == "not_needed"
    told = wait_for(
        lambda: [m for m in hub.telegram_api.calls("sendMessage") if m.get("text", "").startswith("Recorded")],
        10,
        "the confirmation",
    )
    assert told[-1]["text"] == "Recorded: verdict Not needed. Thank you!"


def test_feedback_on_an_open_case_or_without_an_override_is_refused(tmp_path: Path) -> None:
    with ConsultationStore(f"sqlite:///{tmp_path / 'c.db'}") as store:
        case = slack_case(store, "gov-open")
        status, body = record_feedback(store, Feedback(case, "mara", "slack", verdict="needed"))
        assert status == 409 and "still open" in body["error"] and store.verdict(case) is None
        store.close(case, None, "closed", actor="mara")
        status, body = record_feedback(store, Feedback(case, "mara", "slack", reason="tone", dedupe_key="k1"))
        assert status == 400 and "no override" in body["error"]
        assert record_feedback(store, Feedback(case, "mara", "slack", verdict="sometimes"))[0] == 400
        assert record_feedback(store, Feedback(case, "mara", "slack", verdict="not needed", dedupe_key="k1"))[0] == 200
        assert store.verdict(case).verdict == "not_needed"  # the refused reason did not keep the key


# --- the hub as a process -------------------------------------------------------------------------


@contextmanager
def hub_process(tmp: Path, slack_api: FakeSlack, telegram_api: FakeBotApi, rasa: FakeRasa) -> Iterator[str]:
    """``python -m backline hub`` on a free port with Slack and Telegram pointing at the fakes."""
    process, url, log = start_hub(
        tmp,
        {
            "BACKLINE_CONSULT_DB_URL": f"sqlite:///{tmp / 'consultations.db'}",
            "BACKLINE_RASA_URL": rasa.url,
            "BACKLINE_RASA_TOKEN": TOKEN,
            "BACKLINE_OPERATOR_TOKEN": "governance-process-operator",
            "BACKLINE_DASHBOARD_SECRET": "governance-process-secret",
            "BACKLINE_DELIVERY_INTERVAL": "0.2",
            "BACKLINE_SLACK_SIGNING_SECRET": SIGNING,
            "BACKLINE_SLACK_BOT_TOKEN": SLACK_TOKEN,
            "BACKLINE_SLACK_API_URL": slack_api.url + "/api/",
            "BACKLINE_TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "BACKLINE_TELEGRAM_BOT_TOKEN": TG_TOKEN,
            "BACKLINE_TELEGRAM_API_URL": telegram_api.url,
        },
    )
    try:
        yield url
    finally:
        interrupt(process)
    text = log.read_text()
    assert SLACK_TOKEN not in text and TG_TOKEN not in text and SIGNING not in text


@pytest.mark.stack
def test_slack_and_telegram_feedback_through_the_hub_process(tmp_path: Path) -> None:
    slack_api, telegram_api, rasa = FakeSlack(SLACK_TOKEN).start(), FakeBotApi(TG_TOKEN).start(), FakeRasa().start()
    hooks = RecordingApi(lambda r: (200, {"ok": True}, {})).start()
    store = ConsultationStore(f"sqlite:///{tmp_path / 'consultations.db'}")
    try:
        on_slack, on_telegram = slack_case(store, "gov-proc-slack"), telegram_case(store, "gov-proc-tg", 88)
        with hub_process(tmp_path, slack_api, telegram_api, rasa) as url:
            assert slack_reply(url, thread_of(store, on_slack), "deny: not possible").status_code == 200
            (asked,) = wait_for(lambda: feedback_posts(slack_api), 20, "the Slack feedback question")
            assert list(buttons(asked)) == VERDICT_IDS + REASON_IDS and asked["thread_ts"] == thread_of(store, on_slack)
            slack_click(url, buttons(asked)["verdict_not_needed"], MARA, f"{hooks.url}/a", "1764000050.000001")
            slack_click(url, buttons(asked)["verdict_not_needed"], MARA, f"{hooks.url}/a", "1764000050.000001")
            slack_click(url, buttons(asked)["override_reason_policy"], MARA, f"{hooks.url}/a", "1764000051.000001")
            slack_click(url, buttons(asked)["verdict_needed"], LENA, f"{hooks.url}/a", "1764000052.000001")
            wait_for(lambda: len(hooks.requests) >= 3, 20, "three ephemeral answers")

            telegram_update(url, tg_press(f"deny:{on_telegram}", JONAS, 2001, 88))
            (question,) = wait_for(
                lambda: [m for m in telegram_api.calls("sendMessage") if "reply_markup" in m],
                20,
                "the Telegram question",
            )
            assert question["reply_markup"] == feedback_markup(on_telegram, verdict=True, reasons=True)
            pressed = telegram_update(url, tg_press(f"v:needed:{on_telegram}", JONAS, 2002, 89))
            assert pressed.json()["text"] == "Recorded: verdict Escalation needed. Thank you!"
            assert telegram_update(url, tg_press(f"v:needed:{on_telegram}", JONAS, 2002, 89)).json() == {}
            refused = telegram_update(url, tg_press(f"v:not_needed:{on_telegram}", SOFIA, 2003, 89))
            assert refused.json()["show_alert"] is True
        verdict, override = store.verdict(on_slack), store.override(on_slack)
        assert (verdict.verdict, verdict.actor, verdict.source) == ("not_needed", "mara", "slack")
        assert (override.reason, override.actor, override.source) == ("policy", "mara", "slack")
        assert len(events_of(store, on_slack, "verdict")) == 1
        assert sorted(r.payload["text"] for r in hooks.requests) == [
            "Not recorded: this case is not in your queues",
            "Recorded: reason Policy. Thank you!",
            "Recorded: verdict Not needed. Thank you!",
        ]
        tg = store.verdict(on_telegram)
        assert (tg.verdict, tg.actor, tg.source) == ("needed", "jonas", "telegram")
        assert len(events_of(store, on_telegram, "verdict")) == 1
    finally:
        store.dispose()
        for server in (slack_api, telegram_api, rasa, hooks):
            server.stop()
