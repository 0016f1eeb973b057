"""Consultations: experts consulted behind the AI.

`store` keeps consultations, their messages and the audit trail (SQLAlchemy, Alembic
migrations), made of `transactions`, `transitions`, `threads` (webhook keys, expert threads),
`workload` and `rows` over `records`, `schema` and `database`; `masking` keeps card numbers and
credentials out of it and needs nothing else of the project. `context` builds the context package an
expert reads, from `account` (the one part that reads the business database), `grounds` (why, and the
next step) and `render` (Slack, dashboard, e-mail, Telegram). Pure Python: nothing here imports Rasa.
"""
