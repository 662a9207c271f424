"""Tables of the analytics service.

Facts are kept one row per event, keyed by what identifies them (the event id, a chat message's
id, a shop's order id), so storing one twice is a no-op and every figure is a query over them:
the same events, in any order, give the same figures — which is what a rebuild relies on.
Only the shops' orders (with their refunds and the webhook deliveries seen) and
`player_sessions` hold facts that come from outside the bus.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(14, 2)

# What analytics knows of each live, from `stream.*`.
lives = sa.Table(
    "lives",
    metadata,
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("ended_at", Timestamp),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    # The newest `stream.*` event applied: an older one arriving late changes nothing but status.
    sa.Column("seen_at", Timestamp, nullable=False),
)

# The products shown in each live (their cards), and the promo codes they carried.
live_products = sa.Table(
    "live_products",
    metadata,
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("seen_at", Timestamp, nullable=False),
    sa.Column("external_id", sa.Text),  # the shop's product, variation or variant id
)
promo_codes = sa.Table(
    "promo_codes",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),  # case-folded
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("first_seen_at", Timestamp, nullable=False),
)

# Each live's offer (`offer.*`): the code that gives its prices in the shop, and when it held.
live_offers = sa.Table(
    "live_offers",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),  # case-folded
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("percent_off", sa.Numeric(5, 2)),
    sa.Column("product_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("starts_at", Timestamp),
    sa.Column("ends_at", Timestamp),
    sa.Column("opened_at", Timestamp),  # the first sign it held (null: only its closing is known)
    sa.Column("seen_at", Timestamp),  # the newest `offer.opened/updated` applied
    sa.Column("closed_at", Timestamp),
    sa.Index("ix_live_offers_stream", "stream_id"),
)

# One row per view: a websocket opened on a gateway, or a player registered.
live_stream_viewers = sa.Table(
    "live_stream_viewers",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("gateway_id", sa.Text, nullable=False),  # "player" for POST /api/live/viewers
    sa.Column("user_id", sa.Text),
    sa.Column("viewer_key", sa.Text, nullable=False),  # the person: user id, else session id
    sa.Column("joined_at", Timestamp),  # null: its `viewer.left` came first
    sa.Column("left_at", Timestamp),
    sa.Column("watched_ms", sa.BigInteger),
    # Closed by whom: the gateway or player that saw it go, or analytics for a dead gateway.
    sa.Column("closed_by", sa.String(16)),
    # When analytics published an estimated `viewer.left` for it (its gateway died): claimed in
    # the transaction that records the estimate, so a lagging consumer or a second replica never
    # estimates the same view twice.
    sa.Column("estimated_at", Timestamp),
    sa.Index("ix_live_stream_viewers_session", "stream_id", "gateway_id", "session_id"),
    sa.Index(
        "ix_live_stream_viewers_open",
        "stream_id",
        postgresql_where=sa.text("left_at IS NULL"),
    ),
)

# `viewers.updated` as published: current and peak over time.
viewer_samples = sa.Table(
    "viewer_samples",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("current", sa.Integer, nullable=False),
    sa.Column("peak", sa.Integer, nullable=False),
    sa.Index("ix_viewer_samples_stream_at", "stream_id", "at"),
)

product_clicks = sa.Table(
    "product_clicks",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("product_id", UUID(as_uuid=True), nullable=False),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_product_clicks_stream_at", "stream_id", "at"),
)

cart_additions = sa.Table(
    "cart_additions",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("product_id", UUID(as_uuid=True), nullable=False),
    sa.Column("cart_id", UUID(as_uuid=True), nullable=False),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_cart_additions_stream_at", "stream_id", "at"),
    sa.Index("ix_cart_additions_cart", "cart_id"),
    sa.Index("ix_cart_additions_session", "session_id"),
)

chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_chat_messages_stream_at", "stream_id", "at"),
)
chat_deletions = sa.Table(
    "chat_deletions",
    metadata,
    sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
)

# The shop's orders as its webhooks sent them (the newest version of each).
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("placed_at", Timestamp, nullable=False),
    sa.Column("modified_at", Timestamp, nullable=False),
    sa.Column("cart_id", sa.Text),
    sa.Column("session_id", sa.Text),
    sa.Column("coupons", JSONB, nullable=False),  # case-folded codes
    # [{line_id, name, product_ref, quantity, total, shop_ids, aliases}]
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("name", sa.Text),  # what the shop shows: "#1001", a WooCommerce order number
    sa.Column("total", Money),  # all the buyer paid: order-wide refunds are shares of it
    sa.Index("ix_orders_cart", "cart_id"),
    sa.Index("ix_orders_session", "session_id"),
    sa.Index("ix_orders_coupons", "coupons", postgresql_using="gin"),
)
# Refunds, one row each, kept apart from their order: Shopify sends them on their own
# (`refunds/create`), maybe before the order, and an order's versions list them again.
order_refunds = sa.Table(
    "order_refunds",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("refund_id", sa.Text, primary_key=True),
    sa.Column("refunded_at", Timestamp),
    sa.Column("lines", JSONB, nullable=False),  # [{line_id, quantity, amount}]
    sa.Column("amount", Money, nullable=False),  # given back for the whole order
    sa.Column("received_at", Timestamp, nullable=False, server_default=sa.func.now()),
)
# The shops' webhook deliveries already handled (Shopify's `X-Shopify-Webhook-Id`).
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("webhook_id", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False, server_default=sa.func.now()),
)
# Which live (and product) each order line is credited to; recomputed whenever what decides it
# changes (the order, its refunds, the cart's additions, an offer, a promo code), so arrival order
# does not matter.
order_attributions = sa.Table(
    "order_attributions",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("line_id", sa.Text, primary_key=True),
    sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
    sa.Column("product_id", UUID(as_uuid=True)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("amount", Money, nullable=False),  # the line's total as ordered
    sa.Column("via", sa.String(16), nullable=False),  # cart | coupon | promo_code | session
    # What decided it: the cart id, the code, the session id.
    sa.Column("via_value", sa.Text),
    sa.Column("refunded", Money, nullable=False, server_default=sa.text("0")),
    sa.Index("ix_order_attributions_stream", "stream_id"),
)

# Players without a websocket, registered over HTTP: the source of their `viewer.*` events.
player_sessions = sa.Table(
    "player_sessions",
    metadata,
    sa.Column("stream_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("joined_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.Column("left_at", Timestamp),
    sa.Index(
        "ix_player_sessions_open", "last_seen_at", postgresql_where=sa.text("left_at IS NULL")
    ),
)

processed_events = processed_events_table(metadata)
outbox = outbox_table(metadata)

# Derived from events: emptied and refilled by a rebuild (what came from outside stays).
DERIVED = (
    lives,
    live_products,
    promo_codes,
    live_offers,
    live_stream_viewers,
    viewer_samples,
    product_clicks,
    cart_additions,
    chat_messages,
    chat_deletions,
    order_attributions,
    processed_events,
)
# From outside the bus: a rebuild copies them.
OUTSIDE = (orders, order_refunds, webhook_deliveries, player_sessions)
