"""Catalog, catalog settings, lives' status, live products, featured history, carts, outbox and
processed events.

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

SOURCES = ("local", "woocommerce")
STATUSES = ("scheduled", "live", "ended")
Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(12, 2)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(64)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(5000)),
        sa.Column("price", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("images", JSONB(), nullable=False, server_default="[]"),
        sa.Column("stock", sa.Integer()),
        sa.Column("product_url", sa.String(2048)),
        sa.Column("sku", sa.String(64)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("synced_at", Timestamp),
        sa.CheckConstraint(_one_of("source", SOURCES), name="products_source"),
        sa.CheckConstraint("price >= 0", name="products_price_not_negative"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="products_stock_not_negative"),
        sa.UniqueConstraint("source", "external_id", name="products_source_external_id"),
    )
    op.create_index(
        "products_local_sku",
        "products",
        ["sku"],
        unique=True,
        postgresql_where=sa.text("source = 'local' AND sku IS NOT NULL"),
    )

    op.create_table(
        "catalog_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("config", JSONB(), nullable=False, server_default="{}"),
        sa.Column("secrets_sealed", JSONB(), nullable=False, server_default="{}"),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("id = 1", name="catalog_settings_singleton"),
        sa.CheckConstraint(_one_of("source", SOURCES), name="catalog_settings_source"),
    )

    op.create_table(
        "lives",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", Timestamp),
        sa.Column("ended_at", Timestamp),
        sa.Column("deleted_at", Timestamp),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(_one_of("status", STATUSES), name="lives_status"),
    )

    op.create_table(
        "live_stream_products",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column(
            "product_id",
            sa.Uuid(),
            sa.ForeignKey("products.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_featured", sa.Boolean(), nullable=False),
        sa.Column("special_price", Money),
        sa.Column("promo_code", sa.String(64)),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "special_price IS NULL OR special_price >= 0",
            name="live_stream_products_special_price_not_negative",
        ),
    )
    # At most one featured product per live, whatever the races.
    op.create_index(
        "live_stream_products_one_featured",
        "live_stream_products",
        ["stream_id"],
        unique=True,
        postgresql_where=sa.text("is_featured"),
    )
    op.create_index("ix_live_stream_products_product_id", "live_stream_products", ["product_id"])

    op.create_table(
        "featured_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("featured_at", Timestamp, nullable=False),
        sa.Column("unfeatured_at", Timestamp),
    )
    op.create_index("ix_featured_history_stream_id", "featured_history", ["stream_id"])

    op.create_table(
        "carts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False, unique=True),
        sa.Column("user_id", sa.String(200)),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "cart_lines",
        sa.Column(
            "cart_id", sa.Uuid(), sa.ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("product_id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", Money, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("external_id", sa.String(64)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.CheckConstraint("quantity BETWEEN 1 AND 99", name="cart_lines_quantity"),
    )
    op.create_table(
        "cart_requests",
        sa.Column(
            "cart_id", sa.Uuid(), sa.ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("answer", JSONB(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
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

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("processed_at", Timestamp, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in (
        "processed_events",
        "outbox",
        "cart_requests",
        "cart_lines",
        "carts",
        "featured_history",
        "live_stream_products",
        "lives",
        "catalog_settings",
        "products",
    ):
        op.drop_table(table)
