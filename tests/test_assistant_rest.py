"""The real processes: `backline run` (Rasa server + action server) answering over REST."""
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from backline.business import queries
from backline.business.db import session_scope
from tests.servers import PROJECT_ROOT, free_port, running_assistant

MODEL = PROJECT_ROOT / "models" / "backline.tar.gz"
TOKEN = "test-api-token"


@pytest.fixture(scope="module")
def assistant(business_url_today: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test trains before running pytest)")
    tmp = tmp_path_factory.mktemp("assistant")
    actions_port = str(free_port())
    env = {
        "BACKLINE_RASA_PORT": str(free_port()),
        "BACKLINE_ACTIONS_PORT": actions_port,
        "BACKLINE_ACTION_ENDPOINT": f"http://127.0.0.1:{actions_port}/webhook",
        "BACKLINE_TRACKER_DB": str(tmp / "tracker.db"),
        "BACKLINE_BUSINESS_DB_URL": business_url_today,
        "BACKLINE_RASA_TOKEN": TOKEN,
    }
    with running_assistant(MODEL, env, tmp / "backline-run.log") as base_url:
        yield base_url


def say(base_url: str, sender: str, text: str) -> List[Dict]:
    response = requests.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    response.raise_for_status()
    return response.json()


def tracker(base_url: str, sender: str) -> Dict:
    response = requests.get(f"{base_url}/conversations/{sender}/tracker", params={"token": TOKEN}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_order_status_comes_from_the_database(assistant: str, business_url_today: str) -> None:
    with session_scope(business_url_today) as session:
        order = queries.get_order(session, "10023")
    assert order is not None and order.tracking_number

    messages = say(assistant, "rest-order", "where is my order 10023?")

    text = "\n".join(message.get("text", "") for message in messages)
    assert "10023" in text
    assert order.tracking_number in text
    assert order.carrier in text
    state = tracker(assistant, "rest-order")
    assert state["slots"]["order_id"] == "10023"
    assert state["slots"]["customer_tier"] == order.customer.tier
    assert state["latest_message"]["intent"]["name"] == "order_status"


def test_order_number_asked_for_then_answered(assistant: str) -> None:
    first = say(assistant, "rest-ask", "can i get the tracking number for my parcel please")
    assert any("order number" in message.get("text", "").lower() for message in first)

    second = say(assistant, "rest-ask", "99999")
    assert any("99999" in message.get("text", "") for message in second)
    assert tracker(assistant, "rest-ask")["slots"]["order_id"] is None


def test_the_api_refuses_a_wrong_token(assistant: str) -> None:
    response = requests.get(f"{assistant}/conversations/rest-order/tracker", params={"token": "forged"}, timeout=30)
    assert response.status_code == 401
