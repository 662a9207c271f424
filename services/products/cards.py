"""A product of a live as its viewers' card shows it, and the live's copy of the live's status."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.outbox import Outbox
from contracts.products import LiveProduct, ProductUpdated
from contracts.streams import StreamStatus
from services.products.domain import live_price, promo_code_readable
from services.products.models import Live, LiveStreamProduct, Product


class StreamNotFound(Exception):
    """The live was deleted."""


def price_in_live(item: LiveStreamProduct, product: Product, live: Live) -> Decimal | None:
    """The product's live price as the live's offer stands (none once it has closed)."""
    return live_price(
        product.price,
        item.special_price,
        percent_off=live.offer_percent_off,
        offer_closed=live.offer_closed_at is not None,
    )


def price_to_pay(item: LiveStreamProduct, product: Product, live: Live) -> Decimal:
    """What a cart's line costs now: the live price from the live's start (when the shop is
    given the code that makes it real) until its offer closes, the catalog price otherwise."""
    started = live.status is not StreamStatus.SCHEDULED
    found = price_in_live(item, product, live) if started else None
    return found if found is not None else product.price  # a live price of 0.00 is one


def card(
    item: LiveStreamProduct, product: Product, *, live: Live, promo_readable: bool
) -> LiveProduct:
    """Everything a viewer's card needs; the promo code only once the caller may read it."""
    return LiveProduct(
        product_id=product.id,
        name=product.name,
        description=product.description,
        image_url=product.images[0] if product.images else None,
        price=product.price,
        currency=product.currency,
        live_price=price_in_live(item, product, live),
        promo_code=item.promo_code if promo_readable else None,
        product_url=product.product_url,
        stock=product.stock,
        position=item.position,
        is_featured=item.is_featured,
        visible=item.visible,
        external_id=product.external_id,
    )


def public_card(item: LiveStreamProduct, product: Product, *, live: Live) -> LiveProduct:
    """The card as events carry it to every viewer."""
    readable = promo_code_readable(live.status, admin=False)
    return card(item, product, live=live, promo_readable=readable)


async def live_status(session: AsyncSession, stream_id: UUID) -> Live:
    """The live as far as this service knows; one it has not heard of yet is scheduled."""
    live = await session.get(Live, stream_id)
    if live is not None and live.deleted_at is not None:
        raise StreamNotFound(stream_id)
    return live or Live(stream_id=stream_id, status=StreamStatus.SCHEDULED)


async def lock_live(session: AsyncSession, stream_id: UUID) -> Live:
    """The live's row, locked until commit: every change to a live's showcase queues up here."""
    await session.execute(
        insert(Live)
        .values(stream_id=stream_id, status=StreamStatus.SCHEDULED, updated_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )
    live = (
        await session.execute(
            sa.select(Live)
            .where(col(Live.stream_id) == stream_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if live.deleted_at is not None:
        raise StreamNotFound(stream_id)
    return live


async def announce_product_changed(
    session: AsyncSession, *, outbox: Outbox, product: Product
) -> None:
    """A catalog change (stock, price …) reaches the viewers of every live showing the product."""
    rows = (
        await session.execute(
            sa.select(LiveStreamProduct, Live)
            .join(Live, col(Live.stream_id) == col(LiveStreamProduct.stream_id))
            .where(
                col(LiveStreamProduct.product_id) == product.id,
                col(LiveStreamProduct.visible),
                col(Live.deleted_at).is_(None),
                col(Live.status) != StreamStatus.ENDED,
            )
            .order_by(col(LiveStreamProduct.stream_id))
        )
    ).all()
    for item, live in rows:
        await outbox.record(
            session,
            ProductUpdated(product=public_card(item, product, live=live)),
            stream_id=item.stream_id,
        )
