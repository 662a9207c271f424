"""Live offers made real in the shop: Shopify as a catalog source, shop ids of variations, live
offers, the coupons and discount codes kept in the shop, and what a cart line shows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("local", "woocommerce", "shopify")
OLD_SOURCES = ("local", "woocommerce")
OFFER_STATUSES = ("pending", "open", "closed")
Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(12, 2)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _sources(values: tuple[str, ...]) -> None:
    for table, name in (
        ("products", "products_source"),
        ("catalog_settings", "catalog_settings_source"),
    ):
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, _one_of("source", values))


def upgrade() -> None:
    _sources(SOURCES)
    # A variation (WooCommerce) or variant (Shopify) is a product of its own, under its parent.
    op.add_column("products", sa.Column("external_parent_id", sa.String(64)))
    op.add_column("products", sa.Column("inventory_item_id", sa.String(64)))
    op.create_index(
        "ix_products_inventory_item",
        "products",
        ["source", "inventory_item_id"],
        postgresql_where=sa.text("inventory_item_id IS NOT NULL"),
    )
    # Cards show the live price until the live's offer closes.
    op.add_column("lives", sa.Column("offer_closed_at", Timestamp))
    op.add_column("lives", sa.Column("offer_percent_off", sa.Numeric(5, 2)))
    op.add_column("cart_lines", sa.Column("regular_price", Money))
    op.add_column("cart_lines", sa.Column("image_url", sa.String(2048)))

    op.create_table(
        "live_offers",
        sa.Column("stream_id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("code_chosen", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("percent_off", sa.Numeric(5, 2)),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.Column("usage_limit", sa.Integer()),
        sa.Column("usage_limit_per_user", sa.Integer()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", Timestamp),
        sa.Column("closes_at", Timestamp),
        sa.Column("closed_at", Timestamp),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(_one_of("status", OFFER_STATUSES), name="live_offers_status"),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)",
            name="live_offers_percent_off",
        ),
    )
    op.create_index(
        "live_offers_code_in_use",
        "live_offers",
        ["code"],
        unique=True,
        postgresql_where=sa.text("status <> 'closed'"),
    )
    op.create_index(
        "ix_live_offers_closing",
        "live_offers",
        ["closes_at"],
        postgresql_where=sa.text("status = 'open' AND closes_at IS NOT NULL"),
    )

    # What the shop should hold (spec, version) and what it was last told (synced_version).
    op.create_table(
        "shop_coupons",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.Uuid()),
        sa.Column("group_key", sa.String(64)),
        sa.Column("cart_id", sa.Uuid()),
        sa.Column("spec", JSONB(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("external_id", sa.String(200)),
        sa.Column("last_error", sa.String(500)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("leased_until", Timestamp),
        sa.Column("synced_at", Timestamp),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("source", "code", name="shop_coupons_source_code"),
        sa.CheckConstraint(_one_of("source", SOURCES[1:]), name="shop_coupons_source"),
    )
    op.create_index("ix_shop_coupons_stream_id", "shop_coupons", ["stream_id"])
    op.create_index(
        "shop_coupons_cart",
        "shop_coupons",
        ["cart_id"],
        unique=True,
        postgresql_where=sa.text("cart_id IS NOT NULL"),
    )
    op.create_index(
        "shop_coupons_due",
        "shop_coupons",
        ["next_attempt_at"],
        postgresql_where=sa.text("synced_version < version"),
    )


def downgrade() -> None:
    op.drop_table("shop_coupons")
    op.drop_table("live_offers")
    op.drop_column("cart_lines", "image_url")
    op.drop_column("cart_lines", "regular_price")
    op.drop_column("lives", "offer_closed_at")
    op.drop_column("lives", "offer_percent_off")
    op.drop_index("ix_products_inventory_item", "products")
    op.drop_column("products", "inventory_item_id")
    op.drop_column("products", "external_parent_id")
    op.execute("DELETE FROM products WHERE source = 'shopify'")
    op.execute("UPDATE catalog_settings SET source = 'local' WHERE source = 'shopify'")
    _sources(OLD_SOURCES)
