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

_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")
_TOP_LEVEL_KEY = re.compile(r"^(?=[^\s#])", re.MULTILINE)


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
