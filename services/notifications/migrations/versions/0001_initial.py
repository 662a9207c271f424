"""Lives as notifications knows them, reminder subscriptions, deliveries, processed events, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

The service's schema is the connection's search_path, so no table names a schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lives",
        sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled_at", Timestamp),
        sa.Column("started_at", Timestamp),
        sa.Column("replay_ready", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lead_minutes", sa.Integer()),
        sa.Column("version", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "reminder_subscriptions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("stream_id", UUID(as_uuid=True)),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("email", sa.Text()),
        sa.Column("user_id", sa.Text()),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("confirmed_at", Timestamp),
    )
    op.create_index(
        "ux_reminder_subscriptions_one_per_address",
        "reminder_subscriptions",
        ["recipient", "stream_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index("ix_reminder_subscriptions_stream", "reminder_subscriptions", ["stream_id"])
    op.create_table(
        "reminder_deliveries",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "subscription_id",
            UUID(as_uuid=True),
            sa.ForeignKey("reminder_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("stream_id", UUID(as_uuid=True)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", Timestamp, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("claimed_until", Timestamp),
        sa.Column("sent_at", Timestamp),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index(
        "ux_reminder_deliveries_once",
        "reminder_deliveries",
        ["recipient", "stream_id", "kind"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(
        "ix_reminder_deliveries_due",
        "reminder_deliveries",
        ["due_at"],
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_index("ix_reminder_deliveries_stream", "reminder_deliveries", ["stream_id", "kind"])
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("processed_at", Timestamp, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope", JSONB(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False, server_default="{}"),
        sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", Timestamp),
    )
    op.create_index(
        "outbox_pending", "outbox", ["seq"], postgresql_where=sa.text("published_at IS NULL")
    )


def downgrade() -> None:
    for table in ("outbox", "processed_events", "reminder_deliveries", "reminder_subscriptions"):
        op.drop_table(table)
    op.drop_table("lives")
