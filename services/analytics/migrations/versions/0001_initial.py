"""Analytics: lives, products and promo codes, viewer sessions and samples, clicks, carts, chat,
orders and their attribution, players, processed events and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The service's schema is the connection's search_path, so no table names a schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cart_additions",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("cart_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_cart_additions_cart", "cart_additions", ["cart_id"], unique=False)
    op.create_index("ix_cart_additions_session", "cart_additions", ["session_id"], unique=False)
    op.create_index(
        "ix_cart_additions_stream_at", "cart_additions", ["stream_id", "at"], unique=False
    )
    op.create_table(
        "chat_deletions",
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_table(
        "chat_messages",
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index(
        "ix_chat_messages_stream_at", "chat_messages", ["stream_id", "at"], unique=False
    )
    op.create_table(
        "live_products",
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", "product_id"),
    )
    op.create_table(
        "live_stream_viewers",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("gateway_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("viewer_key", sa.Text(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watched_ms", sa.BigInteger(), nullable=True),
        sa.Column("closed_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_live_stream_viewers_open",
        "live_stream_viewers",
        ["stream_id"],
        unique=False,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_index(
        "ix_live_stream_viewers_session",
        "live_stream_viewers",
        ["stream_id", "gateway_id", "session_id"],
        unique=False,
    )
    op.create_table(
        "lives",
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream_id"),
    )
    op.create_table(
        "order_attributions",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("source", "order_id", "line_id"),
    )
    op.create_index(
        "ix_order_attributions_stream", "order_attributions", ["stream_id"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cart_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("coupons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source", "order_id"),
    )
    op.create_index("ix_orders_cart", "orders", ["cart_id"], unique=False)
    op.create_index("ix_orders_session", "orders", ["session_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index(
        "outbox_pending",
        "outbox",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "player_sessions",
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stream_id", "session_id"),
    )
    op.create_index(
        "ix_player_sessions_open",
        "player_sessions",
        ["last_seen_at"],
        unique=False,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "product_clicks",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_product_clicks_stream_at", "product_clicks", ["stream_id", "at"], unique=False
    )
    op.create_table(
        "promo_codes",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", "stream_id", "product_id"),
    )
    op.create_table(
        "viewer_samples",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("stream_id", sa.UUID(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_viewer_samples_stream_at", "viewer_samples", ["stream_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_viewer_samples_stream_at", table_name="viewer_samples")
    op.drop_table("viewer_samples")
    op.drop_table("promo_codes")
    op.drop_index("ix_product_clicks_stream_at", table_name="product_clicks")
    op.drop_table("product_clicks")
    op.drop_table("processed_events")
    op.drop_index(
        "ix_player_sessions_open",
        table_name="player_sessions",
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.drop_table("player_sessions")
    op.drop_index(
        "outbox_pending", table_name="outbox", postgresql_where=sa.text("published_at IS NULL")
    )
    op.drop_table("outbox")
    op.drop_index("ix_orders_session", table_name="orders")
    op.drop_index("ix_orders_cart", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_order_attributions_stream", table_name="order_attributions")
    op.drop_table("order_attributions")
    op.drop_table("lives")
    op.drop_index("ix_live_stream_viewers_session", table_name="live_stream_viewers")
    op.drop_index(
        "ix_live_stream_viewers_open",
        table_name="live_stream_viewers",
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.drop_table("live_stream_viewers")
    op.drop_table("live_products")
    op.drop_index("ix_chat_messages_stream_at", table_name="chat_messages")
    op.drop_table("chat_messages")
    op.drop_table("chat_deletions")
    op.drop_index("ix_cart_additions_stream_at", table_name="cart_additions")
    op.drop_index("ix_cart_additions_session", table_name="cart_additions")
    op.drop_index("ix_cart_additions_cart", table_name="cart_additions")
    op.drop_table("cart_additions")
