"""The deliveries claimed (attempts in flight), indexed apart: the claim counts them per endpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_claimed",
        "deliveries",
        ["endpoint_id", "claimed_until"],
        postgresql_where=sa.text("status = 'pending' AND claimed_until IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_claimed", table_name="deliveries")
