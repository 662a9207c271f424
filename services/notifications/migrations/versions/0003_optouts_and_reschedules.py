"""A live's unsubscription that following the shop respects, a budget of confirmations per
address, a reminder again for a moved live, retries bounded by time, and the indexes a person's
rows and a cascade are found by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder_optouts",
        sa.Column("recipient", sa.Text(), primary_key=True),
        sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "confirmation_budgets",
        sa.Column("recipient", sa.Text(), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
    )
    op.add_column("reminder_deliveries", sa.Column("first_due_at", sa.DateTime(timezone=True)))
    op.add_column("reminder_deliveries", sa.Column("scheduled_for", sa.DateTime(timezone=True)))
    # Rows from before: their first time is their time now; a "starts soon" was about the
    # live's time as known now.
    op.execute("UPDATE reminder_deliveries SET first_due_at = due_at")
    op.execute(
        "UPDATE reminder_deliveries AS d SET scheduled_for = l.scheduled_at FROM lives AS l"
        " WHERE d.stream_id = l.stream_id AND d.kind = 'starting_soon'"
    )
    op.create_index(
        "ix_reminder_deliveries_subscription", "reminder_deliveries", ["subscription_id"]
    )
    op.create_index(
        "ix_reminder_subscriptions_email",
        "reminder_subscriptions",
        ["email"],
        postgresql_where=sa.text("email IS NOT NULL"),
    )
    op.create_index(
        "ix_reminder_subscriptions_user",
        "reminder_subscriptions",
        ["user_id"],
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_reminder_subscriptions_user", "reminder_subscriptions")
    op.drop_index("ix_reminder_subscriptions_email", "reminder_subscriptions")
    op.drop_index("ix_reminder_deliveries_subscription", "reminder_deliveries")
    op.drop_column("reminder_deliveries", "scheduled_for")
    op.drop_column("reminder_deliveries", "first_due_at")
    op.drop_table("confirmation_budgets")
    op.drop_table("reminder_optouts")
