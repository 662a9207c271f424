"""Refused publishes (per live and platform-wide), retired stream keys, and each live's recording
takes for replays in the video's own time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("live_streams", sa.Column("last_refused_publish", JSONB()))
    op.add_column("live_streams", sa.Column("recording", JSONB()))
    op.create_table(
        "retired_stream_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_retired_stream_keys_stream_id", "retired_stream_keys", ["stream_id"])
    op.create_table(
        "refused_publishes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_id", sa.Uuid()),
        sa.Column("key_tail", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("app", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("refused_publishes")
    op.drop_index("ix_retired_stream_keys_stream_id", "retired_stream_keys")
    op.drop_table("retired_stream_keys")
    op.drop_column("live_streams", "recording")
    op.drop_column("live_streams", "last_refused_publish")
