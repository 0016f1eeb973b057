"""Rasa's HTTP API as the hub uses it: resume a customer's conversation with an external intent.

Errors name the Rasa server and what went wrong, never the API token (it travels as the ``token``
query parameter, which Rasa's token auth requires, and would otherwise show in the URL).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Mapping, Optional

import requests

from backline.redact import redact

PATH_SAFE = ":/@!$&'()*+,;=~"
"""Characters of a conversation id sent as they are: Rasa's route (``<conversation_id:path>``) does not
percent-decode, so ``telegram:42`` must arrive as ``telegram:42``, not ``telegram%3A42``."""


def conversation_path(conversation_id: str) -> str:
    """``conversation_id`` for Rasa's ``/conversations/<id>/...`` routes."""
    return requests.utils.quote(conversation_id, safe=PATH_SAFE)


class RasaError(RuntimeError):
    """Rasa refused or could not be reached; the message says which (without the token)."""


class RasaClient:
    """``base_url``: the Rasa server (API enabled); ``token``: its ``--auth-token``."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        """A connection pool per thread (the worker and the API's immediate attempts run in threads)."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: Mapping[str, Any],
        output_channel: str = "latest",
        *,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """POST /conversations/{id}/trigger_intent: the bot runs the intent's rule and answers on the
        customer's latest channel; returns Rasa's answer: the whole tracker (every event, so that a
        delivery can be confirmed) and the messages it produced."""
        url = f"{self.base_url}/conversations/{conversation_path(conversation_id)}/trigger_intent"
        try:
            response = self.session.post(
                url,
                params={"output_channel": output_channel, "include_events": "ALL", "token": self.token},
                json={"name": intent, "entities": dict(entities)},
                timeout=timeout or self.timeout,
            )
        except requests.Timeout:
            raise RasaError(
                f"Rasa at {self.base_url} did not answer {intent} within {timeout or self.timeout:g} s"
            ) from None
        except requests.RequestException as error:
            raise RasaError(f"cannot reach Rasa at {self.base_url}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise RasaError(
                redact(f"Rasa answered {response.status_code} to {intent}: {response.text[:300]}", [self.token])
            )
        try:
            return response.json()
        except ValueError:
            raise RasaError(f"Rasa answered {intent} with a body that is not JSON") from None
