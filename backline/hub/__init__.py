"""The hub: the expert-facing side (webhooks from Slack and Telegram, dashboard, JSON API, SLA timer).

Webhook parsing is plain Python (`slack_inbound`, `telegram_inbound`, `guidance`, `dedupe`);
the Sanic handlers in `app` are thin adapters around it.
"""
