"""Governance: verdicts on escalations, overrides of AI drafts, satisfaction answers, QA reviews.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _case(name: str, primary_key: bool = True) -> sa.Column:
    return sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", name=f"fk_{name}_consultation_id"),
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "verdicts",
        _case("verdicts"),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("verdict IN ('needed', 'not_needed', 'too_late')", name="ck_verdicts_verdict"),
    )
    op.create_index("ix_verdicts_at", "verdicts", ["at"])
    op.create_table(
        "overrides",
        _case("overrides"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("intent", sa.String(64)),
        sa.Column("corrected_intent", sa.String(64)),
        sa.Column("ai_draft", sa.Text, nullable=False),
        sa.Column("final_text", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('denied', 'edited')", name="ck_overrides_kind"),
    )
    op.create_index("ix_overrides_at", "overrides", ["at"])
    op.create_table(
        "csat_responses",
        _case("csat_responses"),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_csat_responses_score"),
    )
    op.create_index("ix_csat_responses_at", "csat_responses", ["at"])
    op.create_table(
        "qa_reviews",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        _case("qa_reviews", primary_key=False),
        sa.Column("queue", sa.String(64)),
        sa.Column("intent", sa.String(64)),
        sa.Column("channel", sa.String(32)),
        sa.Column("subject_at", sa.DateTime(), nullable=False),
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.String(128)),
        sa.Column("reviewed_at", sa.DateTime()),
        sa.Column("verdict", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("corrected_intent", sa.String(64)),
        sa.CheckConstraint("kind IN ('ai_alone', 'accepted_draft', 'closed_case')", name="ck_qa_reviews_kind"),
        sa.CheckConstraint("status IN ('pending', 'reviewed')", name="ck_qa_reviews_status"),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN "
            "('right', 'should_have_escalated', 'should_not_have_escalated', 'wrong_answer')",
            name="ck_qa_reviews_verdict",
        ),
    )
    op.create_index("ux_qa_reviews_kind_subject", "qa_reviews", ["kind", "subject"], unique=True)
    op.create_index("ix_qa_reviews_status_queue", "qa_reviews", ["status", "queue"])
    op.create_index("ix_qa_reviews_subject_at", "qa_reviews", ["subject_at"])


def downgrade() -> None:
    for table in ("qa_reviews", "csat_responses", "overrides", "verdicts"):
        op.drop_table(table)
