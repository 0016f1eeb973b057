"""Helpers for the customer-channel tests: a Sanic app served from a thread, a throwaway Redis,
and FakeTelegram with the Bot API methods the customer channel calls besides sendMessage."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List

from sanic import Sanic

from tests.expert_apis import Answer, FakeTelegram, Recorded
from tests.servers import free_port


class LiveApp:
    """A Sanic app listening on 127.0.0.1, run by its own event loop in a daemon thread."""

    def __init__(self, app: Sanic) -> None:
        Sanic.test_mode = True  # as sanic-testing does: lets several apps start in one process
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "LiveApp":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(timeout=30)
        return self

    async def _serve(self) -> None:
        self.server = await self.app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self.server.startup()
        await self.server.before_start()
        await self.server.after_start()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Runs a coroutine on the app's loop (as a request handler would) and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.server.before_stop()
            await self.server.close()
            await self.server.after_stop()

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port with no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found: run `make system-packages`")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="backline-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


class FakeBotApi(FakeTelegram):
    """FakeTelegram that also answers getMe (as @username), setWebhook, answerCallbackQuery and sendPhoto."""

    def __init__(self, token: str, username: str = "kestrel_support_bot") -> None:
        self.username = username
        super().__init__(token)

    def _answer(self, record: Recorded) -> Answer:
        prefix = f"/bot{self.token}/"
        method = record.path[len(prefix) :] if record.path.startswith(prefix) else ""
        results = {
            "getMe": {"id": 4242, "is_bot": True, "first_name": "Kestrel", "username": self.username},
            "setWebhook": True,
            "answerCallbackQuery": True,
            "sendPhoto": {"message_id": 1, "chat": {"id": record.payload.get("chat_id")}},
        }
        if method in results:
            return 200, {"ok": True, "result": results[method]}, {}
        return super()._answer(record)

    def calls(self, method: str) -> List[Dict[str, Any]]:
        """Payloads of the calls to one Bot API method, in order."""
        return [r.payload for r in self.requests if r.path.endswith(f"/{method}")]
