"""Use cases of a live's showcase: its products, their order, the featured one and its history.

Every change locks the live's row first, so that concurrent admins queue up (featuring one product
un-features the previous one atomically), and records its events in the same transaction.
Viewers hear of visible products only; a hidden one is for admins' eyes.
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.products import (
    LiveProduct,
    ProductAdded,
    ProductFeatured,
    ProductRemoved,
    ProductUnfeatured,
    ProductUpdated,
)
from contracts.streams import StreamStatus
from services.products import offers
from services.products.cards import card, live_status, lock_live, public_card
from services.products.catalog import close_featured_period, get_product
from services.products.catalog_settings import Deps
from services.products.domain import offset_s, promo_code_readable
from services.products.models import FeaturedPeriod, Live, LiveStreamProduct, Product
from services.products.schemas import FeaturedPeriodPublic, LiveProductWrite


class NotInLive(Exception):
    """The product is not in this live's showcase (or not one the caller may see)."""


class NothingFeatured(Exception):
    """No product of the live is featured."""


class HiddenProductCannotBeFeatured(Exception):
    """Featuring shows a product to every viewer: make it visible first."""


class LiveOver(Exception):
    """The live has ended: nothing more can be added to it or presented in it."""


class WrongOrder(ValueError):
    """A new order must list each product of the live exactly once."""


def _now() -> datetime:
    return datetime.now(UTC)


def _showcase(stream_id: UUID) -> sa.Select:
    return (
        sa.select(LiveStreamProduct, Product)
        .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
        .where(col(LiveStreamProduct.stream_id) == stream_id)
        .order_by(
            col(LiveStreamProduct.position),
            col(LiveStreamProduct.created_at),
            col(LiveStreamProduct.product_id),
        )
    )


async def list_live_products(
    *, session: AsyncSession, stream_id: UUID, admin: bool
) -> list[LiveProduct]:
    """The live's products in order; hidden ones and unreadable promo codes for admins only."""
    live = await live_status(session, stream_id)
    readable = promo_code_readable(live.status, admin=admin)
    query = _showcase(stream_id)
    if not admin:
        query = query.where(col(LiveStreamProduct.visible))
    rows = (await session.execute(query)).all()
    return [card(item, product, live=live, promo_readable=readable) for item, product in rows]


async def featured_product(*, session: AsyncSession, stream_id: UUID, admin: bool) -> LiveProduct:
    live = await live_status(session, stream_id)
    row = (
        await session.execute(_showcase(stream_id).where(col(LiveStreamProduct.is_featured)))
    ).first()
    if row is None:
        raise NothingFeatured(stream_id)
    readable = promo_code_readable(live.status, admin=admin)
    return card(row[0], row[1], live=live, promo_readable=readable)


async def _item(session: AsyncSession, stream_id: UUID, product_id: UUID) -> LiveStreamProduct:
    item = await session.get(LiveStreamProduct, (stream_id, product_id), populate_existing=True)
    if item is None:
        raise NotInLive(product_id)
    return item


async def put_live_product(
    *, session: AsyncSession, deps: Deps, stream_id: UUID, data: LiveProductWrite
) -> tuple[LiveProduct, bool]:
    """Add a product to the live, or change it there. Returns its card and whether it was added."""
    # Before the live's lock: refreshing a stale shop product commits on its own.
    product = await get_product(session=session, deps=deps, product_id=data.product_id)
    live = await lock_live(session, stream_id)
    sent = data.model_fields_set
    item = await session.get(LiveStreamProduct, (stream_id, product.id), populate_existing=True)
    added = item is None
    if live.status is StreamStatus.ENDED and (added or data.is_featured):
        raise LiveOver(stream_id)
    if item is None:
        position = (
            data.position if data.position is not None else await _next_position(session, stream_id)
        )
        item = LiveStreamProduct(
            stream_id=stream_id, product_id=product.id, position=position, visible=False
        )
        session.add(item)
        was_visible, before = False, None
    else:
        was_visible, before = item.visible, card(item, product, live=live, promo_readable=True)
    if "special_price" in sent:
        item.special_price = data.special_price
    if "promo_code" in sent:
        item.promo_code = data.promo_code
    if data.position is not None:
        item.position = data.position
    if data.visible is not None or added:
        item.visible = data.visible if data.visible is not None else True
    if data.is_featured and not item.visible:
        raise HiddenProductCannotBeFeatured(product.id)
    item.updated_at = _now()
    await session.flush()

    if item.visible and not was_visible:
        await deps.outbox.record(
            session,
            ProductAdded(product=public_card(item, product, live=live)),
            stream_id=stream_id,
        )
    elif was_visible and not item.visible:
        if item.is_featured:
            await _unfeature(session, deps=deps, live=live, item=item)
        await deps.outbox.record(
            session, ProductRemoved(product_id=product.id), stream_id=stream_id
        )
    elif item.visible and before != card(item, product, live=live, promo_readable=True):
        await deps.outbox.record(
            session,
            ProductUpdated(product=public_card(item, product, live=live)),
            stream_id=stream_id,
        )
    if data.is_featured is True and not item.is_featured:
        await _feature(session, deps=deps, live=live, item=item, product=product)
    elif data.is_featured is False and item.is_featured:
        await _unfeature(session, deps=deps, live=live, item=item)
    await offers.showcase_changed(session, outbox=deps.outbox, live=live)
    await session.commit()
    return card(item, product, live=live, promo_readable=True), added


async def _next_position(session: AsyncSession, stream_id: UUID) -> int:
    last = (
        await session.execute(
            sa.select(sa.func.max(LiveStreamProduct.position)).where(
                col(LiveStreamProduct.stream_id) == stream_id
            )
        )
    ).scalar_one_or_none()
    return 0 if last is None else last + 1


async def remove_live_product(
    *, session: AsyncSession, deps: Deps, stream_id: UUID, product_id: UUID
) -> None:
    live = await lock_live(session, stream_id)
    item = await _item(session, stream_id, product_id)
    if item.is_featured:
        await _unfeature(session, deps=deps, live=live, item=item)
    if item.visible:
        await deps.outbox.record(
            session, ProductRemoved(product_id=product_id), stream_id=stream_id
        )
    await session.delete(item)
    await offers.showcase_changed(session, outbox=deps.outbox, live=live)
    await session.commit()


async def reorder(
    *, session: AsyncSession, deps: Deps, stream_id: UUID, product_ids: list[UUID]
) -> list[LiveProduct]:
    """Put the live's products in the order given (each product of the live exactly once)."""
    live = await lock_live(session, stream_id)
    rows = (await session.execute(_showcase(stream_id))).all()
    if len(set(product_ids)) != len(product_ids) or set(product_ids) != {
        item.product_id for item, _ in rows
    }:
        raise WrongOrder("product_ids must list each product of the live exactly once")
    positions = {product_id: index for index, product_id in enumerate(product_ids)}
    for item, product in rows:
        if item.position == positions[item.product_id]:
            continue
        item.position = positions[item.product_id]
        item.updated_at = _now()
        if item.visible:
            await deps.outbox.record(
                session,
                ProductUpdated(product=public_card(item, product, live=live)),
                stream_id=stream_id,
            )
    await session.commit()
    ordered = sorted(rows, key=lambda row: row[0].position)
    return [card(item, product, live=live, promo_readable=True) for item, product in ordered]


async def feature(
    *, session: AsyncSession, deps: Deps, stream_id: UUID, product_id: UUID
) -> LiveProduct:
    """Present a product; the one presented before, if any, is not any more."""
    live = await lock_live(session, stream_id)
    item = await _item(session, stream_id, product_id)
    product = await session.get(Product, product_id)
    assert product is not None  # the foreign key holds it
    if live.status is StreamStatus.ENDED:
        raise LiveOver(stream_id)
    if not item.visible:
        raise HiddenProductCannotBeFeatured(product_id)
    if not item.is_featured:
        await _feature(session, deps=deps, live=live, item=item, product=product)
    await session.commit()
    return card(item, product, live=live, promo_readable=True)


async def unfeature(*, session: AsyncSession, deps: Deps, stream_id: UUID) -> None:
    """Present nothing (already nothing: nothing changes)."""
    live = await lock_live(session, stream_id)
    item = (
        await session.execute(
            sa.select(LiveStreamProduct).where(
                col(LiveStreamProduct.stream_id) == stream_id, col(LiveStreamProduct.is_featured)
            )
        )
    ).scalar_one_or_none()
    if item is not None:
        await _unfeature(session, deps=deps, live=live, item=item)
    await session.commit()


async def _feature(
    session: AsyncSession, *, deps: Deps, live: Live, item: LiveStreamProduct, product: Product
) -> None:
    previous = (
        await session.execute(
            sa.select(LiveStreamProduct)
            .where(
                col(LiveStreamProduct.stream_id) == live.stream_id,
                col(LiveStreamProduct.is_featured),
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    now = _now()
    if previous is not None:
        previous.is_featured = False
        previous.updated_at = now
        # The previous one steps down before the new one steps up (one featured per live).
        await session.flush()
        await close_featured_period(session, stream_id=live.stream_id)
    item.is_featured = True
    item.updated_at = now
    await session.flush()
    session.add(FeaturedPeriod(stream_id=live.stream_id, product_id=product.id, name=product.name))
    await deps.outbox.record(
        session,
        ProductFeatured(
            product=public_card(item, product, live=live),
            previous_product_id=previous.product_id if previous is not None else None,
        ),
        stream_id=live.stream_id,
    )


async def _unfeature(
    session: AsyncSession, *, deps: Deps, live: Live, item: LiveStreamProduct
) -> None:
    item.is_featured = False
    item.updated_at = _now()
    await session.flush()
    await close_featured_period(session, stream_id=live.stream_id)
    await deps.outbox.record(
        session, ProductUnfeatured(product_id=item.product_id), stream_id=live.stream_id
    )


async def featured_history(
    *, session: AsyncSession, stream_id: UUID, admin: bool = True
) -> list[FeaturedPeriodPublic]:
    """Which product was presented from when to when, in seconds from the live's start. Viewers
    see only the products still shown in the live (a hidden or removed one is the admin's)."""
    live = await live_status(session, stream_id)
    query = (
        sa.select(FeaturedPeriod)
        .where(col(FeaturedPeriod.stream_id) == stream_id)
        .order_by(col(FeaturedPeriod.featured_at), col(FeaturedPeriod.id))
    )
    if not admin:
        shown = sa.select(col(LiveStreamProduct.product_id)).where(
            col(LiveStreamProduct.stream_id) == stream_id, col(LiveStreamProduct.visible)
        )
        query = query.where(col(FeaturedPeriod.product_id).in_(shown))
    periods = (await session.execute(query)).scalars()
    return [
        FeaturedPeriodPublic(
            product_id=period.product_id,
            name=period.name,
            featured_at=period.featured_at,
            unfeatured_at=period.unfeatured_at,
            from_offset_s=offset_s(live.started_at, period.featured_at),
            to_offset_s=offset_s(live.started_at, period.unfeatured_at),
        )
        for period in periods
    ]
