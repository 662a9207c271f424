"""Bus subscribers: each event becomes the facts analytics keeps, inside the consumer's transaction.

Events come twice, late or out of order. Facts are keyed so that a second copy is a no-op, and
each handler's result does not depend on the order events arrive in (a `viewer.left` may come
before its `viewer.joined`: it waits for it as a half-known view).
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.chat import ChatDeleted, ChatPosted
from contracts.presence import viewer_key
from contracts.products import (
    CartAdded,
    LiveProduct,
    OfferClosed,
    OfferOpened,
    OfferUpdated,
    ProductAdded,
    ProductClicked,
    ProductFeatured,
    ProductUpdated,
)
from contracts.streams import (
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamStatus,
    StreamUpdated,
)
from contracts.viewers import ViewerJoined, ViewerLeft, ViewersUpdated
from services.analytics import orders
from services.analytics.domain import PLAYER_GATEWAY
from services.analytics.models import (
    cart_additions,
    chat_deletions,
    chat_messages,
    live_products,
    live_stream_viewers,
    lives,
    product_clicks,
    promo_codes,
    viewer_samples,
)
from services.analytics.offers import code_of, offer_changed, offer_closed

PRODUCER = "analytics"
Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]


async def on_event(session: AsyncSession, envelope: Envelope) -> None:
    """Handle any event analytics follows; others are acknowledged and ignored."""
    payload = envelope.payload()
    handler = HANDLERS.get(type(payload))
    if handler is not None:
        await handler(session, envelope, payload)


# --- lives ---------------------------------------------------------------------------------------


async def _stream_changed(
    session: AsyncSession,
    envelope: Envelope,
    payload: StreamCreated | StreamUpdated | StreamStarted | StreamEnded,
) -> None:
    stream = payload.stream
    at = envelope.occurred_at
    await session.execute(
        insert(lives)
        .values(stream_id=envelope.stream_id, title=stream.title, status=stream.status, seen_at=at)
        .on_conflict_do_nothing()
    )
    row = (
        await session.execute(
            sa.select(lives).where(lives.c.stream_id == envelope.stream_id).with_for_update()
        )
    ).one()
    newer = at >= row.seen_at
    status = StreamStatus(row.status)
    await session.execute(
        sa.update(lives)
        .where(lives.c.stream_id == envelope.stream_id)
        .values(
            title=stream.title if newer else row.title,
            status=status.furthest(stream.status),
            started_at=_earliest(row.started_at, stream.started_at),
            ended_at=_latest(row.ended_at, stream.ended_at),
            seen_at=max(at, row.seen_at),
        )
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if a or b else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if a or b else None


async def _stream_deleted(session: AsyncSession, envelope: Envelope, _: StreamDeleted) -> None:
    """Figures outlive a deleted live (admins may still read them)."""
    await session.execute(
        insert(lives)
        .values(
            stream_id=envelope.stream_id,
            status=StreamStatus.ENDED,
            deleted=True,
            seen_at=envelope.occurred_at,
        )
        .on_conflict_do_update(index_elements=["stream_id"], set_={"deleted": True})
    )


# --- products ------------------------------------------------------------------------------------


async def _card(
    session: AsyncSession, envelope: Envelope, payload: ProductAdded | ProductUpdated
) -> None:
    await _learn_product(session, envelope, payload.product)


async def _featured(session: AsyncSession, envelope: Envelope, payload: ProductFeatured) -> None:
    await _learn_product(session, envelope, payload.product)


async def _learn_product(session: AsyncSession, envelope: Envelope, card: LiveProduct) -> None:
    at = envelope.occurred_at
    await orders.lock_credit(session)
    statement = insert(live_products).values(
        stream_id=envelope.stream_id,
        product_id=card.product_id,
        name=card.name,
        currency=card.currency,
        seen_at=at,
        external_id=card.external_id,
    )
    newest = statement.excluded.seen_at >= live_products.c.seen_at
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["stream_id", "product_id"],
            set_={
                **{
                    column: sa.case(
                        (newest, getattr(statement.excluded, column)),
                        else_=getattr(live_products.c, column),
                    )
                    for column in ("name", "currency", "external_id")
                },
                "seen_at": sa.func.greatest(live_products.c.seen_at, statement.excluded.seen_at),
            },
        )
    )
    code = code_of(card.promo_code) if card.promo_code else None
    if code:
        promo = insert(promo_codes).values(
            code=code, stream_id=envelope.stream_id, product_id=card.product_id, first_seen_at=at
        )
        await session.execute(
            promo.on_conflict_do_update(
                index_elements=["code", "stream_id", "product_id"],
                set_={
                    "first_seen_at": sa.func.least(
                        promo_codes.c.first_seen_at, promo.excluded.first_seen_at
                    )
                },
            )
        )
    await orders.reattribute(
        session, coupons=[code] if code else [], product=(envelope.stream_id, card.product_id)
    )


async def _clicked(session: AsyncSession, envelope: Envelope, payload: ProductClicked) -> None:
    await session.execute(
        insert(product_clicks)
        .values(
            event_id=envelope.id,
            stream_id=envelope.stream_id,
            product_id=payload.product_id,
            session_id=payload.session_id,
            user_id=payload.user_id,
            at=envelope.occurred_at,
        )
        .on_conflict_do_nothing()
    )


async def _cart_added(session: AsyncSession, envelope: Envelope, payload: CartAdded) -> None:
    await orders.lock_credit(session)
    await session.execute(
        insert(cart_additions)
        .values(
            event_id=envelope.id,
            stream_id=envelope.stream_id,
            product_id=payload.product_id,
            cart_id=payload.cart_id,
            session_id=payload.session_id,
            user_id=payload.user_id,
            quantity=payload.quantity,
            unit_price=payload.unit_price,
            currency=payload.currency,
            at=envelope.occurred_at,
        )
        .on_conflict_do_nothing()
    )
    await orders.reattribute(session, cart_id=str(payload.cart_id), session_id=payload.session_id)


# --- chat ----------------------------------------------------------------------------------------


async def _posted(session: AsyncSession, envelope: Envelope, payload: ChatPosted) -> None:
    message = payload.message
    await session.execute(
        insert(chat_messages)
        .values(
            message_id=message.id,
            stream_id=envelope.stream_id,
            user_id=message.user_id,
            at=message.created_at,
        )
        .on_conflict_do_nothing()
    )


async def _deleted(session: AsyncSession, envelope: Envelope, payload: ChatDeleted) -> None:
    await session.execute(
        insert(chat_deletions)
        .values(message_id=payload.message_id, stream_id=envelope.stream_id)
        .on_conflict_do_nothing()
    )


# --- viewers -------------------------------------------------------------------------------------


def _same_view(envelope: Envelope, payload: ViewerJoined | ViewerLeft) -> Any:
    v = live_stream_viewers.c
    return sa.and_(
        v.stream_id == envelope.stream_id,
        v.gateway_id == payload.gateway_id,
        v.session_id == payload.session_id,
    )


def lock_order(envelope: Envelope) -> tuple[str, ...]:
    """What a batch is sorted by, so replicas take the lives' rows and the views' locks in the
    same order."""
    data = envelope.data
    return (
        str(envelope.stream_id),
        str(data.get("gateway_id", "")),
        str(data.get("session_id", "")),
    )


async def _lock_view(session: AsyncSession, envelope: Envelope, payload: Any) -> None:
    # Replicas sharing the consumer may handle a view's joined and left side by side.
    key = f"view:{envelope.stream_id}:{payload.gateway_id}:{payload.session_id}"
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))


async def _joined(session: AsyncSession, envelope: Envelope, payload: ViewerJoined) -> None:
    await _lock_view(session, envelope, payload)
    v = live_stream_viewers.c
    known = {
        "user_id": payload.user_id,
        "viewer_key": viewer_key(user_id=payload.user_id, session_id=payload.session_id),
        "joined_at": envelope.occurred_at,
    }
    # Its `viewer.left` came first: the view is complete now.
    waiting = (
        await session.execute(
            sa.select(v.id)
            .where(_same_view(envelope, payload), v.joined_at.is_(None))
            .order_by(v.left_at, v.id)
            .limit(1)
            .with_for_update()
        )
    ).scalar()
    if waiting is not None:
        await session.execute(sa.update(live_stream_viewers).where(v.id == waiting).values(**known))
        return
    await session.execute(
        insert(live_stream_viewers)
        .values(
            id=envelope.id,
            stream_id=envelope.stream_id,
            session_id=payload.session_id,
            gateway_id=payload.gateway_id,
            **known,
        )
        .on_conflict_do_nothing()
    )


async def _left(session: AsyncSession, envelope: Envelope, payload: ViewerLeft) -> None:
    """Close the view. Analytics closes the views of a gateway that died (`producer` analytics);
    if that gateway's own `viewer.left` turns up after all, it replaces the estimate."""
    await _lock_view(session, envelope, payload)
    v = live_stream_viewers.c
    estimate = envelope.producer == PRODUCER and payload.gateway_id != PLAYER_GATEWAY
    watched = timedelta(seconds=payload.watched_seconds)
    closing = {
        "watched_ms": round(payload.watched_seconds * 1000),
        "closed_by": PRODUCER if estimate else "gateway",
    }
    if payload.gateway_id == PLAYER_GATEWAY:
        closing["closed_by"] = PLAYER_GATEWAY
    open_view = (
        await session.execute(
            sa.select(v.id, v.joined_at)
            .where(_same_view(envelope, payload), v.joined_at.is_not(None), v.left_at.is_(None))
            .order_by(v.joined_at, v.id)
            .limit(1)
            .with_for_update()
        )
    ).first()
    if open_view is None and not estimate:
        open_view = (
            await session.execute(
                sa.select(v.id, v.joined_at)
                .where(_same_view(envelope, payload), v.closed_by == PRODUCER)
                .order_by(v.joined_at.desc(), v.id)
                .limit(1)
                .with_for_update()
            )
        ).first()
    if open_view is not None:
        await session.execute(
            sa.update(live_stream_viewers)
            .where(v.id == open_view.id)
            .values(left_at=open_view.joined_at + watched, **closing)
        )
    elif not estimate:  # its `viewer.joined` is still on the way
        await session.execute(
            insert(live_stream_viewers)
            .values(
                id=envelope.id,
                stream_id=envelope.stream_id,
                session_id=payload.session_id,
                gateway_id=payload.gateway_id,
                user_id=payload.user_id,
                viewer_key=viewer_key(user_id=payload.user_id, session_id=payload.session_id),
                left_at=envelope.occurred_at,
                **closing,
            )
            .on_conflict_do_nothing()
        )


async def _figures(session: AsyncSession, envelope: Envelope, payload: ViewersUpdated) -> None:
    await session.execute(
        insert(viewer_samples)
        .values(
            event_id=envelope.id,
            stream_id=envelope.stream_id,
            at=envelope.occurred_at,
            current=payload.current,
            peak=payload.peak,
        )
        .on_conflict_do_nothing()
    )


HANDLERS: dict[type, Handler] = {
    StreamCreated: _stream_changed,
    StreamUpdated: _stream_changed,
    StreamStarted: _stream_changed,
    StreamEnded: _stream_changed,
    StreamDeleted: _stream_deleted,
    ProductAdded: _card,
    ProductUpdated: _card,
    ProductFeatured: _featured,
    ProductClicked: _clicked,
    CartAdded: _cart_added,
    OfferOpened: offer_changed,
    OfferUpdated: offer_changed,
    OfferClosed: offer_closed,
    ChatPosted: _posted,
    ChatDeleted: _deleted,
    ViewerJoined: _joined,
    ViewerLeft: _left,
    ViewersUpdated: _figures,
}

# The event families analytics consumes, one durable consumer each (they run side by side).
FAMILIES = {
    "streams": "stream.>",
    "products": "product.>",
    "carts": "cart.added",
    "offers": "offer.>",
    "chat": "chat.>",
    "viewers": "viewer.>",
    "figures": "viewers.updated",
}


def durable_of(event_type: str, *, prefix: str = PRODUCER) -> str | None:
    """The durable consumer that handles `event_type` (none: analytics ignores it)."""
    for family, events in FAMILIES.items():
        if event_type == events or (events.endswith(".>") and event_type.startswith(events[:-1])):
            return f"{prefix}-{family}"
    return None
