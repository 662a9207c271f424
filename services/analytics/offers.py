"""Each live's offer (`offer.opened`, `offer.updated`, `offer.closed`): the code that gives its
prices in the shop, kept so that orders naming it are credited to the live.

Events come late and out of order: the newest opening or update decides what the offer is, its
first sign decides since when it held, and a closing counts unless the offer opened again after.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.products import OfferClosed, OfferOpened, OfferUpdated
from services.analytics import orders
from services.analytics.models import live_offers


def code_of(code: str) -> str:
    """Codes compare without case, as the shops do (WooCommerce lowercases them)."""
    return code.strip().casefold()


async def offer_changed(
    session: AsyncSession, envelope: Envelope, payload: OfferOpened | OfferUpdated
) -> None:
    offer, at = payload.offer, envelope.occurred_at
    code = code_of(offer.code)
    if not code:
        return
    percent = offer.percent_off
    if percent is not None and not 0 <= percent <= 100:
        percent = None  # not a percentage; the code is what matters here
    await orders.lock_credit(session)
    t = live_offers.c
    statement = insert(live_offers).values(
        code=code,
        stream_id=envelope.stream_id,
        percent_off=percent,
        product_ids=[str(p) for p in offer.product_ids],
        starts_at=offer.starts_at,
        ends_at=offer.ends_at,
        opened_at=min(at, offer.starts_at) if offer.starts_at else at,
        seen_at=at,
    )
    new = statement.excluded
    newest = sa.or_(t.seen_at.is_(None), new.seen_at >= t.seen_at)

    def newest_of(column: str) -> sa.ColumnElement:
        return sa.case((newest, getattr(new, column)), else_=getattr(t, column))

    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["code", "stream_id"],
            set_={
                **{c: newest_of(c) for c in ("percent_off", "product_ids", "starts_at", "ends_at")},
                "opened_at": sa.func.least(t.opened_at, new.opened_at),
                "seen_at": sa.func.greatest(t.seen_at, new.seen_at),
                # Opened again after it closed: it holds once more.
                "closed_at": sa.case((t.closed_at < new.seen_at, sa.null()), else_=t.closed_at),
            },
        )
    )
    await orders.reattribute(session, coupons=[code])


async def offer_closed(session: AsyncSession, envelope: Envelope, payload: OfferClosed) -> None:
    code = code_of(payload.code)
    if not code:
        return
    await orders.lock_credit(session)
    t = live_offers.c
    statement = insert(live_offers).values(
        code=code, stream_id=envelope.stream_id, closed_at=payload.closed_at
    )
    reopened = sa.and_(t.seen_at.is_not(None), t.seen_at > statement.excluded.closed_at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["code", "stream_id"],
            set_={
                "closed_at": sa.case(
                    (reopened, t.closed_at),
                    else_=sa.func.greatest(t.closed_at, statement.excluded.closed_at),
                )
            },
        )
    )
    await orders.reattribute(session, coupons=[code])
