"""The shops' orders: stored as their webhooks send them, with their refunds, and credited to lives
by cart, offer code, promo code or session.

An order's credit is recomputed whenever something that decides it arrives — the order itself,
one of its refunds, an addition to its cart, an offer or a promo code shown in a live — under one
lock, so whichever comes first, the result is the same (and a rebuild finds it again).
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import credit_facts
from services.analytics.attribution import Credit, attribute
from services.analytics.domain import Order, OrderLine, Refund, RefundLine
from services.analytics.models import (
    cart_additions,
    live_offers,
    order_attributions,
    order_refunds,
    orders,
    webhook_deliveries,
)


async def lock_credit(session: AsyncSession) -> None:
    """Serialise the transactions that decide orders' credit, until commit: orders, cart
    additions and product cards are few next to viewers, and each sees what the others did."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("credit"))))


async def first_delivery(
    session: AsyncSession, *, source: str, webhook_id: str, topic: str
) -> bool:
    """Note a webhook delivery; false if it was handled before (a retry, a replay). Held until
    commit, so a copy arriving meanwhile waits for this one's outcome."""
    noted = await session.execute(
        insert(webhook_deliveries)
        .values(source=source, webhook_id=webhook_id[:200], topic=topic[:100])
        .on_conflict_do_nothing()
        .returning(webhook_deliveries.c.webhook_id)
    )
    return noted.first() is not None


async def record(session: AsyncSession, order: Order) -> list[Credit]:
    """Store the order (a newer version replaces an older one) and its refunds, and credit it;
    returns the credit."""
    await lock_credit(session)
    values = {
        "status": order.status,
        "currency": order.currency,
        "placed_at": order.placed_at,
        "modified_at": order.modified_at,
        "cart_id": order.cart_id,
        "session_id": order.session_id,
        "coupons": list(order.coupons),
        "lines": [
            {"line_id": ln.line_id, "name": ln.name, "product_ref": ln.product_ref,
             "quantity": ln.quantity, "total": str(ln.total), "shop_ids": list(ln.shop_ids),
             "aliases": list(ln.aliases)}
            for ln in order.lines
        ],
        "name": order.name,
        "total": order.total,
    }  # fmt: skip
    statement = insert(orders).values(source=order.source, order_id=order.order_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source", "order_id"],
            set_=values,
            # A delivery of an older version (retries come late) changes nothing.
            where=orders.c.modified_at <= statement.excluded.modified_at,
        )
    )
    for refund in order.refunds:
        await _store_refund(session, order.source, order.order_id, refund)
    return await _credit_stored(session, order.source, order.order_id)


async def record_refund(
    session: AsyncSession, *, source: str, order_id: str, refund: Refund
) -> list[Credit]:
    """Store a refund sent on its own and credit its order again (none yet: when it comes)."""
    await lock_credit(session)
    await _store_refund(session, source, order_id, refund)
    return await _credit_stored(session, source, order_id)


async def _store_refund(session: AsyncSession, source: str, order_id: str, refund: Refund) -> None:
    lines = [{"line_id": ln.line_id, "quantity": ln.quantity, "amount": str(ln.amount)}
             for ln in refund.lines]  # fmt: skip
    await session.execute(
        insert(order_refunds)
        .values(source=source, order_id=order_id, refund_id=refund.refund_id,
                refunded_at=refund.refunded_at, lines=lines, amount=refund.amount)
        .on_conflict_do_nothing()  # a refund is never edited
    )  # fmt: skip


async def _credit_stored(session: AsyncSession, source: str, order_id: str) -> list[Credit]:
    o = orders.c
    row = (
        await session.execute(sa.select(orders).where(o.source == source, o.order_id == order_id))
    ).first()
    return [] if row is None else await _credit(session, await _order_of(session, row))


async def reattribute(
    session: AsyncSession,
    *,
    cart_id: str | None = None,
    session_id: str | None = None,
    coupons: Sequence[str] = (),
    product: tuple[object, object] | None = None,
) -> None:
    """Credit again the orders that name this cart, session or code, or whose cart holds this
    (live, product), or that name one of that live's codes — the product's name and shop id are
    how order lines are matched."""
    o = orders.c
    codes = set(coupons)
    conditions: list[sa.ColumnElement[bool]] = []
    if product is not None:
        a = cart_additions.c
        holding = sa.and_(a.stream_id == product[0], a.product_id == product[1])
        conditions.append(o.cart_id.in_(sa.select(sa.cast(a.cart_id, sa.Text)).where(holding)))
        conditions.append(o.session_id.in_(sa.select(a.session_id).where(holding)))
        codes |= set(
            (
                await session.execute(
                    sa.select(live_offers.c.code).where(live_offers.c.stream_id == product[0])
                )
            ).scalars()
        )
    if cart_id is not None:
        conditions.append(o.cart_id == cart_id)
    if session_id is not None:
        conditions.append(o.session_id == session_id)
    conditions += [o.coupons.contains([code]) for code in sorted(codes)]
    if not conditions:
        return
    for row in (await session.execute(sa.select(orders).where(sa.or_(*conditions)))).all():
        await _credit(session, await _order_of(session, row))


async def reattribute_all(session: AsyncSession) -> None:
    """Credit every order again (after a rebuild of the facts it depends on)."""
    for row in (await session.execute(sa.select(orders))).all():
        await _credit(session, await _order_of(session, row))


async def _order_of(session: AsyncSession, row: Any) -> Order:
    r = order_refunds.c
    refunds = await session.execute(
        sa.select(order_refunds)
        .where(r.source == row.source, r.order_id == row.order_id)
        .order_by(r.refund_id)
    )
    return Order(
        source=row.source,
        order_id=row.order_id,
        status=row.status,
        currency=row.currency,
        placed_at=row.placed_at,
        modified_at=row.modified_at,
        cart_id=row.cart_id,
        session_id=row.session_id,
        coupons=tuple(row.coupons),
        lines=tuple(
            OrderLine(
                line_id=ln["line_id"],
                name=ln["name"],
                product_ref=ln["product_ref"],
                quantity=ln["quantity"],
                total=Decimal(ln["total"]),
                shop_ids=tuple(ln.get("shop_ids", ())),
                aliases=tuple(ln.get("aliases", ())),
            )
            for ln in row.lines
        ),
        name=row.name,
        total=row.total,
        refunds=tuple(
            Refund(
                refund_id=refund.refund_id,
                refunded_at=refund.refunded_at,
                lines=tuple(
                    RefundLine(ln["line_id"], ln["quantity"], Decimal(ln["amount"]))
                    for ln in refund.lines
                ),
                amount=refund.amount,
            )
            for refund in refunds.all()
        ),
    )


async def _credit(session: AsyncSession, order: Order) -> list[Credit]:
    credits = attribute(
        order,
        cart=await credit_facts.cart(session, order),
        offers=await credit_facts.offers(session, order),
        promos=await credit_facts.promos(session, order),
        session=await credit_facts.session_additions(session, order),
    )
    t = order_attributions.c
    await session.execute(
        sa.delete(order_attributions).where(t.source == order.source, t.order_id == order.order_id)
    )
    if credits:
        await session.execute(
            sa.insert(order_attributions),
            [
                {"source": order.source, "order_id": order.order_id, "line_id": c.line_id,
                 "stream_id": c.stream_id, "product_id": c.product_id, "quantity": c.quantity,
                 "amount": c.amount, "refunded": c.refunded, "via": c.via,
                 "via_value": c.reason}
                for c in credits
            ],
        )  # fmt: skip
    return credits
