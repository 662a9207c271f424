"""Lives, the platform settings and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

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

STATUSES = ("scheduled", "live", "ended")
PLATFORMS = ("mux", "aws_ivs", "restream", "nginx_rtmp", "custom_rtmp")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "live_streams",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.String(5000)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("stream_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("stream_key_sealed", sa.String(), nullable=False),
        sa.Column("playback_id", sa.String(64), nullable=False, unique=True),
        sa.Column("ingest_url", sa.String()),
        sa.Column("playback_url", sa.String()),
        sa.Column("replay_url", sa.String()),
        sa.Column("provider_ref", sa.String()),
        sa.Column("provider_state", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_one_of("status", STATUSES), name="live_streams_status"),
        sa.CheckConstraint(_one_of("platform", PLATFORMS), name="live_streams_platform"),
    )
    op.create_index("ix_live_streams_status", "live_streams", ["status"])

    op.create_table(
        "live_stream_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("config", JSONB(), nullable=False, server_default="{}"),
        sa.Column("secrets_sealed", JSONB(), nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="live_stream_settings_singleton"),
        sa.CheckConstraint(_one_of("platform", PLATFORMS), name="live_stream_settings_platform"),
    )

    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope", JSONB(), nullable=False),
        sa.Column("headers", JSONB(), nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "outbox_pending", "outbox", ["seq"], postgresql_where=sa.text("published_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("live_stream_settings")
    op.drop_table("live_streams")
