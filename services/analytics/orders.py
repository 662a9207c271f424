"""The shop's orders: stored as their webhooks send them, credited to lives by cart or promo code.

An order's credit is recomputed whenever something that decides it arrives — the order itself,
an addition to its cart, a promo code shown in a live — under a lock on that cart or code, so
whichever comes first, the result is the same (and a rebuild finds it again).
"""

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.domain import Credit, Order, OrderLine, ShownProduct, attribute
from services.analytics.models import (
    cart_additions,
    live_products,
    order_attributions,
    orders,
    promo_codes,
)

SHOP = "woocommerce"


async def lock_credit(session: AsyncSession) -> None:
    """Serialise the transactions that decide orders' credit, until commit: orders, cart
    additions and product cards are few next to viewers, and each sees what the others did."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("credit"))))


async def record(session: AsyncSession, order: Order) -> list[Credit]:
    """Store the order (a newer version replaces an older one) and credit it; returns the credit."""
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
             "quantity": ln.quantity, "total": str(ln.total)}
            for ln in order.lines
        ],
    }  # fmt: skip
    statement = insert(orders).values(source=SHOP, order_id=order.order_id, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["source", "order_id"],
            set_=values,
            # A delivery of an older version (retries come late) changes nothing.
            where=orders.c.modified_at <= statement.excluded.modified_at,
        )
    )
    stored = (
        await session.execute(
            sa.select(orders).where(orders.c.source == SHOP, orders.c.order_id == order.order_id)
        )
    ).one()
    return await _credit(session, _order_of(stored))


async def reattribute(
    session: AsyncSession,
    *,
    cart_id: str | None = None,
    session_id: str | None = None,
    coupon: str | None = None,
    product: tuple[object, object] | None = None,
) -> None:
    """Credit again the orders that name this cart, session or promo code, or whose cart holds
    this (live, product) — its name is how order lines are matched."""
    o = orders.c
    conditions: list[sa.ColumnElement[bool]] = []
    if product is not None:
        a = cart_additions.c
        holding = sa.and_(a.stream_id == product[0], a.product_id == product[1])
        conditions.append(o.cart_id.in_(sa.select(sa.cast(a.cart_id, sa.Text)).where(holding)))
        conditions.append(o.session_id.in_(sa.select(a.session_id).where(holding)))
    if cart_id is not None:
        conditions.append(o.cart_id == cart_id)
    if session_id is not None:
        conditions.append(o.session_id == session_id)
    if coupon is not None:
        conditions.append(o.coupons.contains([coupon]))
    if not conditions:
        return
    for row in (await session.execute(sa.select(orders).where(sa.or_(*conditions)))).all():
        await _credit(session, _order_of(row))


async def reattribute_all(session: AsyncSession) -> None:
    """Credit every order again (after a rebuild of the facts it depends on)."""
    for row in (await session.execute(sa.select(orders))).all():
        await _credit(session, _order_of(row))


def _order_of(row: Any) -> Order:
    return Order(
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
            )
            for ln in row.lines
        ),
    )


async def _cart(session: AsyncSession, order: Order) -> tuple[list[ShownProduct], str]:
    a, p = cart_additions.c, live_products.c
    query = sa.select(a.stream_id, a.product_id, sa.func.coalesce(p.name, ""), a.at).outerjoin(
        live_products, sa.and_(p.stream_id == a.stream_id, p.product_id == a.product_id)
    )
    if order.cart_id and (cart := _uuid(order.cart_id)) is not None:
        rows = (await session.execute(query.where(a.cart_id == cart))).all()
        if rows:
            return [ShownProduct(*row) for row in rows], "cart"
    if order.session_id:
        rows = (await session.execute(query.where(a.session_id == order.session_id))).all()
        # A session's additions made after the order was placed belong to a later order.
        shown = [ShownProduct(*row) for row in rows if row.at <= order.placed_at]
        return shown, "session"
    return [], "cart"


async def _promos(session: AsyncSession, order: Order) -> list[ShownProduct]:
    if not order.coupons:
        return []
    c, p = promo_codes.c, live_products.c
    rows = await session.execute(
        sa.select(c.stream_id, c.product_id, sa.func.coalesce(p.name, ""), c.first_seen_at)
        .outerjoin(live_products, sa.and_(p.stream_id == c.stream_id, p.product_id == c.product_id))
        .where(c.code.in_(order.coupons))
    )
    return [ShownProduct(*row) for row in rows.all()]


async def _credit(session: AsyncSession, order: Order) -> list[Credit]:
    cart, via = await _cart(session, order)
    credits = attribute(order, cart=cart, via=via, promos=await _promos(session, order))
    t = order_attributions
    await session.execute(sa.delete(t).where(t.c.source == SHOP, t.c.order_id == order.order_id))
    if credits:
        await session.execute(
            sa.insert(t),
            [
                {"source": SHOP, "order_id": order.order_id, "line_id": credit.line_id,
                 "stream_id": credit.stream_id, "product_id": credit.product_id,
                 "quantity": credit.quantity, "amount": credit.amount, "via": credit.via}
                for credit in credits
            ],
        )  # fmt: skip
    return credits


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
