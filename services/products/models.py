"""Tables of the products service (API schemas live in `schemas.py`: a table is never the API)."""

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from chassis.consumer import processed_events_table
from chassis.outbox import outbox_table
from contracts.streams import StreamStatus

NAME_MAX = 200
DESCRIPTION_MAX = 5000
SKU_MAX = 64
PROMO_CODE_MAX = 64
IMAGES_MAX = 20
URL_MAX = 2048
SETTINGS_ROW_ID = 1

Timestamp = sa.DateTime(timezone=True)
Money = sa.Numeric(12, 2)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Source(enum.StrEnum):
    """Where the catalog comes from."""

    LOCAL = "local"
    WOOCOMMERCE = "woocommerce"
    SHOPIFY = "shopify"


SHOP_SOURCES = (Source.WOOCOMMERCE, Source.SHOPIFY)


class OfferStatus(enum.StrEnum):
    """A live's offer: waiting for the live to start, holding in the shop, over."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"


def _string_enum(enum_type: type[enum.Enum], length: int) -> sa.Enum:
    """A VARCHAR holding the enum's values (no PostgreSQL enum type to migrate)."""
    return sa.Enum(
        enum_type,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class ProductsBase(SQLModel, registry=registry()):
    """Own registry, so these tables never mix with another service's metadata."""


class Product(ProductsBase, table=True):
    """A catalog product: made here (`local`) or a cached copy of the shop's (`woocommerce`,
    `shopify`). A variation (WooCommerce) or variant (Shopify) is a product of its own: its shop id
    is `external_id`, its parent's `external_parent_id`."""

    __tablename__ = "products"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="products_source_external_id"),
        sa.Index(
            "products_local_sku",
            "sku",
            unique=True,
            postgresql_where=sa.text("source = 'local' AND sku IS NOT NULL"),
        ),
        sa.Index(
            "ix_products_inventory_item",
            "source",
            "inventory_item_id",
            postgresql_where=sa.text("inventory_item_id IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    source: Source = Column(default=Source.LOCAL, sa_type=_string_enum(Source, 16))
    external_id: str | None = Column(default=None, max_length=64)
    name: str = Column(max_length=NAME_MAX)
    description: str | None = Column(default=None, max_length=DESCRIPTION_MAX)
    price: Decimal = Column(sa_type=Money)
    currency: str = Column(max_length=3)
    images: list[str] = Column(default_factory=list, sa_type=JSONB)
    stock: int | None = None
    product_url: str | None = Column(default=None, max_length=URL_MAX)
    sku: str | None = Column(default=None, max_length=SKU_MAX)
    external_parent_id: str | None = Column(default=None, max_length=64)
    # Shopify counts stock per inventory item: its `inventory_levels/update` webhooks name it.
    inventory_item_id: str | None = Column(default=None, max_length=64)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    synced_at: datetime | None = Column(default=None, sa_type=Timestamp)


class CatalogSettings(ProductsBase, table=True):
    """One row: the active source, its settings and its sealed secrets."""

    __tablename__ = "catalog_settings"

    id: int = Column(default=SETTINGS_ROW_ID, primary_key=True)
    source: Source = Column(default=Source.LOCAL, sa_type=_string_enum(Source, 16))
    config: dict[str, Any] = Column(default_factory=dict, sa_type=JSONB)
    secrets_sealed: dict[str, str] = Column(default_factory=dict, sa_type=JSONB)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class Live(ProductsBase, table=True):
    """This service's copy of a live's status, fed by `stream.*` events."""

    __tablename__ = "lives"

    stream_id: uuid.UUID = Column(primary_key=True)
    status: StreamStatus = Column(
        default=StreamStatus.SCHEDULED, sa_type=_string_enum(StreamStatus, 16)
    )
    started_at: datetime | None = Column(default=None, sa_type=Timestamp)
    ended_at: datetime | None = Column(default=None, sa_type=Timestamp)
    deleted_at: datetime | None = Column(default=None, sa_type=Timestamp)
    # Once the live's offer closes, its products are sold at their catalog price again.
    offer_closed_at: datetime | None = Column(default=None, sa_type=Timestamp)
    # An offer of a percentage off every product (instead of each product's special price).
    offer_percent_off: Decimal | None = Column(default=None, sa_type=sa.Numeric(5, 2))
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class LiveStreamProduct(ProductsBase, table=True):
    """A product in a live's showcase."""

    __tablename__ = "live_stream_products"
    __table_args__ = (
        # At most one featured product per live, whatever the races.
        sa.Index(
            "live_stream_products_one_featured",
            "stream_id",
            unique=True,
            postgresql_where=sa.text("is_featured"),
        ),
        sa.Index("ix_live_stream_products_product_id", "product_id"),
    )

    stream_id: uuid.UUID = Column(primary_key=True)
    product_id: uuid.UUID = Column(
        sa_column_args=[sa.ForeignKey("products.id", ondelete="CASCADE")], primary_key=True
    )
    position: int = 0
    is_featured: bool = False
    special_price: Decimal | None = Column(default=None, sa_type=Money)
    promo_code: str | None = Column(default=None, max_length=PROMO_CODE_MAX)
    visible: bool = True
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class FeaturedPeriod(ProductsBase, table=True):
    """When a product was presented during a live: makes the replay shoppable."""

    __tablename__ = "featured_history"

    id: int | None = Column(default=None, primary_key=True, sa_type=sa.BigInteger)
    stream_id: uuid.UUID = Column(index=True)
    product_id: uuid.UUID
    name: str = Column(max_length=NAME_MAX)
    featured_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    unfeatured_at: datetime | None = Column(default=None, sa_type=Timestamp)


class Cart(ProductsBase, table=True):
    """A viewer's cart: a signed-in user's (`user:<id>`) or an anonymous session's."""

    __tablename__ = "carts"

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    owner: str = Column(max_length=200, unique=True)
    user_id: str | None = Column(default=None, max_length=200)
    session_id: str = Column(max_length=128)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class CartLine(ProductsBase, table=True):
    """A product of a live in a cart, priced when it was added."""

    __tablename__ = "cart_lines"
    __table_args__ = (sa.Index("ix_cart_lines_stream_id", "stream_id"),)

    cart_id: uuid.UUID = Column(
        sa_column_args=[sa.ForeignKey("carts.id", ondelete="CASCADE")], primary_key=True
    )
    stream_id: uuid.UUID = Column(primary_key=True)
    product_id: uuid.UUID = Column(primary_key=True)
    name: str = Column(max_length=NAME_MAX)
    quantity: int
    unit_price: Decimal = Column(sa_type=Money)
    currency: str = Column(max_length=3)
    external_id: str | None = Column(default=None, max_length=64)
    regular_price: Decimal | None = Column(default=None, sa_type=Money)
    image_url: str | None = Column(default=None, max_length=URL_MAX)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class CartRequest(ProductsBase, table=True):
    """An answered add-to-cart, by idempotency key: a retry gets the same answer."""

    __tablename__ = "cart_requests"

    cart_id: uuid.UUID = Column(
        sa_column_args=[sa.ForeignKey("carts.id", ondelete="CASCADE")], primary_key=True
    )
    key: str = Column(max_length=128, primary_key=True)
    fingerprint: str = Column(max_length=64)
    answer: dict[str, Any] = Column(sa_type=JSONB)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class LiveOffer(ProductsBase, table=True):
    """A live's offer: the code that gives its live prices in the shop, from the live's start
    until `window_s` after its end."""

    __tablename__ = "live_offers"
    __table_args__ = (
        # A code is one live's at a time; once its offer closes, a later live may take it again.
        sa.Index(
            "live_offers_code_in_use",
            "code",
            unique=True,
            postgresql_where=sa.text("status <> 'closed'"),
        ),
        sa.Index(
            "ix_live_offers_closing",
            "closes_at",
            postgresql_where=sa.text("status = 'open' AND closes_at IS NOT NULL"),
        ),
    )

    stream_id: uuid.UUID = Column(primary_key=True)
    code: str = Column(max_length=PROMO_CODE_MAX)  # upper case; one open offer per code
    code_chosen: bool = False  # the admin's code, else one generated
    percent_off: Decimal | None = Column(default=None, sa_type=sa.Numeric(5, 2))
    window_s: int
    usage_limit: int | None = None
    usage_limit_per_user: int | None = None
    status: OfferStatus = Column(default=OfferStatus.PENDING, sa_type=_string_enum(OfferStatus, 16))
    opened_at: datetime | None = Column(default=None, sa_type=Timestamp)
    closes_at: datetime | None = Column(default=None, sa_type=Timestamp)
    closed_at: datetime | None = Column(default=None, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


class ShopCoupon(ProductsBase, table=True):
    """A coupon (WooCommerce) or discount code (Shopify) as the shop should hold it (`spec`,
    `version`, `active`) and as it was last told (`synced_version`): a live's, one per group of
    products sharing a discount, or a cart's, when one coupon must give several live prices."""

    __tablename__ = "shop_coupons"
    __table_args__ = (
        sa.UniqueConstraint("source", "code", name="shop_coupons_source_code"),
        sa.Index("ix_shop_coupons_stream_id", "stream_id"),
        sa.Index(
            "shop_coupons_cart",
            "cart_id",
            unique=True,
            postgresql_where=sa.text("cart_id IS NOT NULL"),
        ),
        sa.Index(
            "shop_coupons_due",
            "next_attempt_at",
            postgresql_where=sa.text("synced_version < version"),
        ),
    )

    id: uuid.UUID = Column(default_factory=uuid.uuid4, primary_key=True)
    source: Source = Column(sa_type=_string_enum(Source, 16))
    code: str = Column(max_length=PROMO_CODE_MAX)
    stream_id: uuid.UUID | None = None
    group_key: str | None = Column(default=None, max_length=64)
    cart_id: uuid.UUID | None = None
    spec: dict[str, Any] = Column(sa_type=JSONB)
    active: bool = True
    version: int = 1
    synced_version: int = 0
    external_id: str | None = Column(default=None, max_length=200)
    last_error: str | None = Column(default=None, max_length=500)
    attempts: int = 0
    next_attempt_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    # A replica is telling the shop until then; another waits, whatever versions come meanwhile.
    leased_until: datetime | None = Column(default=None, sa_type=Timestamp)
    synced_at: datetime | None = Column(default=None, sa_type=Timestamp)
    created_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)

    def want(self, spec: dict[str, Any], *, active: bool) -> bool:
        """Bring the row to `spec`: a change is due to the shop at once (a new version)."""
        if self.spec == spec and self.active == active:
            return False
        now = utcnow()
        self.spec, self.active = spec, active
        self.version += 1
        self.attempts = 0
        self.next_attempt_at = now
        self.updated_at = now
        return True


class ShopWebhook(ProductsBase, table=True):
    """A shop's webhook delivery, handled once (Shopify's `X-Shopify-Webhook-Id`, WooCommerce's
    `X-WC-Webhook-Delivery-ID`), and when the shop says its change happened, so a late delivery
    never undoes a newer one of the same product."""

    __tablename__ = "shop_webhooks"
    __table_args__ = (
        sa.Index("ix_shop_webhooks_subject", "source", "subject", "occurred_at"),
        sa.Index("ix_shop_webhooks_received_at", "received_at"),
    )

    source: Source = Column(primary_key=True, sa_type=_string_enum(Source, 16))
    delivery_id: str = Column(primary_key=True, max_length=200)
    topic: str = Column(max_length=64)
    subject: str | None = Column(default=None, max_length=64)  # the product, or inventory item
    occurred_at: datetime | None = Column(default=None, sa_type=Timestamp)
    received_at: datetime = Column(default_factory=utcnow, sa_type=Timestamp)


outbox = outbox_table(ProductsBase.metadata)
processed_events = processed_events_table(ProductsBase.metadata)
