"""socket.io customer channel: Rasa 3.6's, with Redis fan-out across instances.

With `redis_url` in its credentials, or BACKLINE_SOCKETIO_REDIS_URL in the environment, the
server uses python-socketio's AsyncRedisManager: an emit on any Rasa instance reaches the client
wherever it is connected, so proactive messages (`trigger_intent`) work behind a load balancer,
and `get_output_channel()` returns a Redis-backed output channel even where no socket.io server
runs. Without Redis it behaves like Rasa's.

It also fixes session persistence under python-socketio 5.x, whose `enter_room` is a coroutine
that Rasa 3.6 never awaits: the client never joined its session's room and got no replies.
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels import socketio as rasa_socketio
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint
from socketio import AsyncRedisManager

ENV_REDIS_URL = "BACKLINE_SOCKETIO_REDIS_URL"


class SocketIOInput(rasa_socketio.SocketIOInput):
    """Rasa's socket.io channel; `redis_url` shares rooms and emits between instances."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = dict(credentials or {})
        redis_url = credentials.pop("redis_url", None) or os.environ.get(ENV_REDIS_URL) or None
        channel = super().from_credentials(credentials)
        channel.redis_url = redis_url
        return channel

    def __init__(self, *args: Any, redis_url: Optional[Text] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_url = redis_url
        self._redis_writer: Optional[AsyncRedisManager] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.sio is None and self.redis_url:
            if self._redis_writer is None:
                self._redis_writer = AsyncRedisManager(self.redis_url, write_only=True)
            return rasa_socketio.SocketIOOutput(self._redis_writer, self.bot_message_evt)
        return super().get_output_channel()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        if self.redis_url:
            sio.manager = AsyncRedisManager(self.redis_url)
            sio.manager.set_server(sio)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            session_id = (data or {}).get("session_id") or uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        return webhook
