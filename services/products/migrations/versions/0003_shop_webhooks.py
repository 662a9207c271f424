"""The shops' webhook deliveries handled (products' stock and price), each once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHOP_SOURCES = ("woocommerce", "shopify")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shop_webhooks",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("delivery_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("occurred_at", Timestamp),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            f"source IN ({', '.join(repr(s) for s in SHOP_SOURCES)})", name="shop_webhooks_source"
        ),
    )
    # A delivery is late when one of the same product, changed later, was applied already.
    op.create_index(
        "ix_shop_webhooks_subject", "shop_webhooks", ["source", "subject", "occurred_at"]
    )
    op.create_index("ix_shop_webhooks_received_at", "shop_webhooks", ["received_at"])


def downgrade() -> None:
    op.drop_table("shop_webhooks")
