"""Restream lives share the account's stream key: keys stay unique for every other platform.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_live_streams_stream_key_hash", "live_streams", ["stream_key_hash"])
    op.create_index(
        "uq_live_streams_stream_key_hash",
        "live_streams",
        ["stream_key_hash"],
        unique=True,
        postgresql_where=sa.text("platform <> 'restream'"),
    )
    op.drop_constraint("live_streams_stream_key_hash_key", "live_streams", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint(
        "live_streams_stream_key_hash_key", "live_streams", ["stream_key_hash"]
    )
    op.drop_index("uq_live_streams_stream_key_hash", "live_streams")
    op.drop_index("ix_live_streams_stream_key_hash", "live_streams")
