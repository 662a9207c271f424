"""A live's offer: the code that makes its live prices real in the shop, from the live's start
until its window after the end runs out.

Every change to an offer happens under the live's lock (`lock_live`), like every change to its
showcase, and records what the shop should hold (`ShopCoupon` rows: spec and version) in the same
transaction; `coupon_sync` then tells the shop, retrying while it is away. So a live starts even
when the shop is down, and a restart or a second replica never makes a coupon twice.
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.outbox import Outbox
from contracts.products import LiveOffer as LiveOfferTerms
from contracts.products import OfferClosed, OfferOpened, OfferUpdated, ProductUpdated
from services.products import cart_coupons, domain
from services.products.cards import public_card
from services.products.catalog_settings import offer_window_s
from services.products.models import (
    SETTINGS_ROW_ID,
    SHOP_SOURCES,
    CatalogSettings,
    Live,
    LiveOffer,
    LiveStreamProduct,
    OfferStatus,
    Product,
    ShopCoupon,
    Source,
)
from services.products.shops import CouponSpec


class OfferOver(Exception):
    """The live's offer has closed: it cannot change any more."""


class CodeTaken(Exception):
    """Another live's offer has this code."""


def _now() -> datetime:
    return datetime.now(UTC)


async def offer_of(session: AsyncSession, stream_id: UUID) -> LiveOffer | None:
    return await session.get(LiveOffer, stream_id, populate_existing=True)


async def code_free(session: AsyncSession, code: str, *, stream_id: UUID) -> bool:
    """No other live's offer uses this code now (a closed one's may be taken again), nor does a
    coupon the shop still holds, or is still being told about, for another live."""
    other = await session.execute(
        sa.select(col(LiveOffer.stream_id)).where(
            col(LiveOffer.code) == code.upper(),
            col(LiveOffer.stream_id) != stream_id,
            col(LiveOffer.status) != OfferStatus.CLOSED,
        )
    )
    coupon = await session.execute(
        sa.select(col(ShopCoupon.id)).where(
            sa.func.upper(col(ShopCoupon.code)) == code.upper(),
            sa.or_(col(ShopCoupon.stream_id).is_(None), col(ShopCoupon.stream_id) != stream_id),
            sa.or_(
                col(ShopCoupon.active), col(ShopCoupon.synced_version) < col(ShopCoupon.version)
            ),
        )
    )
    return other.first() is None and coupon.first() is None


async def ensure_offer(session: AsyncSession, *, stream_id: UUID) -> LiveOffer:
    """The live's offer, made (pending, with a generated code) if it has none yet. The caller
    holds the live's lock."""
    offer = await offer_of(session, stream_id)
    if offer is not None:
        return offer
    window = await offer_window_s(session=session)
    while offer is None:  # a generated code taken meanwhile: another one
        code = domain.generated_code()
        if not await code_free(session, code, stream_id=stream_id):
            continue
        await session.execute(
            insert(LiveOffer)
            .values(
                stream_id=stream_id,
                code=code,
                window_s=window,
                status=OfferStatus.PENDING,
                updated_at=_now(),
            )
            .on_conflict_do_nothing()
        )
        offer = await offer_of(session, stream_id)
    return offer


async def _promo_code(session: AsyncSession, stream_id: UUID) -> str | None:
    """The first promo code shown on the live's products: the code viewers are told to type."""
    return (
        await session.execute(
            sa.select(col(LiveStreamProduct.promo_code))
            .where(
                col(LiveStreamProduct.stream_id) == stream_id,
                col(LiveStreamProduct.visible),
                col(LiveStreamProduct.promo_code).is_not(None),
            )
            .order_by(col(LiveStreamProduct.position), col(LiveStreamProduct.product_id))
            .limit(1)
        )
    ).scalar_one_or_none()


async def open_offer(session: AsyncSession, *, outbox: Outbox, live: Live) -> None:
    """The live started: its offer holds from now, in the shop and on viewers' cards."""
    offer = await ensure_offer(session, stream_id=live.stream_id)
    if offer.status is not OfferStatus.PENDING:
        return
    if not offer.code_chosen:
        promo = await _promo_code(session, live.stream_id)
        if (
            promo
            and domain.usable_code(promo)
            and await code_free(session, promo.upper(), stream_id=live.stream_id)
        ):
            offer.code = promo.upper()
    offer.status = OfferStatus.OPEN
    offer.opened_at = live.started_at or _now()
    offer.updated_at = _now()
    await place(session, outbox=outbox, live=live, offer=offer)
    await tell(session, outbox=outbox, live=live, offer=offer, opened=True)


async def live_ended(session: AsyncSession, *, outbox: Outbox, live: Live) -> None:
    """The live ended: its offer holds for its window more (replays sell at the live price)."""
    offer = await offer_of(session, live.stream_id)
    if offer is None or offer.status is not OfferStatus.OPEN:
        return
    ended = live.ended_at or _now()
    offer.closes_at = domain.offer_ends_at(
        started_at=live.started_at, ended_at=ended, window_s=offer.window_s, now=_now()
    )
    offer.updated_at = _now()
    if await place(session, outbox=outbox, live=live, offer=offer):
        await tell(session, outbox=outbox, live=live, offer=offer)


async def showcase_changed(session: AsyncSession, *, outbox: Outbox, live: Live) -> None:
    """A product of the live was added, removed, hidden or repriced: the shop follows."""
    offer = await offer_of(session, live.stream_id)
    if offer is None or offer.status is not OfferStatus.OPEN:
        return
    if await place(session, outbox=outbox, live=live, offer=offer):
        await tell(session, outbox=outbox, live=live, offer=offer)


async def close_offer(session: AsyncSession, *, outbox: Outbox, live: Live) -> None:
    """The window ran out (or the live is gone): the codes give nothing any more, and viewers'
    cards show the catalog price again."""
    offer = await offer_of(session, live.stream_id)
    if offer is None or offer.status is OfferStatus.CLOSED:
        return
    was_open = offer.status is OfferStatus.OPEN
    now = _now()
    offer.status = OfferStatus.CLOSED
    offer.closed_at = now
    offer.updated_at = now
    live.offer_closed_at = now
    await session.flush()
    await place(session, outbox=outbox, live=live, offer=offer)
    if not was_open or live.deleted_at is not None:
        return
    if (await terms(session, live=live, offer=offer)).product_ids:
        await outbox.record(
            session, OfferClosed(code=offer.code, closed_at=now), stream_id=live.stream_id
        )
    rows = (
        await session.execute(
            sa.select(LiveStreamProduct, Product)
            .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
            .where(
                col(LiveStreamProduct.stream_id) == live.stream_id,
                col(LiveStreamProduct.visible),
                # A percentage gave every product a live price; else only the special ones had.
                sa.or_(
                    col(LiveStreamProduct.special_price).is_not(None),
                    sa.literal(live.offer_percent_off is not None),
                ),
            )
            .order_by(col(LiveStreamProduct.position), col(LiveStreamProduct.product_id))
        )
    ).all()
    for item, product in rows:
        await outbox.record(
            session,
            ProductUpdated(product=public_card(item, product, live=live)),
            stream_id=live.stream_id,
        )


async def _shop_items(
    session: AsyncSession, *, stream_id: UUID, source: Source
) -> list[tuple[LiveStreamProduct, Product]]:
    return list(
        (
            await session.execute(
                sa.select(LiveStreamProduct, Product)
                .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
                .where(
                    col(LiveStreamProduct.stream_id) == stream_id,
                    col(LiveStreamProduct.visible),
                    col(Product.source) == source,
                    col(Product.external_id).is_not(None),
                )
                .order_by(col(Product.external_id))
            )
        ).all()
    )


async def _active_source(session: AsyncSession) -> Source | None:
    row = await session.get(CatalogSettings, SETTINGS_ROW_ID)
    return row.source if row is not None and row.source in SHOP_SOURCES else None


def _ends_at(live: Live, offer: LiveOffer) -> datetime:
    if offer.closes_at is not None:
        return offer.closes_at
    return domain.offer_ends_at(
        started_at=live.started_at, ended_at=live.ended_at, window_s=offer.window_s, now=_now()
    )


async def desired_specs(
    session: AsyncSession, *, live: Live, offer: LiveOffer, source: Source
) -> dict[str, tuple[str, CouponSpec]]:
    """Code → (group key, coupon) the shop should hold for this live now."""
    if offer.status is not OfferStatus.OPEN:
        return {}
    rows = await _shop_items(session, stream_id=live.stream_id, source=source)
    by_external = {product.external_id: product for _, product in rows}
    groups = domain.coupon_groups(
        code=offer.code,
        percent_off=offer.percent_off,
        items=[
            domain.OfferItem(
                external_id=product.external_id or "",
                parent_id=product.external_parent_id,
                price=product.price,
                live_price=item.special_price,
            )
            for item, product in rows
        ],
    )
    specs = {}
    for group in groups:
        parents = {by_external[i.external_id].external_parent_id for i in group.items}
        specs[group.code] = (
            group.key,
            CouponSpec(
                code=group.code,
                title=f"Vitrine live {live.stream_id}",
                product_ids=tuple(i.external_id for i in group.items),
                parent_ids=tuple(sorted(p for p in parents if p)),
                amount_off=group.amount_off,
                percent_off=group.percent_off,
                starts_at=offer.opened_at,
                ends_at=_ends_at(live, offer),
                usage_limit=offer.usage_limit,
                usage_limit_per_user=offer.usage_limit_per_user,
            ),
        )
    return specs


async def place(session: AsyncSession, *, outbox: Outbox, live: Live, offer: LiveOffer) -> bool:
    """Record what the shop should hold for the live's offer; whether anything changed."""
    await session.flush()
    source = await _active_source(session)
    desired = await desired_specs(session, live=live, offer=offer, source=source) if source else {}
    existing = {
        (row.source, row.code): row
        for row in (
            await session.execute(
                sa.select(ShopCoupon)
                .where(
                    col(ShopCoupon.stream_id) == live.stream_id, col(ShopCoupon.cart_id).is_(None)
                )
                .order_by(col(ShopCoupon.code))
                .with_for_update()
            )
        ).scalars()
    }
    changed = False
    for code, (group_key, spec) in desired.items():
        assert source is not None
        row = existing.pop((source, code), None)
        if row is None:
            # A closed live's coupon of this code, withdrawn from the shop: this live takes the
            # code over (its row goes; a pending withdrawal keeps it, and the code, a while).
            await session.execute(
                sa.delete(ShopCoupon).where(
                    col(ShopCoupon.source) == source,
                    col(ShopCoupon.code) == code,
                    col(ShopCoupon.stream_id) != live.stream_id,
                    sa.not_(col(ShopCoupon.active)),
                    col(ShopCoupon.synced_version) >= col(ShopCoupon.version),
                )
            )
            session.add(
                ShopCoupon(
                    source=source,
                    code=code,
                    stream_id=live.stream_id,
                    group_key=group_key,
                    spec=spec.as_json(),
                )
            )
            changed = True
        elif row.want(spec.as_json(), active=True):
            row.group_key = group_key
            changed = True
    for row in existing.values():  # no longer wanted: withdrawn from the shop
        if row.active:
            row.want(row.spec, active=False)
            changed = True
    await session.flush()
    await cart_coupons.follow_offer(session, stream_id=live.stream_id)
    return changed


async def tell(
    session: AsyncSession, *, outbox: Outbox, live: Live, offer: LiveOffer, opened: bool = False
) -> None:
    """Say on the bus what the offer now covers (`offer.opened` at the start, then
    `offer.updated`); an offer covering no product yet has nothing to say."""
    covered = await terms(session, live=live, offer=offer)
    if not covered.product_ids:
        return
    event = OfferOpened(offer=covered) if opened else OfferUpdated(offer=covered)
    await outbox.record(session, event, stream_id=live.stream_id)


async def terms(session: AsyncSession, *, live: Live, offer: LiveOffer) -> LiveOfferTerms:
    """The offer as its events tell it: the products with a live price it covers."""
    covered = (
        await session.execute(
            sa.select(col(LiveStreamProduct.product_id))
            .where(
                col(LiveStreamProduct.stream_id) == live.stream_id,
                col(LiveStreamProduct.visible),
                sa.or_(
                    col(LiveStreamProduct.special_price).is_not(None),
                    sa.literal(offer.percent_off is not None),
                ),
            )
            .order_by(col(LiveStreamProduct.product_id))
        )
    ).scalars()
    return LiveOfferTerms(
        code=offer.code,
        percent_off=offer.percent_off,
        product_ids=list(covered),
        starts_at=offer.opened_at,
        ends_at=offer.closes_at,
    )


async def product_changed(session: AsyncSession, *, outbox: Outbox, product_id: UUID) -> None:
    """A product's catalog price changed: the open offers showing it follow (a coupon takes the
    difference to the live price off). The caller holds the product's row."""
    lives = (
        await session.execute(
            sa.select(Live)
            .join(LiveStreamProduct, col(LiveStreamProduct.stream_id) == col(Live.stream_id))
            .join(LiveOffer, col(LiveOffer.stream_id) == col(Live.stream_id))
            .where(
                col(LiveStreamProduct.product_id) == product_id,
                col(LiveOffer.status) == OfferStatus.OPEN,
            )
            .order_by(col(Live.stream_id))
            .with_for_update(of=Live)
        )
    ).scalars()
    for live in list(lives):
        await showcase_changed(session, outbox=outbox, live=live)
