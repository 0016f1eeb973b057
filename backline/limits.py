"""What an HTTP caller may send to any Backline server (customer channels on the Rasa server, the hub):
body size, message length, JSON depth, clean text; refusals as JSON.

Every customer channel (REST, outbox, Telegram, Slack, socket.io) and the hub's dashboard check
bodies here, so a malformed, oversized or wrongly typed body gets a clear 4xx ``{"error": ...}``
and changes nothing (no user message reaches Rasa, nothing is stored):

- ``BACKLINE_MAX_BODY_BYTES`` (default 65,536): the largest body a channel webhook or the
  dashboard accepts (the hub's JSON API: `refuse_oversized`); larger bodies get **413** (a
  channel reads no further than the limit);
- ``BACKLINE_MAX_MESSAGE_CHARS`` (default 4,096, Telegram's own limit): the longest customer
  message; longer ones get **413**;
- ``BACKLINE_MAX_REPLY_CHARS`` (default 4,000): the longest text an expert's reply may carry to
  the customer (`backline.consult.replies`), on every expert channel; a longer one is refused with
  the count, never cut;
- JSON nested deeper than `MAX_DEPTH` levels, text with NUL or unpaired surrogates (neither
  survives PostgreSQL or UTF-8), a field of the wrong type: **400**;
- every other request to the same server (Rasa's HTTP API, socket.io polling): Sanic's
  ``REQUEST_MAX_SIZE``, 1 MiB (`SERVER_MAX_BYTES`) unless ``SANIC_REQUEST_MAX_SIZE`` is set, set
  by the channels' blueprints before the server starts (`cap_server_requests`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, Awaitable, Callable, Literal, Mapping, Optional, Union, overload

from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

ENV_MAX_BODY = "BACKLINE_MAX_BODY_BYTES"
ENV_MAX_MESSAGE = "BACKLINE_MAX_MESSAGE_CHARS"
ENV_SANIC_MAX = "SANIC_REQUEST_MAX_SIZE"
ENV_MAX_REPLY = "BACKLINE_MAX_REPLY_CHARS"
MAX_REPLY_CHARS = 4000
MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 4096
SERVER_MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""Levels of JSON nesting a body may have (metadata included); Rasa copies metadata recursively."""
MAX_ID_CHARS = 255
"""A sender or conversation id: Rasa's SQL tracker store keeps at most 255 characters."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{name} must be a positive number of bytes or characters, not {value!r}")
    return int(value)


def max_body_bytes(env: Optional[Mapping[str, str]] = None) -> int:
    """BACKLINE_MAX_BODY_BYTES, else 65,536."""
    return _positive(os.environ if env is None else env, ENV_MAX_BODY, MAX_BODY_BYTES)


def max_message_chars(env: Optional[Mapping[str, str]] = None) -> int:
    """BACKLINE_MAX_MESSAGE_CHARS, else 4,096."""
    return _positive(os.environ if env is None else env, ENV_MAX_MESSAGE, MAX_MESSAGE_CHARS)


def max_reply_chars(env: Optional[Mapping[str, str]] = None) -> int:
    """BACKLINE_MAX_REPLY_CHARS, else 4,000."""
    return _positive(os.environ if env is None else env, ENV_MAX_REPLY, MAX_REPLY_CHARS)


_JSON_KINDS = {
    dict: "an object",
    list: "an array",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
}


def kind(value: Any) -> str:
    """What ``value`` is, in JSON's words: "an object", "a number", "missing" (None)..."""
    return "missing" if value is None else _JSON_KINDS.get(type(value), f"a {type(value).__name__}")


class Refused(Exception):
    """A request refused with ``status`` (4xx) and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> HTTPResponse:
        return response.json({"error": self.message}, status=self.status)


def too_large(limit: int) -> Refused:
    return Refused(413, f"the body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a streaming route's request (``stream=True``), read up to ``limit`` bytes and kept
    as ``request.body``; `Refused` 413 as soon as it is longer (a declared length is believed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    if request.stream is None:  # not streamed (ASGI, tests): Sanic already read it
        body = request.body or b""
    else:
        chunks, size = [], 0
        while True:
            chunk = await request.stream.read()
            if chunk is None:
                break
            size += len(chunk)
            if size > limit:
                request.stream.keep_alive = False  # what is left of the body is not for us
                raise too_large(limit)
            chunks.append(chunk)
        body = b"".join(chunks)
    if len(body) > limit:
        raise too_large(limit)
    request.body = body
    return body


def refuse_oversized(request: Request, limit: int) -> Optional[HTTPResponse]:
    """A 413 answer when the (already read) body is longer than ``limit``, else None (for middleware)."""
    return too_large(limit).response() if len(request.body or b"") > limit else None


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply ``value`` (parsed JSON) nests, counted up to ``limit + 1`` (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(body: Union[bytes, str], what: str = "a JSON object", name: str = "the body") -> Any:
    """``body`` (the body, or the field ``name``) as JSON nested at most `MAX_DEPTH` deep; `Refused` 400
    otherwise (``what``: what to send instead)."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")  # JSON is UTF-8 (RFC 8259); a byte-order mark is ignored
        except UnicodeDecodeError:
            raise Refused(400, f"{name} is not UTF-8; send {what}") from None
    if not body.strip():
        raise Refused(400, f"{name} is empty; send {what}")
    try:
        value = json.loads(body)
    except RecursionError:
        raise Refused(400, f"{name} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError; an integer of over 4,300 digits
        raise Refused(400, f"{name} is not JSON ({type(error).__name__}); send {what}") from None
    if depth(value) > MAX_DEPTH:
        raise Refused(400, f"{name} nests deeper than {MAX_DEPTH} levels")
    return value


def json_object(body: Union[bytes, str], what: str = "a JSON object", name: str = "the body") -> dict:
    """``body`` as a JSON object; `Refused` 400 otherwise."""
    value = parse_json(body, what, name)
    if not isinstance(value, dict):
        raise Refused(400, f"{name} is {'null' if value is None else kind(value)}, not a JSON object; send {what}")
    return value


@overload
def text_field(
    name: str, value: Any, *, max_chars: Optional[int] = None, required: Literal[True] = True, empty: bool = True
) -> str: ...
@overload
def text_field(
    name: str, value: Any, *, max_chars: Optional[int] = None, required: bool, empty: bool = True
) -> Optional[str]: ...
def text_field(
    name: str, value: Any, *, max_chars: Optional[int] = None, required: bool = True, empty: bool = True
) -> Optional[str]:
    """``value`` when it is a string that storage keeps intact (no NUL, no unpaired surrogate) and not
    longer than ``max_chars``; None when absent and not ``required``. `Refused` 400 or 413."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Refused(400, f"{name} must be a string, not {kind(value)}")
    if not empty and not value.strip():
        raise Refused(400, f"{name} must not be empty")
    if _UNSTORABLE.search(value):
        raise Refused(400, f"{name} contains NUL or an unpaired surrogate")
    if max_chars is not None and len(value) > max_chars:
        raise Refused(413, f"{name} is longer than {max_chars} characters")
    return value


@overload
def id_field(name: str, value: Any, *, required: Literal[True] = True, numbers: bool = False) -> str: ...
@overload
def id_field(name: str, value: Any, *, required: bool, numbers: bool = False) -> Optional[str]: ...
def id_field(name: str, value: Any, *, required: bool = True, numbers: bool = False) -> Optional[str]:
    """A sender, chat or user id: a non-empty string (with ``numbers``, an integer is read as its
    digits: Telegram's ids) of at most `MAX_ID_CHARS` characters. `Refused` 400 otherwise."""
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = text_field(name, value, required=required, empty=False)
    if text is not None and len(text) > MAX_ID_CHARS:
        raise Refused(400, f"{name} is longer than {MAX_ID_CHARS} characters")
    return text


@overload
def object_field(name: str, value: Any, *, required: Literal[True]) -> dict: ...
@overload
def object_field(name: str, value: Any, *, required: bool = False) -> Optional[dict]: ...
def object_field(name: str, value: Any, *, required: bool = False) -> Optional[dict]:
    """``value`` when it is a JSON object (None when absent and not ``required``); `Refused` 400 otherwise."""
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise Refused(400, f"{name} must be a JSON object, not {kind(value)}")
    return value


Handler = Callable[..., Awaitable[Any]]


def guarded(handler: Handler) -> Handler:
    """Answers a `Refused` raised by ``handler`` with its status and ``{"error": message}``."""

    @functools.wraps(handler)
    async def checked(request: Request, *args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(request, *args, **kwargs)
        except Refused as refused:
            return refused.response()

    return checked


def cap_server_requests(blueprint: Blueprint, limit: int = SERVER_MAX_BYTES) -> None:
    """Before the server starts, caps every request to it (Sanic's REQUEST_MAX_SIZE, 100 MB by
    default) at ``limit``, unless SANIC_REQUEST_MAX_SIZE chose a size; never raises a lower cap."""

    @blueprint.listener("before_server_start")
    async def cap(app: Sanic, *_: Any) -> None:
        if not os.environ.get(ENV_SANIC_MAX):
            app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, limit)
