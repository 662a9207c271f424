"""Where a viewer pays for their cart: the shop's checkout link for every line, with the codes
that give the live prices and what credits the order back to the live.

- WooCommerce: the shareable checkout link (`/checkout-link/?products=ID:QTY,…&coupon=CODE`,
  WooCommerce 9.9+), with one coupon (`cart_coupons`). An older shop takes
  `checkout_url_template` instead.
- Shopify: a cart permalink with every live code that applies (they combine).
- The local catalog: `checkout_url_template`, or no link (and the reason says what to set).

Lines are priced as the live's offer stands now (`cart_coupons.priced_lines`): a line added
at the live price goes back to the catalog price once the offer has closed.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.products import domain
from services.products.cart_coupons import (
    LinePrice,
    PricedLine,
    live_codes,
    one_coupon,
    priced_lines,
)
from services.products.catalog_settings import NO_CHECKOUT, Deps, shop_of
from services.products.models import (
    SETTINGS_ROW_ID,
    SHOP_SOURCES,
    Cart,
    CartLine,
    CatalogSettings,
    OfferStatus,
    Source,
)
from services.products.shops import Attribution, CheckoutLine


@dataclass(frozen=True)
class CartCheckout:
    url: str | None
    codes: list[str]
    # Why there is no link (a local catalog without a checkout template), for the page to say.
    missing: str | None = None
    # (live, product) → the line's price now, and the catalog's.
    prices: dict[tuple[UUID, UUID], LinePrice] = field(default_factory=dict)


async def cart_checkout(
    session: AsyncSession, *, deps: Deps, cart: Cart, lines: list[CartLine]
) -> CartCheckout:
    """The cart's checkout link and codes, and each line's price now. A WooCommerce cart that
    needs a coupon of its own has it recorded here (the shop is told in the background): the
    caller commits."""
    priced = await priced_lines(session, lines)
    prices = {(p.line.stream_id, p.line.product_id): p.price for p in priced}
    if not priced:
        return CartCheckout(url=None, codes=[], prices=prices)
    settings = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    latest = max(priced, key=lambda p: (p.line.created_at, str(p.line.stream_id)))
    attribution = Attribution(stream_id=str(latest.line.stream_id), cart_id=str(cart.id))
    template = settings.config.get("checkout_url_template") if settings else None
    source = settings.source if settings else Source.LOCAL
    shop = (
        shop_of(settings, source=source, deps=deps) if settings and source in SHOP_SOURCES else None
    )
    if shop is None or (source is Source.WOOCOMMERCE and template):
        return _by_template(priced, template=template, attribution=attribution, prices=prices)
    paying = [p for p in priced if p.product is not None and p.product.source is source]
    quantities: dict[str, int] = defaultdict(int)
    for p in paying:
        quantities[p.product.external_id or ""] += p.line.quantity  # type: ignore[union-attr]
    checkout_lines = [CheckoutLine(eid, qty) for eid, qty in quantities.items() if eid]
    codes = await live_codes(session, source=source, lines=paying)
    if source is Source.WOOCOMMERCE:
        key = deps.settings.vitrine_secret_key.get_secret_value().encode()
        code = domain.cart_coupon_code(key=key, cart_id=cart.id)
        codes = await one_coupon(session, cart_id=cart.id, code=code, lines=paying, codes=codes)
    url = shop.checkout_url(lines=checkout_lines, codes=codes, attribution=attribution)
    return CartCheckout(url=url, codes=codes, prices=prices)


def _by_template(
    priced: list[PricedLine],
    *,
    template: str | None,
    attribution: Attribution,
    prices: dict[tuple[UUID, UUID], LinePrice],
) -> CartCheckout:
    if template is None:
        return CartCheckout(url=None, codes=[], missing=NO_CHECKOUT, prices=prices)
    quantities: dict[str, int] = defaultdict(int)
    for p in priced:
        quantities[p.line.external_id or str(p.line.product_id)] += p.line.quantity
    latest = next(p for p in priced if str(p.line.stream_id) == attribution.stream_id)
    code = (
        latest.offer.code
        if latest.offer is not None and latest.offer.status is OfferStatus.OPEN
        else None
    )
    url = domain.fill_template(
        template,
        items=",".join(f"{ref}:{qty}" for ref, qty in quantities.items()),
        coupon=code,
        live=attribution.stream_id,
        cart=attribution.cart_id,
    )
    return CartCheckout(url=url, codes=[code] if code else [], prices=prices)
