"""Events of the products service: the live's showcase, clicks, carts and the live's offer."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import Field

from contracts.registry import Payload, event


class LiveProduct(Payload):
    """Everything a viewer's product card needs, so no viewer has to call back."""

    product_id: UUID
    name: str
    description: str | None = None
    image_url: str | None = None
    price: Decimal
    currency: str = Field(min_length=3, max_length=3)
    live_price: Decimal | None = None
    promo_code: str | None = None
    product_url: str | None = None
    stock: int | None = None
    position: int = 0
    is_featured: bool = False
    # Only admins ever see a hidden product (viewers' lists and events leave it out).
    visible: bool = True
    # The shop's id of the product (variation, variant), which its orders name; null if local.
    external_id: str | None = None


@event("product.added")
class ProductAdded(Payload):
    """A product joined the live's showcase."""

    product: LiveProduct


@event("product.updated")
class ProductUpdated(Payload):
    """A product of the live changed (price, live price, stock, position …)."""

    product: LiveProduct


@event("product.removed")
class ProductRemoved(Payload):
    """A product left the live's showcase."""

    product_id: UUID


@event("product.featured")
class ProductFeatured(Payload):
    """A product is now the one presented; the previous one, if any, is no longer featured."""

    product: LiveProduct
    previous_product_id: UUID | None = None


@event("product.unfeatured")
class ProductUnfeatured(Payload):
    """No product is presented any more."""

    product_id: UUID


@event("product.clicked")
class ProductClicked(Payload):
    """A viewer opened a product from the live."""

    product_id: UUID
    session_id: str
    user_id: str | None = None


@event("cart.added")
class CartAdded(Payload):
    """A viewer put a product of the live in their cart."""

    product_id: UUID
    quantity: int = Field(ge=1)
    cart_id: UUID
    session_id: str
    user_id: str | None = None
    unit_price: Decimal
    currency: str = Field(min_length=3, max_length=3)


class LiveOffer(Payload):
    """What a live's offer makes real in the shop: its code, the products it covers and until
    when it holds (`ends_at` null: until the live ends and its window runs out)."""

    code: str
    percent_off: Decimal | None = None
    product_ids: list[UUID] = Field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@event("offer.opened")
class OfferOpened(Payload):
    """The live's offer holds in the shop from now: its code gives the live's prices."""

    offer: LiveOffer


@event("offer.updated")
class OfferUpdated(Payload):
    """The live's offer changed (a live price, its products, its end)."""

    offer: LiveOffer


@event("offer.closed")
class OfferClosed(Payload):
    """The live's offer ended: its code no longer gives the live's prices."""

    code: str
    closed_at: datetime
