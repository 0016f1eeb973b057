"""Consultations: experts consulted behind the AI.

`store` keeps consultations, their messages and the audit trail (SQLAlchemy, Alembic
migrations); `context` builds the context package an expert reads, with masking.
Pure Python: nothing here imports Rasa.
"""
