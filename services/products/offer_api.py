"""A live's offer, for admins: its code, percentage or live prices, window and limits, and how
far the shop has taken it (`GET`, `PUT /api/live/streams/{id}/offer`)."""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import AdminUser
from chassis.outbox import Outbox
from chassis.routes import SessionDep
from contracts.products import ProductUpdated
from services.products import domain, offers
from services.products.api_deps import DepsDep
from services.products.cards import live_status, lock_live, public_card
from services.products.catalog_settings import offer_window_s
from services.products.models import (
    LiveOffer,
    LiveStreamProduct,
    OfferStatus,
    Product,
    ShopCoupon,
)
from services.products.schemas import OfferPublic, OfferWrite, ShopCouponPublic

router = APIRouter(prefix="/api/live", tags=["live offers"])


@router.get("/streams/{stream_id}/offer", response_model=OfferPublic)
async def get_offer(stream_id: UUID, session: SessionDep, _: AdminUser) -> OfferPublic:
    """The live's offer and the state of its coupons in the shop."""
    return await read_offer(session, stream_id=stream_id)


@router.put("/streams/{stream_id}/offer", response_model=OfferPublic)
async def put_offer(
    stream_id: UUID, data: OfferWrite, session: SessionDep, deps: DepsDep, _: AdminUser
) -> OfferPublic:
    """Choose the live's code, a percentage instead of live prices, the window, usage limits.
    While the offer holds, the shop follows within seconds; a closed offer cannot change (409)."""
    await configure(session, outbox=deps.outbox, stream_id=stream_id, data=data)
    return await read_offer(session, stream_id=stream_id)


async def configure(
    session: AsyncSession, *, outbox: Outbox, stream_id: UUID, data: OfferWrite
) -> None:
    live = await lock_live(session, stream_id)
    offer = await offers.ensure_offer(session, stream_id=stream_id)
    if offer.status is OfferStatus.CLOSED:
        raise offers.OfferOver(stream_id)
    sent = data.model_fields_set
    if data.code is not None and data.code.upper() != offer.code:
        code = data.code.upper()
        if not await offers.code_free(session, code, stream_id=stream_id):
            raise offers.CodeTaken(code)
        offer.code, offer.code_chosen = code, True
    if "percent_off" in sent and data.percent_off != offer.percent_off:
        offer.percent_off = live.offer_percent_off = data.percent_off
        await _announce_prices(session, outbox=outbox, stream_id=stream_id)
    if data.window_h is not None:
        offer.window_s = data.window_h * 3600
        if live.ended_at is not None and offer.status is OfferStatus.OPEN:
            offer.closes_at = domain.offer_ends_at(
                started_at=live.started_at, ended_at=live.ended_at, window_s=offer.window_s,
                now=datetime.now(UTC),
            )  # fmt: skip
    for field in ("usage_limit", "usage_limit_per_user"):
        if field in sent:
            setattr(offer, field, getattr(data, field))
    offer.updated_at = datetime.now(UTC)
    if offer.status is OfferStatus.OPEN and await offers.place(
        session, outbox=outbox, live=live, offer=offer
    ):
        await offers.tell(session, outbox=outbox, live=live, offer=offer)
    await session.commit()


async def _announce_prices(session: AsyncSession, *, outbox: Outbox, stream_id: UUID) -> None:
    """The live prices changed with the percentage: viewers' cards follow."""
    live = await live_status(session, stream_id)
    rows = await session.execute(
        sa.select(LiveStreamProduct, Product)
        .join(Product, col(Product.id) == col(LiveStreamProduct.product_id))
        .where(col(LiveStreamProduct.stream_id) == stream_id, col(LiveStreamProduct.visible))
        .order_by(col(LiveStreamProduct.position), col(LiveStreamProduct.product_id))
    )
    for item, product in rows.all():
        await outbox.record(
            session, ProductUpdated(product=public_card(item, product, live=live)),
            stream_id=stream_id,
        )  # fmt: skip


def _state(row: ShopCoupon) -> str:
    if row.synced_version >= row.version:
        return "synced"
    return "failing" if row.last_error else "pending"


async def read_offer(session: AsyncSession, *, stream_id: UUID) -> OfferPublic:
    await live_status(session, stream_id)  # a deleted live has no offer: 404
    offer = await session.get(LiveOffer, stream_id, populate_existing=True)
    coupons = (
        await session.execute(
            sa.select(ShopCoupon)
            .where(col(ShopCoupon.stream_id) == stream_id, col(ShopCoupon.cart_id).is_(None))
            .order_by(col(ShopCoupon.created_at), col(ShopCoupon.code))
        )
    ).scalars()
    listed = [
        ShopCouponPublic(
            code=row.code, source=row.source, products=len(row.spec.get("product_ids", [])),
            active=row.active, state=_state(row), last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if _state(row) != "synced" else None,
            synced_at=row.synced_at,
        )
        for row in coupons
    ]  # fmt: skip
    failing = next((c for c in listed if c.state == "failing"), None)
    problem = None
    if failing is not None:
        verb = "created in" if failing.active else "withdrawn from"
        problem = f"offer not {verb} the shop: {failing.last_error}"
    if offer is None:
        window = await offer_window_s(session=session)
        return OfferPublic(
            stream_id=stream_id, code=None, code_chosen=False, percent_off=None,
            window_h=window / 3600, usage_limit=None, usage_limit_per_user=None,
            status=OfferStatus.PENDING, opened_at=None, closes_at=None, closed_at=None,
            coupons=listed, problem=problem,
        )  # fmt: skip
    return OfferPublic(
        stream_id=stream_id, code=offer.code, code_chosen=offer.code_chosen,
        percent_off=offer.percent_off, window_h=offer.window_s / 3600,
        usage_limit=offer.usage_limit, usage_limit_per_user=offer.usage_limit_per_user,
        status=offer.status, opened_at=offer.opened_at, closes_at=offer.closes_at,
        closed_at=offer.closed_at, coupons=listed, problem=problem,
    )  # fmt: skip
