"""Security headers on every hub response (a Sanic response middleware, `install`).

- ``Content-Security-Policy``: scripts, styles, images, fonts and connections from the hub itself
  only (no inline script or style: the pages load theirs from ``/dashboard/static`` and
  ``/chat/static``), no plugins, no ``<base>``, forms only to the hub, and ``frame-ancestors
  'none'``. The chat's own policy (``/chat``) may also connect to the Rasa server's socket.io
  endpoint (HTTP long-polling and WebSocket), wherever `backline.hub.webchat.socket_url` says the
  browser reaches it; nothing else.
- ``X-Frame-Options: DENY`` (older browsers), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (no URL of the hub, which may name a case, leaves for another
  site; the hub's own POSTs keep a Referer for the origin check), ``Cross-Origin-Opener-Policy:
  same-origin``.
- ``Cache-Control: no-store`` on the dashboard's pages and data, the sign-in page, the JSON API and
  the chat's state: nothing with case data stays in a browser's or a proxy's cache.
"""

from __future__ import annotations

import urllib.parse
from typing import Callable, Optional

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse

BASE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
FIXED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NO_STORE_PREFIXES = ("/api/", "/dashboard", "/chat/state/", "/chat/config.json")
CACHEABLE_PREFIXES = ("/dashboard/static/",)


def policy(connect: str = "") -> str:
    """The Content-Security-Policy, with ``connect`` added to ``connect-src``."""
    parts = dict(BASE_POLICY)
    if connect:
        parts["connect-src"] = f"'self' {connect}"
    return "; ".join(f"{name} {value}" for name, value in parts.items())


def socket_sources(url: Optional[str]) -> str:
    """The CSP sources of a socket.io server at ``url``: its origin over HTTP(S) and WS(S)."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    secure = parts.scheme == "https"
    return f"{parts.scheme}://{parts.netloc} {'wss' if secure else 'ws'}://{parts.netloc}"


def no_store(path: str) -> bool:
    """Whether a response for ``path`` must not be cached."""
    return path.startswith(NO_STORE_PREFIXES) and not path.startswith(CACHEABLE_PREFIXES)


def apply(request: Request, response: HTTPResponse, chat_socket: Callable[[Request], Optional[str]]) -> None:
    """Set the headers on ``response`` (the answer to ``request``)."""
    chat = request.path == "/chat" or request.path.startswith("/chat/")
    response.headers["Content-Security-Policy"] = policy(socket_sources(chat_socket(request)) if chat else "")
    for name, value in FIXED.items():
        response.headers[name] = value
    if no_store(request.path):
        response.headers["Cache-Control"] = "no-store"


def install(app: Sanic, chat_socket: Callable[[Request], Optional[str]] = lambda _: None) -> None:
    """Add the headers to every response of ``app``; ``chat_socket(request)``: the URL at which the
    browser reaches Rasa's socket.io for the chat (None: the chat may connect to the hub only)."""

    @app.on_response
    async def security_headers(request: Request, response: HTTPResponse) -> None:
        apply(request, response, chat_socket)
