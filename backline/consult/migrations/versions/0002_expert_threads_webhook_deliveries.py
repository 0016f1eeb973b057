"""Expert threads (which consultation a reply in a Slack thread or to a Telegram message is
about) and processed webhook deliveries (de-duplication of Slack and Telegram retries).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expert_threads",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", name="fk_expert_threads_consultation_id"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_expert_threads_message", "expert_threads", ["channel", "address", "message_id"], unique=True)
    op.create_table(
        "webhook_deliveries",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_seen_at", "webhook_deliveries", ["seen_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("expert_threads")
