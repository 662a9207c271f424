"""What the products service's HTTP API reads and answers."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self
from uuid import UUID

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

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


class ProductPage(BaseModel):
    items: list[ProductPublic]
    total: int


class WooCommerceWrite(_Input):
    url: Url
    # Left out or sent back masked: the stored value stays.
    consumer_key: Annotated[str, Field(max_length=256)] | None = None
    consumer_secret: Annotated[str, Field(max_length=256)] | None = None


class CatalogSettingsWrite(_Input):
    source: Source
    woocommerce: WooCommerceWrite | None = None
    checkout_url_template: UrlTemplate | None = Field(
        default=None,
        description="a URL with `{items}`, e.g. https://shop.example/checkout?items={items}",
    )


class WooCommerceRead(BaseModel):
    url: str
    consumer_key: str | None = Field(description="masked")
    consumer_secret: str | None = Field(description="masked")


class CatalogSettingsRead(BaseModel):
    source: Source
    woocommerce: WooCommerceRead | None = None
    checkout_url_template: str | None = None
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


class CartItemAdd(_Input):
    stream_id: UUID
    product_id: UUID
    quantity: Annotated[int, Field(ge=1, le=QUANTITY_MAX)]
    session_id: SessionId


class CartLinePublic(BaseModel):
    product_id: UUID
    name: str
    quantity: int
    unit_price: Decimal
    currency: str
    stream_id: UUID


class CartPublic(BaseModel):
    id: UUID | None
    lines: list[CartLinePublic]
    total: Decimal
    currency: str | None
    checkout_url: str | None
