"""A running stack with every channel on loopback: `backline run` (Rasa server, action server, hub)
with loopback servers speaking Slack's Web API and Telegram's Bot API for customers and experts, and
an SMTP server for e-mail experts; and the helpers a test needs to act as a customer, an expert or
an integrating backend on it (tests/test_channels_e2e.py, tests/test_security_ownership.py,
tests/test_security_pii_limits.py).
"""

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import requests

from tests.channel_servers import FakeBotApi
from tests.expert_apis import FakeSlack, SmtpServer
from tests.faults import wait_for
from tests.servers import Stack, assistant_env, running_assistant

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HUB_SLACK_SECRET = "hub-slack-signing-secret"
HUB_TELEGRAM_SECRET = "hub-telegram-secret"
CUSTOMER_SLACK_SECRET = "customer-slack-signing-secret"
CUSTOMER_TELEGRAM_SECRET = "customer-telegram-secret"
MARA, JONAS_CHAT = "U0MARA01", 7001
_ids = itertools.count(1000)
EXPERTS = PROJECT_ROOT / "tests" / "fixtures" / "experts_channels.yml"


class Channels:
    """The running stack and the fake APIs it talks to."""

    def __init__(
        self,
        stack: Stack,
        expert_slack: FakeSlack,
        expert_telegram: FakeBotApi,
        customer_slack: FakeSlack,
        customer_telegram: FakeBotApi,
        smtp: SmtpServer,
    ) -> None:
        self.stack = stack
        self.expert_slack = expert_slack
        self.expert_telegram = expert_telegram
        self.customer_slack = customer_slack
        self.customer_telegram = customer_telegram
        self.smtp = smtp
        self.env: Dict[str, str] = {}
        """The environment `backline run` was started with."""


@contextmanager
def running_channels(business_url: str, tmp: Path, experts: Path = EXPERTS, **extra: str) -> Iterator[Channels]:
    """`backline run` with every expert and customer channel pointed at loopback fakes (and an SMTP
    server for e-mail experts); ``extra``: more environment."""
    model = PROJECT_ROOT / "models" / "backline.tar.gz"
    if not model.exists():
        raise RuntimeError(f"{model} is missing: run `make train`")
    fakes = [
        FakeSlack("xoxb-experts"),
        FakeBotApi("111:experts", "kestrel_experts_bot"),
        FakeSlack("xoxb-customers"),
        FakeBotApi("222:customers", "kestrel_support_bot"),
    ]
    for fake in fakes:
        fake.start()
    expert_slack, expert_telegram, customer_slack, customer_telegram = fakes
    smtp = SmtpServer().start()
    stack, env = assistant_env(
        tmp,
        business_url,
        BACKLINE_EXPERTS=str(experts),
        BACKLINE_SMTP_HOST="127.0.0.1",
        BACKLINE_SMTP_PORT=str(smtp.port),
        BACKLINE_SMTP_FROM="backline@kestrel.example",
        BACKLINE_SLACK_BOT_TOKEN="xoxb-experts",
        BACKLINE_SLACK_API_URL=f"{expert_slack.url}/api/",
        BACKLINE_SLACK_SIGNING_SECRET=HUB_SLACK_SECRET,
        BACKLINE_TELEGRAM_BOT_TOKEN="111:experts",
        BACKLINE_TELEGRAM_API_URL=expert_telegram.url,
        BACKLINE_TELEGRAM_WEBHOOK_SECRET=HUB_TELEGRAM_SECRET,
        BACKLINE_CUSTOMER_SLACK_TOKEN="xoxb-customers",
        BACKLINE_CUSTOMER_SLACK_API_URL=f"{customer_slack.url}/api/",
        BACKLINE_CUSTOMER_SLACK_SIGNING_SECRET=CUSTOMER_SLACK_SECRET,
        BACKLINE_CUSTOMER_TELEGRAM_TOKEN="222:customers",
        BACKLINE_CUSTOMER_TELEGRAM_API_URL=customer_telegram.url,
        BACKLINE_CUSTOMER_TELEGRAM_BOT_NAME="kestrel_support_bot",
        BACKLINE_CUSTOMER_TELEGRAM_WEBHOOK_URL="https://kestrel.example/webhooks/telegram/webhook",
        BACKLINE_CUSTOMER_TELEGRAM_SECRET=CUSTOMER_TELEGRAM_SECRET,
        **extra,
    )
    try:
        with running_assistant(model, env, tmp / "backline-run.log"):
            channels = Channels(stack, *fakes, smtp)
            channels.env = env
            yield channels
    finally:
        for fake in fakes:
            fake.stop()
        smtp.stop()


# --- helpers ----------------------------------------------------------------------------------------


def eventually(probe: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """`tests.faults.wait_for`, polling every 0.2 s."""
    return wait_for(probe, timeout, what, every=0.2)


def slack_signed(body: bytes, secret: str, timestamp: Optional[int] = None) -> Dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


def slack_event(
    url: str, secret: str, event: Dict[str, Any], event_id: Optional[str] = None, **headers: str
) -> requests.Response:
    body = json.dumps(
        {"type": "event_callback", "event_id": event_id or f"Ev{next(_ids)}", "team_id": "T0KESTREL", "event": event}
    ).encode()
    return requests.post(
        url,
        data=body,
        timeout=30,
        headers={"Content-Type": "application/json", **slack_signed(body, secret), **headers},
    )


def slack_click(stack: Stack, action_id: str, consultation_id: str, message_ts: str) -> requests.Response:
    payload = {
        "type": "block_actions",
        "user": {"id": MARA},
        "trigger_id": "1.2.3",
        "container": {"type": "message", "channel_id": "D0MARA01", "message_ts": message_ts},
        "actions": [{"action_id": action_id, "value": consultation_id, "action_ts": f"{time.time():.6f}"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return requests.post(
        f"{stack.hub_url}/slack/interactivity",
        data=body,
        timeout=30,
        headers={"Content-Type": "application/x-www-form-urlencoded", **slack_signed(body, HUB_SLACK_SECRET)},
    )


def telegram_update(url: str, secret: str, update: Dict[str, Any]) -> requests.Response:
    return requests.post(url, json=update, timeout=60, headers={"X-Telegram-Bot-Api-Secret-Token": secret})


def customer_telegram_says(c: Channels, chat_id: int, text: str, update_id: Optional[int] = None) -> requests.Response:
    update = {
        "update_id": update_id or next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": int(time.time()),
            "text": text,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Kim"},
        },
    }
    return telegram_update(f"{c.stack.rasa_url}/webhooks/telegram/webhook", CUSTOMER_TELEGRAM_SECRET, update)


def jonas_says(
    c: Channels, text: str, reply_to: Optional[int] = None, update_id: Optional[int] = None
) -> requests.Response:
    message: Dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "text": text,
        "chat": {"id": JONAS_CHAT, "type": "private"},
        "from": {"id": JONAS_CHAT, "is_bot": False, "first_name": "Jonas"},
    }
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "chat": {"id": JONAS_CHAT}}
    return telegram_update(
        f"{c.stack.hub_url}/telegram/webhook",
        HUB_TELEGRAM_SECRET,
        {"update_id": update_id or next(_ids), "message": message},
    )


def texts_to(fake: Any, recipient: Any) -> List[str]:
    key = "chat_id" if isinstance(fake, FakeBotApi) else "channel"
    return [
        str(p.get("text") or "")
        for p in list(fake.posts() if isinstance(fake, FakeSlack) else fake.messages())
        if str(p.get(key)) in {str(recipient), "D" + str(recipient)[1:]}
    ]


def consultation(stack: Stack, conversation_id: Any, assigned: bool = False) -> Dict[str, Any]:
    """The conversation's latest consultation (once an expert was given it, with ``assigned``)."""

    def found() -> Optional[Dict[str, Any]]:
        response = requests.get(
            f"{stack.hub_url}/api/consultations",
            params={"conversation_id": conversation_id},
            headers={"Authorization": f"Bearer {stack.operator_token}"},
            timeout=30,
        )
        cases = response.json()
        return cases[-1] if cases and (cases[-1]["assignee"] or not assigned) else None

    return eventually(found, what=f"a consultation for {conversation_id}")


def case_detail(stack: Stack, consultation_id: str) -> Dict[str, Any]:
    return requests.get(
        f"{stack.hub_url}/api/consultations/{consultation_id}",
        headers={"Authorization": f"Bearer {stack.operator_token}"},
        timeout=30,
    ).json()


def slots(stack: Stack, conversation_id: str) -> Dict[str, Any]:
    return requests.get(
        f"{stack.rasa_url}/conversations/{conversation_id}/tracker", params={"token": stack.rasa_token}, timeout=30
    ).json()["slots"]


def first_delivery(fake: Any, consultation_id: str) -> Dict[str, Any]:
    """The notification about the consultation that reached the expert's fake API."""

    def found() -> Optional[Dict[str, Any]]:
        for payload in list(fake.posts() if isinstance(fake, FakeSlack) else fake.messages()):
            if consultation_id in json.dumps(payload):
                return payload
        return None

    return eventually(found, what=f"the notification of {consultation_id}")


def api_reply(stack: Stack, consultation_id: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{stack.hub_url}/api/consultations/{consultation_id}/reply",
        json=body,
        timeout=90,
        headers={"Authorization": f"Bearer {stack.operator_token}"},
    )
