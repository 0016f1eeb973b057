"""The hub: the expert-facing side (webhooks from Slack and Telegram, dashboard, JSON API, SLA timer).

Webhook parsing is plain Python (`slack_inbound`, `telegram_inbound`, `guidance`, `dedupe`);
the consultation flow (`flow`: replies, the SLA timer, the delivery worker) is one object the Sanic
handlers in `api`, `webhooks` and `dashboard` use; `app` only wires them.
"""
