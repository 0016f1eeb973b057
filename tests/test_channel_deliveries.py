"""Customer-channel de-duplication across Rasa instances: two Telegram webhooks (and two Slack
ones) in real Sanic apps sharing one real redis-server hand a delivery to Rasa exactly once; with
Redis down each instance still processes it (at-least-once) and warns without the password."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Dict, Iterator, List

import pytest
import redis
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from backline.rasa.channels import ENV_REDIS_URL, RecentDeliveries, RedisDeliveries, deliveries
from backline.rasa.channels.slack import SlackInput
from backline.rasa.channels.socketio import ENV_REDIS_URL as ENV_SOCKETIO_REDIS_URL
from backline.rasa.channels.socketio import SocketIOInput
from backline.rasa.channels.telegram import TelegramInput
from backline.redact import redact
from tests.channel_servers import FakeBotApi, LiveApp, redis_server
from tests.expert_apis import FakeSlack
from tests.servers import free_port
from tests.test_channel_slack import DM, post_event, wait_for
from tests.test_channel_slack import SECRET as SLACK_SECRET
from tests.test_channel_telegram import TOKEN, Webhook, update

DOWN_PASSWORD = "s3cret-redis-pass"


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_url(shared_redis: str) -> str:
    redis.Redis.from_url(shared_redis).flushdb()
    return shared_redis


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    api = FakeBotApi(TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def telegram_pair(bot_api: FakeBotApi) -> Iterator[List[Webhook]]:
    """Two Telegram webhooks (two Rasa servers) built from the environment as `rasa run` builds them."""
    hooks: List[Webhook] = []
    yield hooks
    for hook in hooks:
        hook.live.stop()


def two_telegram_instances(hooks: List[Webhook], bot_api: FakeBotApi) -> List[Webhook]:
    hooks.extend([Webhook(bot_api), Webhook(bot_api)])
    return hooks


def texts(*hooks: Webhook) -> List[List[str]]:
    return [[m.text for m in hook.received] for hook in hooks]


def test_the_same_update_on_two_instances_reaches_rasa_once(
    redis_url: str, telegram_pair: List[Webhook], bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_REDIS_URL, redis_url)
    a, b = two_telegram_instances(telegram_pair, bot_api)

    answers = [a.post(update(10, "hello")), b.post(update(10, "hello")), a.post(update(10, "hello"))]

    assert [(r.status_code, r.text) for r in answers] == [(200, "success"), (200, "duplicate"), (200, "duplicate")]
    assert texts(a, b) == [["hello"], []]
    assert len(bot_api.calls("sendMessage")) == 1
    client = redis.Redis.from_url(redis_url)
    key = f"backline:delivery:telegram:{TOKEN.split(':')[0]}:10"
    assert client.keys("backline:delivery:*") == [key.encode()]
    assert 86_000 < client.ttl(key) <= 86_400


def test_distinct_updates_both_pass_whichever_instance_gets_them(
    redis_url: str, telegram_pair: List[Webhook], bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_REDIS_URL, redis_url)
    a, b = two_telegram_instances(telegram_pair, bot_api)

    assert [a.post(update(11, "one")).text, b.post(update(12, "two")).text, b.post(update(11, "one")).text] == [
        "success",
        "success",
        "duplicate",
    ]
    assert texts(a, b) == [["one"], ["two"]]


def test_with_redis_down_each_instance_processes_the_update_once_and_warns_without_the_password(
    telegram_pair: List[Webhook], bot_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://:{DOWN_PASSWORD}@127.0.0.1:{free_port()}/0"
    monkeypatch.setenv(ENV_REDIS_URL, down)
    a, b = two_telegram_instances(telegram_pair, bot_api)

    with caplog.at_level(logging.WARNING, logger="backline.rasa.channels"):
        answers = [a.post(update(20, "still here?")), b.post(update(20, "still here?")), a.post(update(20, "x"))]

    assert [r.text for r in answers] == ["success", "success", "duplicate"]
    assert texts(a, b) == [["still here?"], ["still here?"]]
    warnings = [r.getMessage() for r in caplog.records if r.name == "backline.rasa.channels"]
    assert len(warnings) == 2  # one per instance; the replay to a was caught by a's own memory
    assert all("unreachable" in w and "at-least-once" in w for w in warnings)
    assert all(f"redis://:***@127.0.0.1:{down.rsplit(':', 1)[1].split('/')[0]}/0" in w for w in warnings)
    assert DOWN_PASSWORD not in caplog.text


def test_without_a_redis_url_the_memory_is_the_process_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_REDIS_URL, raising=False)
    assert isinstance(deliveries("backline:delivery:x", 5), RecentDeliveries)
    assert isinstance(deliveries("backline:delivery:x", 5, "redis://127.0.0.1:1/0"), RedisDeliveries)
    assert isinstance(deliveries("backline:delivery:x", 5, env={ENV_REDIS_URL: "redis://h/0"}), RedisDeliveries)
    channel = TelegramInput.from_credentials({"access_token": TOKEN, "redis_url": "redis://127.0.0.1:1/0"})
    assert isinstance(channel._seen, RedisDeliveries)  # type: ignore[attr-defined]
    assert channel._seen.namespace == "backline:delivery:telegram:123456"  # type: ignore[attr-defined]
    assert isinstance(TelegramInput(TOKEN)._seen, RecentDeliveries)


def test_redis_is_left_alone_for_a_while_after_an_error(caplog: pytest.LogCaptureFixture) -> None:
    memory = RedisDeliveries(f"redis://127.0.0.1:{free_port()}/0", "backline:delivery:t", retry_after=60)
    with caplog.at_level(logging.WARNING, logger="backline.rasa.channels"):
        assert [memory.first(1), memory.first(2), memory.first(1)] == [True, True, False]
    assert len([r for r in caplog.records if r.name == "backline.rasa.channels"]) == 1


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:pw-123456@10.0.0.5:6380/0", "redis://:***@10.0.0.5:6380/0"),
        ("rediss://backline:pw-123456@redis.internal/2", "rediss://backline:***@redis.internal/2"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_the_logged_url_never_shows_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown


# --- Slack --------------------------------------------------------------------------------------------


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    api = FakeSlack("xoxb-customers")
    api.start()
    yield api
    api.stop()


class SlackInstance:
    """A customer SlackInput in its own Sanic app (one Rasa server), built from credentials."""

    def __init__(self, slack_api: FakeSlack, **credentials: str) -> None:
        self.received: List[UserMessage] = []
        channel = SlackInput.from_credentials(
            {
                "slack_token": "xoxb-customers",
                "slack_signing_secret": SLACK_SECRET,
                "api_url": f"{slack_api.url}/api",
                **credentials,
            }
        )

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)
            await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

        app = Sanic(f"slack-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/slack")
        self.live = LiveApp(app).start()
        self.url = f"{self.live.url}/webhooks/slack/webhook"


@pytest.fixture
def slack_pair(slack_api: FakeSlack, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[List[SlackInstance]]:
    monkeypatch.delenv(ENV_REDIS_URL, raising=False)
    pair = [SlackInstance(slack_api, redis_url=redis_url), SlackInstance(slack_api, redis_url=redis_url)]
    yield pair
    for instance in pair:
        instance.live.stop()


def test_a_slack_retry_reaching_the_other_instance_is_dropped(
    slack_pair: List[SlackInstance], slack_api: FakeSlack, redis_url: str
) -> None:
    a, b = slack_pair
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    assert post_event(a.url, DM, "EvShared").status_code == 200
    assert post_event(b.url, DM, "EvShared", **retry).status_code == 200
    assert post_event(b.url, dict(DM, text="and another thing"), "EvOther").status_code == 200

    wait_for(lambda: len(slack_api.posts()) == 2)
    time.sleep(0.3)
    assert [[m.text for m in i.received] for i in (a, b)] == [["where is my order 10023?"], ["and another thing"]]
    keys = sorted(k.decode() for k in redis.Redis.from_url(redis_url).keys("backline:delivery:slack:*"))
    assert [k.rsplit(":", 2)[1:] for k in keys] == [["event", "EvOther"], ["event", "EvShared"]]


# --- socket.io: one name for one Redis ------------------------------------------------------------------


def test_socketio_falls_back_to_the_shared_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    def url(credentials: Dict[str, Any]) -> Any:
        return SocketIOInput.from_credentials(credentials).redis_url

    monkeypatch.delenv(ENV_SOCKETIO_REDIS_URL, raising=False)
    monkeypatch.setenv(ENV_REDIS_URL, "redis://shared:6379/0")
    assert url({}) == "redis://shared:6379/0"

    monkeypatch.setenv(ENV_SOCKETIO_REDIS_URL, "redis://socketio-only:6379/0")
    assert url({}) == "redis://socketio-only:6379/0"
    assert url({"redis_url": "redis://from-credentials:6379/0"}) == "redis://from-credentials:6379/0"

    monkeypatch.delenv(ENV_SOCKETIO_REDIS_URL)
    monkeypatch.delenv(ENV_REDIS_URL)
    assert url({}) is None
