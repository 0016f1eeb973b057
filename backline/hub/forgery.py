"""Cross-site request forgery defences for the dashboard's POSTs (`backline.hub.dashboard`).

A page of another site can make an operator's browser POST to the hub with the session cookie
(SameSite=Lax stops only some of it). Every state-changing dashboard request therefore passes:

- the origin check: its ``Origin`` header (else its ``Referer``'s origin) is the hub's own origin,
  as the browser addressed it (``Host``), or one of BACKLINE_DASHBOARD_ORIGIN (a TLS proxy's public
  origin). A POST with neither header, or ``Origin: null``, is refused: browsers send ``Origin``
  with every POST.
- the CSRF token (`backline.hub.operators.csrf_token`), in an ``X-CSRF-Token`` header, tied to the
  session; the dashboard's script reads it from ``GET /dashboard/api/session``. Another site can
  neither read it nor set a custom header without a CORS preflight the hub never grants.
- a body, when there is one, only as ``Content-Type: application/json`` (415 otherwise): a
  text/plain "simple request" form is never parsed as JSON.

The sign-in form is a plain form POST without a session: it gets the origin check only.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable, Optional

from sanic.request import Request

from backline.hub.operators import normal_origin

CSRF_HEADER = "X-CSRF-Token"
JSON_TYPE = "application/json"


def origin_of(url: Optional[str]) -> Optional[str]:
    """The origin of an ``Origin`` or ``Referer`` value, None for ``null`` or anything unreadable."""
    if not url or url.strip() == "null":
        return None
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return normal_origin(parts.scheme, parts.hostname, port)


def own_origin(request: Request) -> Optional[str]:
    """The origin the browser used to reach the hub: the request's scheme and Host."""
    return origin_of(f"{request.scheme}://{request.host}")


def sender_origin(request: Request) -> Optional[str]:
    """Where the request came from: ``Origin``, else the origin of ``Referer``."""
    if request.headers.get("origin") is not None:
        return origin_of(request.headers.get("origin"))
    return origin_of(request.headers.get("referer"))


def same_origin(request: Request, allowed: Iterable[str] = ()) -> bool:
    """Whether the request was sent by a page of the hub itself (or of an ``allowed`` origin)."""
    sender = sender_origin(request)
    return sender is not None and (sender == own_origin(request) or sender in set(allowed))


def is_json(request: Request) -> bool:
    """Whether the request says its body is JSON (``application/json``, any parameters)."""
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower() == JSON_TYPE
