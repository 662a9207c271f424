"""Orders come back and are credited: Shopify beside WooCommerce, refunds, webhook deliveries seen,
lives' offers, the shop's ids of the products shown, and why each line is credited.

Revision ID: 0002
Revises: 0001
Create Date: 2025-03-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(precision=14, scale=2)


def upgrade() -> None:
    op.add_column("live_products", sa.Column("external_id", sa.Text(), nullable=True))
    op.add_column("orders", sa.Column("name", sa.Text(), nullable=True))
    op.add_column("orders", sa.Column("total", Money, nullable=True))
    op.create_index(
        "ix_orders_coupons", "orders", ["coupons"], unique=False, postgresql_using="gin"
    )
    op.add_column("order_attributions", sa.Column("via_value", sa.Text(), nullable=True))
    op.add_column(
        "order_attributions",
        sa.Column("refunded", Money, server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "live_offers",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("percent_off", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column(
            "product_ids",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("starts_at", Timestamp, nullable=True),
        sa.Column("ends_at", Timestamp, nullable=True),
        sa.Column("opened_at", Timestamp, nullable=True),
        sa.Column("seen_at", Timestamp, nullable=True),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("code", "stream_id"),
    )
    op.create_index("ix_live_offers_stream", "live_offers", ["stream_id"], unique=False)
    op.create_table(
        "order_refunds",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("refunded_at", Timestamp, nullable=True),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("received_at", Timestamp, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("source", "order_id", "refund_id"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("received_at", Timestamp, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("source", "webhook_id"),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("order_refunds")
    op.drop_index("ix_live_offers_stream", table_name="live_offers")
    op.drop_table("live_offers")
    op.drop_column("order_attributions", "refunded")
    op.drop_column("order_attributions", "via_value")
    op.drop_index("ix_orders_coupons", table_name="orders", postgresql_using="gin")
    op.drop_column("orders", "total")
    op.drop_column("orders", "name")
    op.drop_column("live_products", "external_id")
