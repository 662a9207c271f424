"""What viewers do with a live's products: open one (a click); put one in their cart is in
`carts.py`."""

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import Principal
from contracts.products import ProductClicked
from services.products.cards import live_status
from services.products.catalog_settings import Deps
from services.products.models import LiveStreamProduct, Product
from services.products.showcase import NotInLive


async def visible_product(
    session: AsyncSession, *, stream_id: UUID, product_id: UUID
) -> tuple[LiveStreamProduct, Product]:
    """A product of the live as its viewers may reach it: shown there (not hidden), the live not
    deleted; `NotInLive` otherwise."""
    await live_status(session, stream_id)  # a deleted live has no products
    row = (
        await session.execute(
            sa.select(LiveStreamProduct, Product)
            .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
            .where(
                col(LiveStreamProduct.stream_id) == stream_id,
                col(LiveStreamProduct.product_id) == product_id,
                col(LiveStreamProduct.visible),
            )
        )
    ).first()
    if row is None:
        raise NotInLive(product_id)
    return row[0], row[1]


async def record_click(
    *,
    session: AsyncSession,
    deps: Deps,
    stream_id: UUID,
    product_id: UUID,
    session_id: str,
    user: Principal | None,
) -> None:
    await visible_product(session, stream_id=stream_id, product_id=product_id)
    await deps.outbox.record(
        session,
        ProductClicked(
            product_id=product_id,
            session_id=session_id,
            user_id=user.user_id if user is not None else None,
        ),
        stream_id=stream_id,
    )
    await session.commit()
