"""Customer channels: Rasa 3.6's connectors with the gaps of 3.6 closed (see each module).

Rasa refuses a credentials file that names an unset `${VAR}`, so channels that need
secrets are enabled from the environment: `enabled_credentials` keeps the entries of
credentials.yml whose variables are all set, verbatim (Rasa expands `${VAR}` itself, so
no secret is written anywhere).
"""
from __future__ import annotations

import re
from typing import Mapping

_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")
_TOP_LEVEL_KEY = re.compile(r"^(?=[^\s#])", re.MULTILINE)


def enabled_credentials(text: str, environ: Mapping[str, str]) -> str:
    """The credentials file `text` without the channels that name a variable unset or empty in `environ`."""

    def enabled(entry: str) -> bool:
        code = "".join(line for line in entry.splitlines() if not line.lstrip().startswith("#"))
        return all(environ.get(name) for name in _ENV_REFERENCE.findall(code))

    return "".join(entry for entry in _TOP_LEVEL_KEY.split(text) if enabled(entry))
