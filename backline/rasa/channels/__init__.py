"""Customer channels: Rasa 3.6's connectors with the gaps of 3.6 closed (see each module).

Rasa refuses a credentials file that names an unset `${VAR}`, so channels that need
secrets are enabled from the environment: `enabled_credentials` keeps the entries of
credentials.yml whose variables are all set, verbatim (Rasa expands `${VAR}` itself, so
no secret is written anywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections import OrderedDict
from typing import Hashable, Mapping, Optional

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backline.limits import cap_server_requests

_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")
_TOP_LEVEL_KEY = re.compile(r"^(?=[^\s#])", re.MULTILINE)


def webhook_blueprint(name: str) -> Blueprint:
    """A channel's blueprint: requests to the server capped (`cap_server_requests`) and ``GET /``
    answering ``{"status": "ok"}``, as Rasa's own channels do; the channel adds its ``/webhook``."""
    webhook = Blueprint(name)
    cap_server_requests(webhook)

    @webhook.route("/", methods=["GET"])
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return webhook


def enabled_credentials(text: str, environ: Mapping[str, str]) -> str:
    """The credentials file `text` without the channels that name a variable unset or empty in `environ`."""

    def enabled(entry: str) -> bool:
        code = "".join(line for line in entry.splitlines() if not line.lstrip().startswith("#"))
        return all(environ.get(name) for name in _ENV_REFERENCE.findall(code))

    return "".join(entry for entry in _TOP_LEVEL_KEY.split(text) if enabled(entry))


class RecentDeliveries:
    """The last ``limit`` delivery ids (Telegram ``update_id``, Slack ``event_id``) one process saw."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._seen: "OrderedDict[Hashable, None]" = OrderedDict()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` is offered; remembers it."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True


# --- Conversation ownership (issue 13) -------------------------------------------------------
# Conversation ids are namespaced by channel (`web:<id>`, `telegram:<chat id>`, `slack:<...>`), so
# one channel cannot name another's conversation; the REST and outbox channels, for an integrating
# backend, need BACKLINE_CHANNEL_TOKEN and may not use these prefixes. The web chat's session ids
# are issued by the server and signed with the chat secret (shared by Rasa and the hub).

ENV_CHAT_SECRET = "BACKLINE_CHAT_SECRET"
ENV_CHANNEL_TOKEN = "BACKLINE_CHANNEL_TOKEN"
RESERVED_PREFIXES = ("web:", "telegram:", "slack:")
_EXTERNAL_SHORTCUT = re.compile(r"\s*/\s*external_", re.IGNORECASE)
_SESSION = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{64})")


def external_intent(text: object) -> bool:
    """True when ``text`` is a Rasa intent shortcut naming an ``EXTERNAL_*`` intent (any case,
    leading whitespace): only the hub may trigger those, never a customer's text."""
    return isinstance(text, str) and _EXTERNAL_SHORTCUT.match(text) is not None


def chat_secret(env: Optional[Mapping[str, str]] = None) -> str:
    """The web chat's signing secret: BACKLINE_CHAT_SECRET, else one generated once into var/chat_secret."""
    from backline import paths

    return paths.secret(os.environ if env is None else env, ENV_CHAT_SECRET, paths.VAR / "chat_secret")


def channel_token(env: Optional[Mapping[str, str]] = None) -> str:
    """The REST/outbox credential: BACKLINE_CHANNEL_TOKEN, else the one generated into var/channel_token."""
    from backline import paths

    return paths.secret(os.environ if env is None else env, ENV_CHANNEL_TOKEN, paths.VAR / "channel_token")


def _mac(secret: str, random_part: str) -> str:
    return hmac.new(secret.encode(), f"web-session:{random_part}".encode(), hashlib.sha256).hexdigest()


def new_session(secret: str) -> str:
    """A fresh signed web chat session id: ``<random 128-bit hex>.<mac>``."""
    random_part = secrets.token_hex(16)
    return f"{random_part}.{_mac(secret, random_part)}"


def web_conversation(session_id: object, secret: str) -> Optional[str]:
    """``web:<random part>`` for a validly signed session id; None for anything else."""
    match = _SESSION.fullmatch(session_id) if isinstance(session_id, str) else None
    if match is None or not hmac.compare_digest(match.group(2), _mac(secret, match.group(1))):
        return None
    return f"web:{match.group(1)}"


def bearer_ok(header: Optional[str], token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (constant-time)."""
    given = (header or "").removeprefix("Bearer ").strip() if (header or "").startswith("Bearer ") else ""
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


# --- Who is speaking (issue 15) ---------------------------------------------------------------
# A human expert's message (take-over, message, hand-back, close) is a bot message whose metadata
# names its sender: ``sender_name`` (`dispatcher.utter_message(text=..., sender_name="Mara Klein")`;
# Rasa passes bot message metadata to the output channel as keyword arguments). The web chat gets the
# name as structured metadata next to the text as said; text-only channels (Telegram, Slack, REST)
# show it as a "Name: " prefix that their output adds. Both helpers take text with or without the
# prefix, so an action may send either.

SENDER_NAME = "sender_name"


def sender_name(message: Mapping[str, object]) -> Optional[str]:
    """The name a bot message (or an output channel's keyword arguments) gives its sender; None for the AI."""
    name = message.get(SENDER_NAME)
    return (name.strip() or None) if isinstance(name, str) else None


def signed(text: str, name: Optional[str]) -> str:
    """``text`` as "Name: text" when a sender is named (once: text already starting so is left as is)."""
    if not name:
        return text
    prefix = f"{name}: "
    return text if text.startswith(prefix) else prefix + text


def unsigned(text: str, name: Optional[str]) -> str:
    """``text`` without the "Name: " prefix of the named sender (for channels that show the name apart)."""
    prefix = f"{name}: " if name else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def strip_prefix(conversation_id: str, prefix: str) -> str:
    """The channel's own id in a namespaced conversation id (``telegram:42`` -> ``42``)."""
    return conversation_id[len(prefix) :] if conversation_id.startswith(prefix) else conversation_id
