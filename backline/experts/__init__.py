"""Expert channels behind one interface: Slack, Telegram, e-mail and the dashboard.

`ExpertChannel.send(Notification) -> Delivery` makes one attempt; `deliver` adds retries with
backoff (Retry-After honoured), fallback to the next channel and person, and the dashboard as the
last resort. Pure Python: nothing here imports Rasa.

Environment: BACKLINE_SLACK_BOT_TOKEN, BACKLINE_SLACK_API_URL; BACKLINE_TELEGRAM_BOT_TOKEN,
BACKLINE_TELEGRAM_API_URL; BACKLINE_SMTP_HOST, _PORT, _USER, _PASSWORD, _FROM, _STARTTLS, _REPLY_TO.
"""

from backline.experts.base import (
    ACTIONS,
    BRIEF_FIELDS,
    MODES,
    ChannelConfigError,
    ChannelError,
    Delivery,
    ExpertChannel,
    Notification,
    render_text,
)
from backline.experts.dashboard import DashboardChannel
from backline.experts.delivery import (
    DeliveryFailed,
    DeliveryResult,
    FailedAttempt,
    RetryPolicy,
    Route,
    UnavailableChannel,
    channels_from_env,
    deliver,
    routes_for,
)
from backline.experts.email import EmailChannel
from backline.experts.slack import SlackChannel
from backline.experts.telegram import TelegramChannel, parse_callback_data

__all__ = [
    "ACTIONS",
    "BRIEF_FIELDS",
    "MODES",
    "ChannelConfigError",
    "ChannelError",
    "DashboardChannel",
    "Delivery",
    "DeliveryFailed",
    "DeliveryResult",
    "EmailChannel",
    "ExpertChannel",
    "FailedAttempt",
    "Notification",
    "RetryPolicy",
    "Route",
    "SlackChannel",
    "TelegramChannel",
    "UnavailableChannel",
    "channels_from_env",
    "deliver",
    "parse_callback_data",
    "render_text",
    "routes_for",
]
