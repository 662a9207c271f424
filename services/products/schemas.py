"""What the products service's HTTP API reads and answers."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self
from uuid import UUID

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from chassis.pages import Page
from services.products.models import (
    DESCRIPTION_MAX,
    IMAGES_MAX,
    NAME_MAX,
    PROMO_CODE_MAX,
    SKU_MAX,
    URL_MAX,
    Source,
)

QUANTITY_MAX = 99
SESSION_ID_MAX = 128
IDEMPOTENCY_KEY_MAX = 128


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
CENT = Decimal("0.01")
Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    AfterValidator(lambda price: price.quantize(CENT)),  # "25" is 25.00, as stored
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")]
Url = Annotated[AnyHttpUrl, Field(max_length=URL_MAX)]
# Kept as written: a parsed URL would percent-encode the `{items}` placeholder.
UrlTemplate = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=URL_MAX)]
Sku = Annotated[str, Field(min_length=1, max_length=SKU_MAX)]
Stock = Annotated[int, Field(ge=0, le=10_000_000)]
PromoCode = Annotated[str, Field(min_length=1, max_length=PROMO_CODE_MAX)]
# An anonymous cart is reachable by its session id alone: long enough not to be guessed.
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{16,128}$")]


class ProductCreate(_Input):
    name: Name
    description: Description | None = None
    price: Price
    currency: Currency
    images: list[Url] = Field(default_factory=list, max_length=IMAGES_MAX)
    stock: Stock | None = None
    product_url: Url | None = None
    sku: Sku | None = None


class ProductUpdate(_Input):
    """Only the fields sent change; optional ones may be cleared with null."""

    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    currency: Currency | None = None
    images: list[Url] | None = Field(default=None, max_length=IMAGES_MAX)
    stock: Stock | None = None
    product_url: Url | None = None
    sku: Sku | None = None

    @model_validator(mode="after")
    def _required_fields_stay(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for field in ("name", "price", "currency", "images"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class ProductPublic(BaseModel):
    id: UUID
    source: Source
    external_id: str | None
    name: str
    description: str | None
    price: Decimal
    currency: str
    images: list[str]
    stock: int | None
    product_url: str | None
    sku: str | None
    created_at: datetime
    updated_at: datetime
    synced_at: datetime | None


class ProductPage(Page[ProductPublic]):
    total: int = Field(description="how many products match, in every page")


class WooCommerceWrite(_Input):
    url: Url
    # Left out or sent back masked: the stored value stays.
    consumer_key: Annotated[str, Field(max_length=256)] | None = None
    consumer_secret: Annotated[str, Field(max_length=256)] | None = None


class ShopifyWrite(_Input):
    url: Url = Field(description="the shop's admin address, e.g. https://my-shop.myshopify.com")
    # Left out or sent back masked: the stored value stays.
    access_token: Annotated[str, Field(max_length=256)] | None = Field(
        default=None, description="an Admin API access token (shpat_…)"
    )
    storefront_url: Url | None = Field(
        default=None, description="where viewers pay, if not the admin address (a custom domain)"
    )


OFFER_WINDOW_MAX_H = 24 * 30


class CatalogSettingsWrite(_Input):
    source: Source
    woocommerce: WooCommerceWrite | None = None
    shopify: ShopifyWrite | None = None
    checkout_url_template: UrlTemplate | None = Field(
        default=None,
        description="a URL with `{items}` (`id:quantity,…`), and optionally `{coupon}`, `{live}`,"
        " `{cart}`, e.g. https://shop.example/checkout?items={items}&coupon={coupon}",
    )
    offer_window_h: Annotated[int, Field(ge=0, le=OFFER_WINDOW_MAX_H)] = Field(
        default=24, description="how long after a live its prices still hold (replays), in hours"
    )


class WooCommerceRead(BaseModel):
    url: str
    consumer_key: str | None = Field(description="masked")
    consumer_secret: str | None = Field(description="masked")


class ShopifyRead(BaseModel):
    url: str
    access_token: str | None = Field(description="masked")
    storefront_url: str | None = None


class CatalogSettingsRead(BaseModel):
    source: Source
    woocommerce: WooCommerceRead | None = None
    shopify: ShopifyRead | None = None
    checkout_url_template: str | None = None
    offer_window_h: int = 24
    # Why viewers have no checkout link, when they have none (a local catalog without template).
    checkout_missing: str | None = None
    updated_at: datetime | None = None


class LiveProductWrite(_Input):
    """Add a product to a live, or change it there: only the fields sent change."""

    product_id: UUID
    is_featured: bool | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    special_price: Price | None = None
    promo_code: PromoCode | None = None
    visible: bool | None = None


class LiveProductOrder(_Input):
    product_ids: list[UUID] = Field(max_length=1000)


class FeaturedPeriodPublic(BaseModel):
    """One stretch of the live during which a product was presented."""

    product_id: UUID
    name: str
    featured_at: datetime
    unfeatured_at: datetime | None
    from_offset_s: float | None = Field(description="seconds from the live's start")
    to_offset_s: float | None = Field(description="seconds from the live's start; null: still on")


class Click(_Input):
    session_id: SessionId


# Strict: "2", 2.0 and true are not quantities.
Quantity = Annotated[int, Field(ge=1, le=QUANTITY_MAX, strict=True)]


class CartItemAdd(_Input):
    stream_id: UUID
    product_id: UUID
    quantity: Quantity
    session_id: SessionId


class CartItemSet(_Input):
    """A line's new quantity; 0 removes it."""

    stream_id: UUID
    product_id: UUID
    quantity: Annotated[int, Field(ge=0, le=QUANTITY_MAX, strict=True)]
    session_id: SessionId


class CartClaim(_Input):
    session_id: SessionId = Field(description="the anonymous session whose cart moves")


class CartLinePublic(BaseModel):
    product_id: UUID
    name: str
    quantity: int
    unit_price: Decimal = Field(description="the price paid: the live price, if it had one")
    currency: str
    stream_id: UUID
    # Defaults: answers kept for idempotent retries from before these fields still read.
    image_url: str | None = None
    regular_price: Decimal | None = Field(default=None, description="the catalog price")
    stock: int | None = Field(default=None, description="what the shop has now, if it says")


class CartPublic(BaseModel):
    id: UUID | None
    lines: list[CartLinePublic]
    items: int = Field(default=0, description="units in the cart")
    total: Decimal
    currency: str | None
    checkout_url: str | None


OfferCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{3,40}$", description="e.g. LIVE10")]


class OfferWrite(_Input):
    """A live's offer: only the fields sent change (null clears an optional one)."""

    code: OfferCode | None = None
    percent_off: Annotated[Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2)] | None = (
        Field(default=None, description="a percentage off every product, instead of live prices")
    )
    window_h: Annotated[int, Field(ge=0, le=OFFER_WINDOW_MAX_H)] | None = Field(
        default=None, description="hours the live's prices hold after its end"
    )
    usage_limit: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    usage_limit_per_user: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _something_sent(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        if "code" in self.model_fields_set and self.code is None:
            raise ValueError("code cannot be null")
        if self.code is not None and re.fullmatch(r".*-\d+", self.code):
            raise ValueError("a code may not end in -<number>: those name a live's other codes")
        if "window_h" in self.model_fields_set and self.window_h is None:
            raise ValueError("window_h cannot be null")
        return self


class ShopCouponPublic(BaseModel):
    """One coupon (discount code) of the offer, as the shop was last told."""

    code: str
    source: Source
    products: int
    active: bool
    state: str = Field(description="synced, pending (being sent) or failing (retried)")
    last_error: str | None
    next_attempt_at: datetime | None
    synced_at: datetime | None


class OfferPublic(BaseModel):
    stream_id: UUID
    code: str | None
    code_chosen: bool
    percent_off: Decimal | None
    window_h: float
    usage_limit: int | None
    usage_limit_per_user: int | None
    status: str = Field(description="pending (until the live starts), open, closed")
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    coupons: list[ShopCouponPublic]
    problem: str | None = Field(description="why the shop does not hold the offer yet, if so")
