"""Escalation limits: how many consultations one conversation, or one client address, may open per hour.

A conversation that escalates again and again (a script, a customer pasting the same complaint)
must not fill a queue with copies or page an expert every minute, and one address must not open a
case from every fresh web chat session. A conversation has one open case at a time: escalating
again while it is open adds to that case (`backline.consult.service`), so the limits count the
cases created, i.e. escalations after the previous case was closed. Two limits, both per rolling hour:

- ``BACKLINE_ESCALATIONS_PER_CONVERSATION`` (default 3): past it, no new case; the customer's
  latest message is added to the conversation's latest (closed) case (nothing is lost) and they are
  told so;
- ``BACKLINE_ESCALATIONS_PER_ADDRESS`` (default 10): web chat escalations from one client address
  (the socket.io channel stamps a keyed hash of it, never the address, into the message metadata,
  see `CLIENT_KEY`); past it, no new case and the customer is told to write to the support address.

``0`` switches a limit off. Pure Python over the store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional

if TYPE_CHECKING:
    from backline.consult.records import Consultation

ENV_PER_CONVERSATION = "BACKLINE_ESCALATIONS_PER_CONVERSATION"
ENV_PER_ADDRESS = "BACKLINE_ESCALATIONS_PER_ADDRESS"
PER_CONVERSATION = 3
PER_ADDRESS = 10
WINDOW_SECONDS = 3600
CLIENT_KEY = "backline_client"
"""The metadata key under which a customer channel puts the client's hashed address (it replaces
any value the client sent)."""


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{name} must be a whole number of escalations per hour (0: no limit), not {value!r}")
    return int(value)


@dataclass(frozen=True)
class EscalationLimits:
    """Escalations allowed per rolling hour (0: unlimited)."""

    per_conversation: int = PER_CONVERSATION
    per_address: int = PER_ADDRESS

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "EscalationLimits":
        env = os.environ if env is None else env
        return cls(_count(env, ENV_PER_CONVERSATION, PER_CONVERSATION), _count(env, ENV_PER_ADDRESS, PER_ADDRESS))


class EscalationLimited(Exception):
    """No new consultation: ``text`` is what the customer is told; ``consultation`` the case their
    message went to instead (None when the address limit refused it)."""

    def __init__(self, text: str, consultation: Optional["Consultation"] = None, limit: str = "conversation") -> None:
        super().__init__(text)
        self.text = text
        self.consultation = consultation
        self.limit = limit


def client_key(address: str, secret: str) -> str:
    """A keyed hash of a client address (hex, 32 characters): comparable, not reversible without the secret."""
    return hmac.new(secret.encode(), f"client:{address}".encode(), hashlib.sha256).hexdigest()[:32]
