"""The orders credited to a live, for its admins: newest first, a page at a time, each with the
lines credited to the live, what was refunded, and why it counts."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pages import Page, decode_cursor, encode_cursor
from services.analytics.domain import counts
from services.analytics.models import lives, order_attributions, orders
from services.analytics.report import LiveNotFound

ZERO = Decimal("0.00")


class CreditedLine(BaseModel):
    line_id: str
    name: str
    product_id: UUID | None
    quantity: int
    amount: Decimal  # as ordered
    refunded: Decimal  # taken back since


class CreditedOrder(BaseModel):
    source: str
    order_id: str
    name: str  # what the shop shows ("#1001", the WooCommerce order number)
    status: str
    placed_at: datetime
    currency: str
    # Why it counts for this live (cart, coupon, promo_code, session) and what decided it: the
    # cart id, the code, the session id.
    via: str
    via_value: str | None
    lines: list[CreditedLine]
    refunded: Decimal
    # What the live is credited with: its lines net of refunds; 0 when the order brings no money
    # (cancelled, refunded, voided, not paid yet).
    credited_total: Decimal


CreditedOrders = Page[CreditedOrder]


def _present(row: Any, credits: list[Any]) -> CreditedOrder:
    position = {ln["line_id"]: i for i, ln in enumerate(row.lines)}
    names = {ln["line_id"]: ln["name"] for ln in row.lines}
    credits = sorted(credits, key=lambda c: (position.get(c.line_id, len(position)), c.line_id))
    amount = sum((c.amount for c in credits), ZERO)
    refunded = sum((c.refunded for c in credits), ZERO)
    return CreditedOrder(
        source=row.source,
        order_id=row.order_id,
        name=row.name or row.order_id,
        status=row.status,
        placed_at=row.placed_at,
        currency=row.currency,
        via=credits[0].via,
        via_value=credits[0].via_value,
        lines=[
            CreditedLine(
                line_id=c.line_id,
                name=names.get(c.line_id, ""),
                product_id=c.product_id,
                quantity=c.quantity,
                amount=c.amount,
                refunded=c.refunded,
            )
            for c in credits
        ],
        refunded=refunded,
        credited_total=amount - refunded if counts(row.source, row.status) else ZERO,
    )


async def credited_orders(
    session: AsyncSession, stream_id: UUID, *, cursor: str | None, limit: int
) -> CreditedOrders:
    """A page of the orders credited (in part) to the live, newest first."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    o, a = orders.c, order_attributions.c
    position = sa.tuple_(o.placed_at, o.source, o.order_id)
    query = sa.select(orders).where(
        sa.exists().where(a.source == o.source, a.order_id == o.order_id, a.stream_id == stream_id)
    )
    if cursor is not None:
        query = query.where(position < sa.tuple_(*decode_cursor(cursor, datetime, str, str)))
    rows = (
        await session.execute(
            query.order_by(o.placed_at.desc(), o.source.desc(), o.order_id.desc()).limit(limit + 1)
        )
    ).all()
    if not rows and cursor is None:
        known = sa.select(lives.c.stream_id).where(lives.c.stream_id == stream_id)
        if await session.scalar(known) is None:
            raise LiveNotFound(stream_id)
    page = rows[:limit]
    credits: dict[tuple[str, str], list[Any]] = {(r.source, r.order_id): [] for r in page}
    if page:
        for credit in await session.execute(
            sa.select(order_attributions).where(
                a.stream_id == stream_id,
                sa.tuple_(a.source, a.order_id).in_(list(credits)),
            )
        ):
            credits[(credit.source, credit.order_id)].append(credit)
    return CreditedOrders(
        items=[_present(row, credits[(row.source, row.order_id)]) for row in page],
        next_cursor=(
            encode_cursor(page[-1].placed_at, page[-1].source, page[-1].order_id)
            if len(rows) > limit
            else None
        ),
    )
