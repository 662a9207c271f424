"""On sign-in, the cart a viewer filled anonymously (their session's) becomes part of their own."""

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.auth import Principal
from services.products.cart_coupons import withdraw_cart_coupon
from services.products.carts import (
    CartRefused,
    empty_cart,
    line_of,
    lines_of,
    locked,
    owner_of,
    present,
    stocks_of,
)
from services.products.catalog_settings import Deps
from services.products.models import CartLine
from services.products.schemas import QUANTITY_MAX, CartPublic


async def claim(
    *, session: AsyncSession, deps: Deps, user: Principal, session_id: str
) -> CartPublic:
    """Move the session's cart into the signed-in user's, and answer the user's cart.

    A user without a cart takes the session's as it is (same id: orders placed from it are still
    credited to its lives). Otherwise each line joins the user's: quantities of the same product of
    the same live add up, capped at 99 and at the stock (never below what the user had), and the
    session's cart is deleted, so claiming again changes nothing. A cart holds one currency: if
    the session's lines are in another than the user's, the claim is refused (409) and neither
    cart changes — the user's stays as it was, the session's is there again once signed out.
    """
    try:
        return await _claim(session, deps=deps, user=user, session_id=session_id)
    except IntegrityError:  # the user's first cart was made meanwhile: join it instead
        await session.rollback()
        return await _claim(session, deps=deps, user=user, session_id=session_id)


async def _claim(
    session: AsyncSession, *, deps: Deps, user: Principal, session_id: str
) -> CartPublic:
    # The session's cart locked first, then the user's, always: two claims never deadlock.
    source = await locked(session, owner_of(None, session_id))
    target = await locked(session, owner_of(user, session_id))
    cart = target or source
    if cart is None:
        await session.rollback()
        return empty_cart()
    cart.updated_at = datetime.now(UTC)
    if source is None or target is None:  # nothing to move, or the whole cart changes hands
        cart.owner, cart.user_id = owner_of(user, session_id), user.user_id
        await session.flush()
        answer = await present(
            session, deps=deps, cart=cart, lines=await lines_of(session, cart.id)
        )
        await session.commit()
        return answer

    moving = await lines_of(session, source.id)
    lines = await lines_of(session, target.id)
    if moving and lines and moving[0].currency != lines[0].currency:
        raise CartRefused(
            f"your cart is in {lines[0].currency}, the one from before signing in is in"
            f" {moving[0].currency}: they cannot be put together"
        )
    stocks = await stocks_of(session, (ln.product_id for ln in moving))
    for moved in moving:
        line = line_of(lines, stream_id=moved.stream_id, product_id=moved.product_id)
        had = line.quantity if line is not None else 0
        room = QUANTITY_MAX
        if (stock := stocks.get(moved.product_id)) is not None:
            elsewhere = sum(
                ln.quantity for ln in lines if ln.product_id == moved.product_id and ln is not line
            )
            room = min(room, stock - elsewhere)
        quantity = max(had, min(had + moved.quantity, room))
        if line is not None:
            line.quantity = quantity
        elif quantity > 0:
            line = CartLine(**{**moved.model_dump(), "cart_id": target.id, "quantity": quantity})
            session.add(line)
            lines.append(line)
    await withdraw_cart_coupon(session, source.id)  # its lines, which it gives, are leaving
    await session.delete(source)  # its lines and answered requests go with it (cascade)
    answer = await present(session, deps=deps, cart=target, lines=lines)
    await session.commit()
    return answer
