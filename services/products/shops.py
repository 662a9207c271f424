"""What every shop adapter (WooCommerce, Shopify) offers the products service: its catalog, the
coupons or discount codes that make a live's prices real, and where a cart is paid."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class ShopUnavailable(Exception):
    """The shop did not answer, refused our credentials, or answered something unreadable."""


class ShopRefused(ShopUnavailable):
    """The shop answered but refused what was asked (a validation error, a code taken …)."""


@dataclass(frozen=True)
class ShopProduct:
    """A product as the shop describes it, already fitted to our catalog's limits. A variation
    (variant) is a product of its own: `external_id` is its id, `parent_id` its product's."""

    external_id: str
    name: str
    description: str | None
    price: Decimal
    images: list[str]
    stock: int | None
    product_url: str | None
    sku: str | None
    parent_id: str | None = None
    inventory_item_id: str | None = None
    currency: str | None = None  # when the shop names it per product (Shopify)


@dataclass(frozen=True)
class CouponSpec:
    """A coupon as the shop should hold it.

    `amount_off` is taken off each item of `product_ids` (WooCommerce `fixed_product`, Shopify
    `appliesOnEachItem`), `percent_off` off their price; `cart_amount_off` (a cart's coupon) off
    the cart once (WooCommerce `fixed_cart`). `product_ids` are the shop's ids (variation or
    variant ids), `parent_ids` their products' ids where the shop needs them."""

    code: str
    title: str
    product_ids: tuple[str, ...]
    amount_off: Decimal | None = None
    percent_off: Decimal | None = None
    cart_amount_off: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    usage_limit_per_user: int | None = None
    parent_ids: tuple[str, ...] = field(default_factory=tuple)
    # A cart's coupon holds only for a cart worth at least this (its lines at the catalog price):
    # lowering the quantities in the shop does not keep the whole discount.
    minimum_spend: Decimal | None = None

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "title": self.title,
            "product_ids": list(self.product_ids),
            "parent_ids": list(self.parent_ids),
            "amount_off": str(self.amount_off) if self.amount_off is not None else None,
            "percent_off": str(self.percent_off) if self.percent_off is not None else None,
            "cart_amount_off": (
                str(self.cart_amount_off) if self.cart_amount_off is not None else None
            ),
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "usage_limit": self.usage_limit,
            "usage_limit_per_user": self.usage_limit_per_user,
            "minimum_spend": str(self.minimum_spend) if self.minimum_spend is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> "CouponSpec":
        def money(key: str) -> Decimal | None:
            return Decimal(data[key]) if data.get(key) is not None else None

        def moment(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            code=data["code"],
            title=data["title"],
            product_ids=tuple(data["product_ids"]),
            parent_ids=tuple(data.get("parent_ids") or ()),
            amount_off=money("amount_off"),
            percent_off=money("percent_off"),
            cart_amount_off=money("cart_amount_off"),
            starts_at=moment("starts_at"),
            ends_at=moment("ends_at"),
            usage_limit=data.get("usage_limit"),
            usage_limit_per_user=data.get("usage_limit_per_user"),
            minimum_spend=money("minimum_spend"),
        )


@dataclass(frozen=True)
class CheckoutLine:
    """One line of a cart as the shop's checkout takes it."""

    external_id: str  # the shop's product, variation or variant id
    quantity: int


@dataclass(frozen=True)
class Attribution:
    """What lets an order be credited back to the live and the cart it came from."""

    stream_id: str
    cart_id: str


class Shop(Protocol):
    """A shop Vitrine sells through."""

    async def search(
        self, *, search: str | None, limit: int, offset: int
    ) -> tuple[list[ShopProduct], int]:
        """One page of the shop's published products (variations as products), and the total."""
        ...

    async def product(self, external_id: str) -> ShopProduct | None:
        """One product (or variation) by the shop's id; None once the shop no longer has it."""
        ...

    async def currency(self) -> str:
        """The shop's currency (ISO 4217)."""
        ...

    async def put_coupon(self, spec: CouponSpec, *, known_id: str | None) -> str:
        """Create the coupon, or bring it up to `spec`; returns the shop's id for it. Idempotent:
        a coupon of this code already in the shop (made by a run that died before noting its id)
        is updated, never made twice."""
        ...

    async def withdraw_coupon(self, *, code: str, known_id: str | None) -> None:
        """Make the code give nothing any more (WooCommerce: deleted; Shopify: deactivated).
        A coupon already gone is no error."""
        ...

    def checkout_url(
        self, *, lines: list[CheckoutLine], codes: list[str], attribution: Attribution
    ) -> str | None:
        """Where the viewer pays for these lines with these codes, attributed to the live."""
        ...
