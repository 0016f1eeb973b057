"""The action server (`python -m backline actions`): rasa_sdk's app, bound to loopback by default
and, when BACKLINE_ACTION_TOKEN is set, answering its webhook only to callers that present it.

Rasa's `rasa run actions` listens on every interface (SANIC_HOST, default 0.0.0.0) with no
authentication, and anyone who reaches it can run any action with a tracker of their choosing.
Here the interface is BACKLINE_ACTIONS_HOST (default 127.0.0.1) and every request but ``GET /health``
needs ``?token=<BACKLINE_ACTION_TOKEN>`` (Rasa's EndpointConfig sends endpoints.yml's
``action_endpoint.token`` as that query parameter), compared in constant time; 401 ``{"error": ...}``
otherwise. `backline run` always sets a token (generated once into var/action_token).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
from typing import List, Optional

from sanic import response
from sanic.request import Request

ENV_HOST = "BACKLINE_ACTIONS_HOST"
ENV_PORT = "BACKLINE_ACTIONS_PORT"
ENV_TOKEN = "BACKLINE_ACTION_TOKEN"
OPEN_PATHS = ("/health",)


def token_ok(given: Optional[str], token: str) -> bool:
    """Whether ``given`` is ``token`` (constant-time)."""
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())  # type: ignore[union-attr]


def create_app(actions: str = "actions", token: Optional[str] = None, cors: Optional[str] = None):  # type: ignore[no-untyped-def]
    """rasa_sdk's app for the package ``actions``; with ``token``, a middleware refusing other callers."""
    from rasa_sdk.endpoint import create_app as sdk_app

    app = sdk_app(actions, cors_origins=cors or [])

    if token:

        @app.middleware("request")
        async def require_token(request: Request):  # type: ignore[no-untyped-def]
            if request.path in OPEN_PATHS:
                return None
            if not token_ok(request.args.get("token"), token):
                return response.json({"error": "action server token required (?token=)"}, status=401)
            return None

    return app


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="backline actions", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", default="actions", help="the package of the actions")
    parser.add_argument("--host", default=os.environ.get(ENV_HOST) or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PORT) or 5055))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    token = (os.environ.get(ENV_TOKEN) or "").strip() or None
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning(
            "action server on %s without BACKLINE_ACTION_TOKEN: anyone who reaches it can run actions", args.host
        )
    app = create_app(args.actions, token)
    app.run(args.host, args.port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
