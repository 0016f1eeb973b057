"""Escalations per client address: each consultation keeps the hashed address it came from.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("client_key", sa.String(64)))
        batch.create_index("ix_consultations_client_key_created_at", ["client_key", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.drop_index("ix_consultations_client_key_created_at")
        batch.drop_column("client_key")
