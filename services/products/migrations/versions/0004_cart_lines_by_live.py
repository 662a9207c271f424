"""Cart lines found by their live: the carts whose own coupon follows a live's offer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cart_lines_stream_id", "cart_lines", ["stream_id"])


def downgrade() -> None:
    op.drop_index("ix_cart_lines_stream_id", table_name="cart_lines")
