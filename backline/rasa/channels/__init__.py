"""Customer channels: Rasa 3.6's connectors with the gaps of 3.6 closed (see each module).

Rasa refuses a credentials file that names an unset `${VAR}`, so channels that need
secrets are enabled from the environment: `enabled_credentials` keeps the entries of
credentials.yml whose variables are all set, verbatim (Rasa expands `${VAR}` itself, so
no secret is written anywhere).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Hashable, Mapping

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
