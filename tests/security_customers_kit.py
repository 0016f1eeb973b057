"""What the customer-side attack tests share (tests/test_security_ownership.py,
tests/test_security_pii_limits.py): the channel stack they attack (`backline run` with the Rasa
server, the action server and the hub, loopback Slack, Telegram and SMTP servers) and the
attacker's helpers (each module writes its sections of docs/security.md with
`tests.security_report.SecurityReport`).
"""

import asyncio
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import socketio

from tests.channels_stack import (
    PROJECT_ROOT,
    Channels,
    eventually,
    running_channels,
)

EXPERTS = PROJECT_ROOT / "tests" / "fixtures" / "experts_security.yml"
PER_ADDRESS = 3
"""BACKLINE_ESCALATIONS_PER_ADDRESS of the stack: cases one address may open per hour."""


@pytest.fixture(scope="module")
def c(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    """The channel stack, once per module, with tight escalation limits (1 per conversation,
    PER_ADDRESS per address)."""
    with running_channels(
        business_url_today,
        tmp_path_factory.mktemp("security"),
        EXPERTS,
        BACKLINE_ESCALATIONS_PER_CONVERSATION="1",
        BACKLINE_ESCALATIONS_PER_ADDRESS=str(PER_ADDRESS),
    ) as channels:
        yield channels


# --- helpers ----------------------------------------------------------------------------------------


def rest(
    c: Channels,
    sender: str,
    message: str,
    headers: Optional[Dict[str, str]] = None,
    path: str = "/webhooks/rest/webhook",
) -> requests.Response:
    return requests.post(
        f"{c.stack.rasa_url}{path}",
        json={"sender": sender, "message": message},
        timeout=120,
        headers=c.stack.channel_auth if headers is None else headers,
    )


def tracker(c: Channels, conversation_id: str) -> Dict[str, Any]:
    return requests.get(
        f"{c.stack.rasa_url}/conversations/{conversation_id}/tracker", params={"token": c.stack.rasa_token}, timeout=30
    ).json()


def user_texts(c: Channels, conversation_id: str) -> List[str]:
    return [e.get("text") or "" for e in tracker(c, conversation_id)["events"] if e["event"] == "user"]


def cases(c: Channels, conversation_id: str) -> List[Dict[str, Any]]:
    return requests.get(
        f"{c.stack.hub_url}/api/consultations",
        params={"conversation_id": conversation_id},
        headers={"Authorization": f"Bearer {c.stack.operator_token}"},
        timeout=30,
    ).json()


class WebCustomer:
    """A socket.io client of the web chat: a session the server issued, what it was told, what was refused."""

    def __init__(self, c: Channels) -> None:
        self.c = c

    def run(
        self, steps: List[Dict[str, Any]], ask_for: Optional[str] = None, wait_for: int = 1, wait: float = 60
    ) -> Tuple[str, List[Dict[str, Any]], List[Dict[str, Any]]]:
        """Asks for session ``ask_for`` (None: a fresh one), emits each of ``steps`` as user_uttered
        (``session_id`` defaults to the issued one), waits for ``wait_for`` bot messages or refusals
        per step; returns (issued session id, bot messages, refusals)."""

        async def go() -> Tuple[str, List[Dict[str, Any]], List[Dict[str, Any]]]:
            client = socketio.AsyncClient()
            issued: List[str] = []
            said: List[Dict[str, Any]] = []
            refused: List[Dict[str, Any]] = []
            client.on("session_confirm", issued.append)
            client.on("bot_uttered", said.append)
            client.on("message_refused", refused.append)
            await client.connect(self.c.stack.rasa_url, transports=["polling"], wait_timeout=30)
            try:
                await client.emit("session_request", {"session_id": ask_for} if ask_for else {})
                await asyncio.to_thread(eventually, lambda: issued, 30, "session_confirm")
                for step in steps:
                    before = len(said) + len(refused)
                    await client.emit("user_uttered", {"session_id": issued[0], **step})
                    await asyncio.to_thread(
                        eventually,
                        lambda: len(said) + len(refused) >= before + wait_for,
                        wait,
                        "an answer or a refusal",
                    )
                return issued[0], said, refused
            finally:
                await client.eio.disconnect(abort=True)

        return asyncio.run(go())


def conversation_of(session_id: str) -> str:
    return "web:" + session_id.split(".")[0]
