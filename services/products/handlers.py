"""Bus subscribers: the products service's copy of each live's status, fed by `stream.*` events.

Events may come twice (the consumer drops repeats), late or out of order: a live's status only
moves forward, and a deleted live stays deleted.
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.outbox import Outbox
from contracts import Envelope
from contracts.products import ProductUpdated
from contracts.streams import (
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamStatus,
    StreamUpdated,
)
from services.products import offers
from services.products.cards import StreamNotFound, lock_live, public_card
from services.products.models import FeaturedPeriod, Live, LiveStreamProduct, Product

StreamChange = StreamCreated | StreamUpdated | StreamStarted | StreamEnded


async def on_stream_event(session: AsyncSession, envelope: Envelope, *, outbox: Outbox) -> None:
    """Handle one `stream.*` event inside the consumer's transaction."""
    payload = envelope.payload()
    if isinstance(payload, StreamDeleted):
        await _forget(session, envelope.stream_id, outbox=outbox)
    elif isinstance(payload, StreamChange):
        try:
            live = await lock_live(session, envelope.stream_id)
        except StreamNotFound:
            return  # a late event of a deleted live
        await _follow(session, live=live, payload=payload, outbox=outbox)


async def _follow(
    session: AsyncSession, *, live: Live, payload: StreamChange, outbox: Outbox
) -> None:
    reported = payload.stream
    before = live.status
    live.status = StreamStatus(before).furthest(reported.status)
    live.started_at = reported.started_at or live.started_at
    live.ended_at = reported.ended_at or live.ended_at
    live.updated_at = datetime.now(UTC)
    await session.flush()
    if before is StreamStatus.SCHEDULED and live.status is not StreamStatus.SCHEDULED:
        await _announce_the_start(session, live=live, outbox=outbox)
        await offers.open_offer(session, outbox=outbox, live=live)
    if before is not StreamStatus.ENDED and live.status is StreamStatus.ENDED:
        await offers.live_ended(session, outbox=outbox, live=live)


async def _announce_the_start(session: AsyncSession, *, live: Live, outbox: Outbox) -> None:
    """The live started: its viewers learn the promo codes kept from them until now, and the
    live prices are to pay from now on (carts follow)."""
    rows = (
        await session.execute(
            sa.select(LiveStreamProduct, Product)
            .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
            .where(
                col(LiveStreamProduct.stream_id) == live.stream_id,
                col(LiveStreamProduct.visible),
                sa.or_(
                    col(LiveStreamProduct.promo_code).is_not(None),
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


async def _forget(session: AsyncSession, stream_id: UUID, *, outbox: Outbox) -> None:
    """A deleted live loses its products and its offer (withdrawn from the shop); its row stays
    as a tombstone against late events."""
    now = datetime.now(UTC)
    await session.execute(
        insert(Live)
        .values(stream_id=stream_id, status=StreamStatus.ENDED, deleted_at=now, updated_at=now)
        .on_conflict_do_update(index_elements=["stream_id"], set_={"deleted_at": now})
    )
    live = await session.get(Live, stream_id, populate_existing=True, with_for_update=True)
    assert live is not None
    await offers.close_offer(session, outbox=outbox, live=live)
    await session.execute(
        sa.delete(LiveStreamProduct).where(col(LiveStreamProduct.stream_id) == stream_id)
    )
    await session.execute(
        sa.delete(FeaturedPeriod).where(col(FeaturedPeriod.stream_id) == stream_id)
    )
