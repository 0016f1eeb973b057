"""Rasa's HTTP API as the hub uses it: resume a customer's conversation with an external intent."""
from __future__ import annotations

from typing import Any, Dict, Mapping

import requests


class RasaError(RuntimeError):
    """Rasa refused or could not be reached; the message says which."""


class RasaClient:
    """``base_url``: the Rasa server (API enabled); ``token``: its ``--auth-token``."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()

    def trigger_intent(
        self, conversation_id: str, intent: str, entities: Mapping[str, Any], output_channel: str = "latest"
    ) -> Dict[str, Any]:
        """POST /conversations/{id}/trigger_intent: the bot runs the intent's rule and answers on the
        customer's latest channel; returns Rasa's answer (tracker and the messages it produced)."""
        url = f"{self.base_url}/conversations/{requests.utils.quote(conversation_id, safe='')}/trigger_intent"
        try:
            response = self.session.post(
                url,
                params={"output_channel": output_channel, "token": self.token},
                json={"name": intent, "entities": dict(entities)},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise RasaError(f"cannot reach Rasa at {self.base_url}: {error}") from error
        if response.status_code != 200:
            raise RasaError(f"Rasa answered {response.status_code} to {intent} for {conversation_id}: "
                            f"{response.text[:300]}")
        return response.json()
