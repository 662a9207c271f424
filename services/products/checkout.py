"""Where a viewer pays for their cart: the shop's checkout link for every line, with the codes
that give the live prices and what credits the order back to the live.

- WooCommerce: the shareable checkout link (`/checkout-link/?products=ID:QTY,…&coupon=CODE`,
  WooCommerce 9.9+). It takes one coupon: when the cart needs more than one (products with
  different discounts, or from several lives), the cart gets a coupon of its own, worth the
  cart's whole discount, usable once. An older shop takes `checkout_url_template` instead.
- Shopify: a cart permalink with every live code that applies (they combine).
- The local catalog: `checkout_url_template`, or no link (and the reason says what to set).

Lines are priced as the live's offer stands now: a line added at the live price goes back to
the catalog price once the offer has closed.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.products import domain
from services.products.cards import price_in_live
from services.products.catalog_settings import NO_CHECKOUT, Deps, shop_of
from services.products.models import (
    SETTINGS_ROW_ID,
    SHOP_SOURCES,
    Cart,
    CartLine,
    CatalogSettings,
    Live,
    LiveOffer,
    LiveStreamProduct,
    OfferStatus,
    Product,
    ShopCoupon,
    Source,
)
from services.products.offers import changed_spec
from services.products.shops import Attribution, CheckoutLine, CouponSpec


@dataclass(frozen=True)
class LinePrice:
    unit_price: Decimal
    regular_price: Decimal


@dataclass(frozen=True)
class CartCheckout:
    url: str | None
    codes: list[str]
    # Why there is no link (a local catalog without a checkout template), for the page to say.
    missing: str | None = None
    # (live, product) → the line's price now, and the catalog's.
    prices: dict[tuple[UUID, UUID], LinePrice] = field(default_factory=dict)


@dataclass(frozen=True)
class _Line:
    line: CartLine
    product: Product | None
    live: Live | None
    offer: LiveOffer | None
    price: LinePrice


async def _priced(session: AsyncSession, lines: list[CartLine]) -> list[_Line]:
    if not lines:
        return []
    products = {
        p.id: p
        for p in (
            await session.execute(
                sa.select(Product).where(col(Product.id).in_({ln.product_id for ln in lines}))
            )
        ).scalars()
    }
    streams = {ln.stream_id for ln in lines}
    lives = {
        live.stream_id: live
        for live in (
            await session.execute(sa.select(Live).where(col(Live.stream_id).in_(streams)))
        ).scalars()
    }
    offers = {
        offer.stream_id: offer
        for offer in (
            await session.execute(sa.select(LiveOffer).where(col(LiveOffer.stream_id).in_(streams)))
        ).scalars()
    }
    items = {
        (item.stream_id, item.product_id): item
        for item in (
            await session.execute(
                sa.select(LiveStreamProduct).where(
                    sa.tuple_(
                        col(LiveStreamProduct.stream_id), col(LiveStreamProduct.product_id)
                    ).in_([(ln.stream_id, ln.product_id) for ln in lines])
                )
            )
        ).scalars()
    }
    priced = []
    for ln in lines:
        product, live = products.get(ln.product_id), lives.get(ln.stream_id)
        item = items.get((ln.stream_id, ln.product_id))
        regular = product.price if product is not None else (ln.regular_price or ln.unit_price)
        unit = regular
        if product is not None and live is not None and item is not None:
            found = price_in_live(item, product, live)
            unit = found if found is not None else regular  # a live price of 0.00 is one
        elif product is None:  # gone from the catalog: as it was when added
            unit = ln.unit_price
        priced.append(_Line(ln, product, live, offers.get(ln.stream_id), LinePrice(unit, regular)))
    return priced


async def cart_checkout(
    session: AsyncSession, *, deps: Deps, cart: Cart, lines: list[CartLine]
) -> CartCheckout:
    """The cart's checkout link and codes, and each line's price now. A WooCommerce cart that
    needs a coupon of its own has it recorded here (the shop is told in the background): the
    caller commits."""
    priced = await _priced(session, lines)
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
    codes = await _live_codes(session, source=source, lines=paying)
    if source is Source.WOOCOMMERCE:
        codes = await _one_coupon(session, deps=deps, cart=cart, lines=paying, codes=codes)
    url = shop.checkout_url(lines=checkout_lines, codes=codes, attribution=attribution)
    return CartCheckout(url=url, codes=codes, prices=prices)


def _by_template(
    priced: list[_Line],
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


def _discounted(p: _Line) -> bool:
    return p.price.unit_price < p.price.regular_price


async def _live_codes(session: AsyncSession, *, source: Source, lines: list[_Line]) -> list[str]:
    """The live coupons that give these lines their live price, in the lines' order."""
    wanted = [p for p in lines if _discounted(p)]
    if not wanted:
        return []
    rows = (
        await session.execute(
            sa.select(ShopCoupon).where(
                col(ShopCoupon.source) == source,
                col(ShopCoupon.active),
                col(ShopCoupon.cart_id).is_(None),
                col(ShopCoupon.stream_id).in_({p.line.stream_id for p in wanted}),
            )
        )
    ).scalars()
    covering = {
        (row.stream_id, external_id): row.code
        for row in rows
        for external_id in row.spec.get("product_ids", [])
    }
    codes: list[str] = []
    for p in wanted:
        code = covering.get((p.line.stream_id, p.product.external_id if p.product else None))
        if code is not None and code not in codes:
            codes.append(code)
    return codes


async def _one_coupon(
    session: AsyncSession, *, deps: Deps, cart: Cart, lines: list[_Line], codes: list[str]
) -> list[str]:
    """WooCommerce's link takes one coupon: a cart needing several gets one of its own."""
    row = await _cart_coupon(session, cart.id)
    if len(codes) <= 1:
        if row is not None and row.active:
            changed_spec(row, CouponSpec.from_json(row.spec), active=False)
            await session.flush()
        return codes
    discounted = [p for p in lines if _discounted(p)]
    amount = sum(
        ((p.price.regular_price - p.price.unit_price) * p.line.quantity for p in discounted),
        Decimal("0.00"),
    )
    ends = [_closes(p) for p in discounted]
    code = domain.cart_coupon_code(
        key=deps.settings.vitrine_secret_key.get_secret_value().encode(), cart_id=cart.id
    )
    spec = CouponSpec(
        code=code,
        title=f"Vitrine cart {cart.id}",
        product_ids=tuple(
            sorted({p.product.external_id for p in lines if p.product and p.product.external_id})
        ),
        cart_amount_off=amount,
        minimum_spend=sum(
            (p.price.regular_price * p.line.quantity for p in lines), Decimal("0.00")
        ),
        ends_at=min(e for e in ends if e is not None) if any(ends) else None,
        usage_limit=1,
    )
    if row is None:
        now = datetime.now(UTC)
        await session.execute(
            insert(ShopCoupon)
            .values(
                id=uuid4(), source=Source.WOOCOMMERCE, code=code, cart_id=cart.id,
                spec=spec.as_json(), active=True, version=1, synced_version=0, attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now,
            )
            .on_conflict_do_nothing()
        )  # fmt: skip
        row = await _cart_coupon(session, cart.id)
        assert row is not None
    changed_spec(row, spec, active=True)
    await session.flush()
    return [code]


async def _cart_coupon(session: AsyncSession, cart_id: UUID) -> ShopCoupon | None:
    return (
        await session.execute(
            sa.select(ShopCoupon)
            .where(col(ShopCoupon.cart_id) == cart_id, col(ShopCoupon.source) == Source.WOOCOMMERCE)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


def _closes(p: _Line) -> datetime | None:
    if p.offer is None or p.live is None:
        return None
    if p.offer.closes_at is not None:
        return p.offer.closes_at
    return domain.offer_ends_at(
        started_at=p.live.started_at,
        ended_at=p.live.ended_at,
        window_s=p.offer.window_s,
        now=p.line.created_at,
    )
