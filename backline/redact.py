"""Keep secrets out of error messages, log lines, audit entries and API answers.

`redact(text)` masks what looks like a credential in free text: ``token=`` / ``secret=`` /
``password=`` / ``key=`` query parameters, ``Bearer`` and ``Basic`` credentials, Telegram bot
tokens in Bot API URLs (``/bot<id>:<secret>/``), Slack tokens (``xox…``), passwords in URLs
(``scheme://user:pass@host``), and every secret value `register`-ed by the process (the values
of ``BACKLINE_*`` variables whose names say TOKEN, SECRET or PASSWORD, see `register_env`).
`install_log_filter()` applies it to every log record the process emits.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Iterable, Mapping, Optional, Set

MASK = "***"
_PATTERNS = (
    (
        re.compile(r"(?i)([?&;](?:[a-z_]*token|[a-z_]*secret|password|passwd|api_?key|key|signature)=)[^&#\s'\"]+"),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + MASK),
    (re.compile(r"/bot\d+:[A-Za-z0-9_-]+"), "/bot" + MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]+@"), r"\1" + MASK + "@"),  # user may be empty
)
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD)")
_registered: Set[str] = set()
_lock = threading.Lock()


def register(*values: str) -> None:
    """Mask these exact values wherever `redact` sees them (values shorter than 6 characters are
    ignored: masking them would mangle ordinary words)."""
    with _lock:
        _registered.update(v for v in values if isinstance(v, str) and len(v) >= 6)


def register_env(env: Mapping[str, str]) -> None:
    """Register the values of ``BACKLINE_*`` / ``RASA_*`` variables named like a secret."""
    register(
        *(
            value
            for name, value in env.items()
            if name.startswith(("BACKLINE_", "RASA_")) and SECRET_NAME.search(name) and value
        )
    )


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with credentials masked (see the module docstring)."""
    if not isinstance(text, str):
        text = str(text)
    with _lock:
        values = sorted(
            _registered.union(v for v in extra if isinstance(v, str) and len(v) >= 6), key=len, reverse=True
        )
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and the exception text) of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(logger: Optional[logging.Logger] = None) -> None:
    """Redact every record that reaches the root logger's handlers (and ``logger``'s, when given)."""
    targets = [logging.getLogger()] + ([logger] if logger is not None else [])
    for target in targets:
        for handler in target.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
