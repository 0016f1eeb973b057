"""Customer channels: Rasa 3.6's connectors with the gaps of 3.6 closed (see each module).

Rasa refuses a credentials file that names an unset `${VAR}`, so channels that need
secrets are enabled from the environment: `enabled_credentials` keeps the entries of
credentials.yml whose variables are all set, verbatim (Rasa expands `${VAR}` itself, so
no secret is written anywhere).

Delivery de-duplication (Telegram ``update_id``, Slack ``event_id``): `deliveries()` returns
`RedisDeliveries` when BACKLINE_REDIS_URL is set (or the channel's credentials carry
``redis_url``), `RecentDeliveries` otherwise. With several Rasa servers behind a balancer, a
retried delivery may reach another instance than the first attempt did: `RedisDeliveries` claims
each id with ``SET backline:delivery:<channel>:<bot>:<id> 1 NX EX <ttl>`` (24 hours), so exactly one
instance hands it to Rasa. When Redis cannot be reached, the message is not lost: it is processed
(at-least-once; only this process's own memory of recent ids still drops a replay to the same
instance), a warning names the Redis URL without its password, and Redis is not asked again for
10 seconds (each try may block the event loop for up to its 1 s timeout).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections import OrderedDict
from typing import Hashable, Mapping, Optional, Protocol, Union

import redis
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from backline.limits import cap_server_requests
from backline.redact import redact

logger = logging.getLogger(__name__)

ENV_REDIS_URL = "BACKLINE_REDIS_URL"
"""The one Redis of a multi-instance deployment: delivery ids here, socket.io fan-out, the lock store."""
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


class Deliveries(Protocol):
    """What a channel asks about a delivery id."""

    def first(self, key: Hashable) -> bool: ...


DELIVERY_TTL = 24 * 3600
"""Seconds a delivery id is remembered in Redis (Telegram keeps an unconfirmed update for 24 hours)."""
REDIS_TIMEOUT = 1.0
REDIS_RETRY_AFTER = 10.0


class RedisDeliveries:
    """Delivery ids shared by every Rasa instance through Redis, with this process's memory in front.

    `first(key)` claims ``<namespace>:<key>`` with SET NX EX: True for the one instance whose claim
    succeeds. When Redis fails it answers True (the message is processed: at-least-once) and logs a
    warning; Redis is then left alone for `retry_after` seconds.
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        ttl: int = DELIVERY_TTL,
        limit: int = 10_000,
        timeout: float = REDIS_TIMEOUT,
        retry_after: float = REDIS_RETRY_AFTER,
    ) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self.retry_after = retry_after
        self.url = redact(url)  # the password masked, for log lines
        self._local = RecentDeliveries(limit)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._skip_until = 0.0

    def first(self, key: Hashable) -> bool:
        """True the first time any instance offers ``key`` (or when Redis cannot say); remembers it."""
        if not self._local.first(key):
            return False
        if time.monotonic() < self._skip_until:
            logger.debug("Redis skipped after an error: delivery %s processed unchecked", key)
            return True
        try:
            return bool(self._client.set(f"{self.namespace}:{key}", "1", nx=True, ex=self.ttl))
        except redis.RedisError as error:
            self._skip_until = time.monotonic() + self.retry_after
            logger.warning(
                "Redis at %s unreachable (%s: %s): delivery %s processed without asking the other instances "
                "whether they have it (at-least-once); Redis is tried again in %.0f s",
                self.url,
                type(error).__name__,
                error,
                key,
                self.retry_after,
            )
            return True


def deliveries(
    namespace: str, limit: int, redis_url: Optional[str] = None, env: Optional[Mapping[str, str]] = None
) -> Union[RecentDeliveries, RedisDeliveries]:
    """The channel's delivery memory: in Redis under ``namespace`` when `redis_url` (else
    BACKLINE_REDIS_URL) is set, this process's last `limit` ids otherwise."""
    url = redis_url or (os.environ if env is None else env).get(ENV_REDIS_URL)
    return RedisDeliveries(url, namespace, limit=limit) if url else RecentDeliveries(limit)


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
