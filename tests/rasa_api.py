"""A loopback server that speaks the part of Rasa's HTTP API the hub uses (trigger_intent with token
auth) and behaves like the project's action_expert_update: one bot message per delivery id."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

from tests.expert_apis import Answer, Recorded, RecordingApi

TOKEN = "rasa-api-token-not-to-be-leaked"


class FakeRasa(RecordingApi):
    """POST /conversations/{id}/trigger_intent?token=…: runs the intent like action_expert_update does:
    a bot message carrying the delivery id, unless one already carries it (then silence).
    ``hang_after_apply``: that many next requests are applied and then answered too late;
    ``no_action_server``: that many next requests are applied without a bot message."""

    def __init__(self) -> None:
        self.events: Dict[str, List[Dict[str, Any]]] = {}
        self.hang_after_apply = 0
        self.no_action_server = 0
        self.apply_lock = threading.Lock()
        super().__init__(self._answer)

    def shown(self, conversation_id: str) -> List[str]:
        """The delivery ids of the bot messages the customer saw, in order."""
        return [e["metadata"]["delivery_id"] for e in self.events.get(conversation_id, []) if e["event"] == "bot"]

    def _answer(self, record: Recorded) -> Answer:
        if f"token={TOKEN}" not in record.path:
            return 401, {"message": "User is not authenticated."}, {}
        conversation = record.path.split("/")[2]
        delivery_id = record.payload["entities"]["delivery_id"]
        with self.apply_lock:
            events = self.events.setdefault(conversation, [])
            events.append({"event": "user", "parse_data": {"intent": {"name": record.payload["name"]}}})
            skip_action = self.no_action_server > 0
            self.no_action_server -= skip_action
            if not skip_action and not any(e.get("metadata", {}).get("delivery_id") == delivery_id for e in events):
                events.append(
                    {"event": "bot", "text": f"reply {delivery_id}", "metadata": {"delivery_id": delivery_id}}
                )
            hang = self.hang_after_apply > 0
            self.hang_after_apply -= hang
            answer = {"tracker": {"sender_id": conversation, "events": list(events)}, "messages": []}
        if hang:
            time.sleep(1.5)
        return 200, answer, {}
