"""The last featured-product event inserted into each IVS live's video, so replicas keep them in
order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ivs_timed_metadata",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("event_id", sa.Uuid()),
        sa.Column("pushed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("ivs_timed_metadata")
