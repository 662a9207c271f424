"""What decides an order's credit, read from analytics' facts: the additions to its cart (or its
session's), the offers and promo codes it names, each with the products' cards (name, shop id)."""

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.attribution import OfferShown, ShownProduct
from services.analytics.domain import Order
from services.analytics.models import cart_additions, live_offers, live_products, promo_codes


def _shown(query: sa.Select) -> sa.Select:
    """`query`'s (live, product, at) with the product's card: name and shop id."""
    p = live_products.c
    return query.add_columns(sa.func.coalesce(p.name, ""), p.external_id)


def _additions(where: sa.ColumnElement[bool]) -> sa.Select:
    a, p = cart_additions.c, live_products.c
    return (
        sa.select(a.stream_id, a.product_id, a.at)
        .outerjoin(live_products, sa.and_(p.stream_id == a.stream_id, p.product_id == a.product_id))
        .where(where)
    )


async def _products(session: AsyncSession, query: sa.Select) -> list[ShownProduct]:
    rows = (await session.execute(_shown(query))).all()
    return [ShownProduct(row[0], row[1], row[3], row[2], external_id=row[4]) for row in rows]


async def cart(session: AsyncSession, order: Order) -> list[ShownProduct]:
    if not order.cart_id or (cart_id := _uuid(order.cart_id)) is None:
        return []
    return await _products(session, _additions(cart_additions.c.cart_id == cart_id))


async def session_additions(session: AsyncSession, order: Order) -> list[ShownProduct]:
    if not order.session_id:
        return []
    return await _products(session, _additions(cart_additions.c.session_id == order.session_id))


async def offers(session: AsyncSession, order: Order) -> list[OfferShown]:
    if not order.coupons:
        return []
    f, p = live_offers.c, live_products.c
    rows = (await session.execute(sa.select(live_offers).where(f.code.in_(order.coupons)))).all()
    found = []
    for row in rows:
        products = await _products(
            session,
            sa.select(p.stream_id, p.product_id, p.seen_at)
            .where(p.stream_id == row.stream_id)
            .order_by(p.product_id),
        )
        found.append(
            OfferShown(
                stream_id=row.stream_id,
                code=row.code,
                # Known only by its closing: it held until then.
                opened_at=row.opened_at or row.closed_at,
                ends_at=row.closed_at or row.ends_at,
                products=tuple(products),
            )
        )
    return found


async def promos(session: AsyncSession, order: Order) -> list[ShownProduct]:
    if not order.coupons:
        return []
    c, p = promo_codes.c, live_products.c
    rows = await session.execute(
        sa.select(c.stream_id, c.product_id, sa.func.coalesce(p.name, ""), c.first_seen_at,
                  p.external_id, c.code)
        .outerjoin(live_products, sa.and_(p.stream_id == c.stream_id, p.product_id == c.product_id))
        .where(c.code.in_(order.coupons))
    )  # fmt: skip
    return [ShownProduct(*row) for row in rows.all()]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
