"""The delivery outbox: every expert reply and delay notice waits here, committed with what caused
it, until Rasa confirms the customer's conversation got it (`backline.consult.outbox`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", name="fk_deliveries_consultation_id"),
            nullable=False,
        ),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("notice", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("delivered_at", sa.DateTime()),
        sa.Column("last_error", sa.Text()),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'undeliverable')", name="ck_deliveries_status"),
    )
    op.create_index("ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_consultation_id", "deliveries", ["consultation_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
