"""Provider webhooks: processed ids, provider state ordering, the reconnect grace, troubleshooting.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("live_streams", sa.Column("provider_state_at", sa.DateTime(timezone=True)))
    op.add_column("live_streams", sa.Column("end_deadline", sa.DateTime(timezone=True)))
    op.add_column("live_streams", sa.Column("last_webhook", JSONB()))
    op.create_index("ix_live_streams_end_deadline", "live_streams", ["end_deadline"])

    op.create_table(
        "provider_webhooks",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("webhook_id", sa.String(200), primary_key=True),
        sa.Column("stream_id", sa.Uuid()),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("provider_webhooks")
    op.drop_index("ix_live_streams_end_deadline", "live_streams")
    op.drop_column("live_streams", "last_webhook")
    op.drop_column("live_streams", "end_deadline")
    op.drop_column("live_streams", "provider_state_at")
