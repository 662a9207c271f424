"""A cart's lines priced as their lives' offers stand now, the live codes that give those prices
in the shop, and a WooCommerce cart's coupon of its own.

WooCommerce's checkout link takes one coupon: a cart needing several (products with different
discounts, or from several lives) gets one of its own, worth the cart's whole discount, usable
once, ending when the first of its offers does. It follows its lives' offers as they change
(`follow_offer`), so a closed offer's price is never redeemable through a cart's coupon.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.products import domain
from services.products.cards import price_to_pay
from services.products.models import (
    CartLine,
    Live,
    LiveOffer,
    LiveStreamProduct,
    Product,
    ShopCoupon,
    Source,
)
from services.products.shops import CouponSpec


@dataclass(frozen=True)
class LinePrice:
    unit_price: Decimal
    regular_price: Decimal


@dataclass(frozen=True)
class PricedLine:
    line: CartLine
    product: Product | None
    live: Live | None
    offer: LiveOffer | None
    price: LinePrice

    @property
    def discounted(self) -> bool:
        return self.price.unit_price < self.price.regular_price


async def priced_lines(session: AsyncSession, lines: list[CartLine]) -> list[PricedLine]:
    """Each line at what it costs now (`price_to_pay`); a product gone from the catalog or the
    live keeps the price it was added at."""
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
            unit = price_to_pay(item, product, live)
        elif product is None:  # gone from the catalog: as it was when added
            unit = ln.unit_price
        priced.append(
            PricedLine(ln, product, live, offers.get(ln.stream_id), LinePrice(unit, regular))
        )
    return priced


async def live_codes(
    session: AsyncSession, *, source: Source, lines: list[PricedLine]
) -> list[str]:
    """The live coupons that give these lines their live price, in the lines' order."""
    wanted = [p for p in lines if p.discounted]
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


async def one_coupon(
    session: AsyncSession, *, cart_id: UUID, code: str, lines: list[PricedLine], codes: list[str]
) -> list[str]:
    """The one code for WooCommerce's link: the live's, or the cart's own (`code`) when the lines
    need several; the cart's own coupon is withdrawn once one code is enough."""
    if len(codes) <= 1:
        await withdraw_cart_coupon(session, cart_id)
        return codes
    discounted = [p for p in lines if p.discounted]
    ends = [_closes(p) for p in discounted]
    spec = CouponSpec(
        code=code,
        title=f"Vitrine cart {cart_id}",
        product_ids=tuple(
            sorted({p.product.external_id for p in lines if p.product and p.product.external_id})
        ),
        cart_amount_off=sum(
            ((p.price.regular_price - p.price.unit_price) * p.line.quantity for p in discounted),
            Decimal("0.00"),
        ),
        minimum_spend=sum(
            (p.price.regular_price * p.line.quantity for p in lines), Decimal("0.00")
        ),
        ends_at=min(e for e in ends if e is not None) if any(ends) else None,
        usage_limit=1,
    )
    row = await _cart_coupon(session, cart_id)
    if row is None:
        now = datetime.now(UTC)
        await session.execute(
            insert(ShopCoupon)
            .values(
                id=uuid4(), source=Source.WOOCOMMERCE, code=code, cart_id=cart_id,
                spec=spec.as_json(), active=True, version=1, synced_version=0, attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now,
            )
            .on_conflict_do_nothing()
        )  # fmt: skip
        row = await _cart_coupon(session, cart_id)
        assert row is not None
    row.want(spec.as_json(), active=True)
    await session.flush()
    return [code]


async def follow_offer(session: AsyncSession, *, stream_id: UUID) -> None:
    """A live's offer changed (a price, its window, its close): the carts' own coupons that give
    one of its prices follow now, not when their cart is next shown. The live's coupon rows are
    already as wanted (flushed by the caller, who holds the live's lock).

    Each cart coupon is locked before its lines are read (a cart changed meanwhile is seen as it
    is now), all at once in one order, and one held by another transaction is skipped, never
    waited for: that transaction is re-deriving it, and a wait here, under the live's lock,
    could close a cycle with one holding another live of the same cart."""
    holding = sa.select(col(CartLine.cart_id)).where(col(CartLine.stream_id) == stream_id)
    rows = (
        await session.execute(
            sa.select(ShopCoupon)
            .where(col(ShopCoupon.cart_id).in_(holding), col(ShopCoupon.active))
            .order_by(col(ShopCoupon.cart_id))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalars()
    for row in list(rows):
        assert row.cart_id is not None
        lines = list(
            (
                await session.execute(
                    sa.select(CartLine).where(col(CartLine.cart_id) == row.cart_id)
                )
            ).scalars()
        )
        paying = [
            p
            for p in await priced_lines(session, lines)
            if p.product is not None and p.product.source is Source.WOOCOMMERCE
        ]
        codes = await live_codes(session, source=Source.WOOCOMMERCE, lines=paying)
        await one_coupon(session, cart_id=row.cart_id, code=row.code, lines=paying, codes=codes)


async def withdraw_cart_coupon(session: AsyncSession, cart_id: UUID) -> None:
    """The cart's own coupon gives nothing any more (one code is enough, or the cart is going:
    claimed into a user's)."""
    row = await _cart_coupon(session, cart_id)
    if row is not None and row.active:
        row.want(row.spec, active=False)
        await session.flush()


async def _cart_coupon(session: AsyncSession, cart_id: UUID) -> ShopCoupon | None:
    return (
        await session.execute(
            sa.select(ShopCoupon)
            .where(col(ShopCoupon.cart_id) == cart_id, col(ShopCoupon.source) == Source.WOOCOMMERCE)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


def _closes(p: PricedLine) -> datetime | None:
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
