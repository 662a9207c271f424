"""A viewer's cart: products of lives put in it, their quantities changed, lines removed, and the
anonymous cart moved into the user's on sign-in.

Carts belong to a signed-in user (`user:<id>`) or to an anonymous viewer's session
(`session:<id>`). A line is one product of one live, priced when it was added (its live price,
beside the catalog price). A cart holds one currency. An add or a change retried with the same
`Idempotency-Key` happens once and gets the first answer again.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import Principal
from contracts.products import CartAdded
from services.products import domain
from services.products.cards import live_status, price_to_pay
from services.products.catalog_settings import Deps
from services.products.checkout import cart_checkout
from services.products.models import (
    Cart,
    CartLine,
    CartRequest,
    Live,
    LiveStreamProduct,
    Product,
)
from services.products.schemas import (
    QUANTITY_MAX,
    CartItemAdd,
    CartItemSet,
    CartLinePublic,
    CartPublic,
)
from services.products.viewers import visible_product


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


class CartRefused(Exception):
    """The cart cannot take this (sold out, more than the stock, another currency …)."""


class TooMany(ValueError):
    """More of one product than a cart line holds."""


class NotInCart(Exception):
    """The cart has no line for this product of this live."""


def owner_of(user: Principal | None, session_id: str) -> str:
    return f"user:{user.user_id}" if user is not None else f"session:{session_id}"


async def add_to_cart(
    *,
    session: AsyncSession,
    deps: Deps,
    user: Principal | None,
    data: CartItemAdd,
    idempotency_key: str | None,
) -> CartPublic:
    """Add a product of a live to the viewer's cart, priced at its live price if it has one."""
    now = datetime.now(UTC)
    cart = await _opened(session, user=user, session_id=data.session_id, now=now)
    fingerprint = domain.fingerprint(data.model_dump(mode="json"))
    if (answer := await _answered(session, cart, idempotency_key, fingerprint)) is not None:
        return answer

    item, product = await visible_product(
        session, stream_id=data.stream_id, product_id=data.product_id
    )
    lines = await lines_of(session, cart.id)
    line = line_of(lines, stream_id=data.stream_id, product_id=product.id)
    quantity = (line.quantity if line is not None else 0) + data.quantity
    if quantity > QUANTITY_MAX:
        raise TooMany(f"at most {QUANTITY_MAX} of one product in a cart")
    _check_can_hold(lines, line, product, quantity=quantity)
    if line is None:
        line = CartLine(
            cart_id=cart.id,
            stream_id=data.stream_id,
            product_id=product.id,
            quantity=quantity,
            **_priced(item, product, await live_status(session, data.stream_id)),
        )
        session.add(line)
        lines.append(line)
    else:
        live = await live_status(session, data.stream_id)
        line.sqlmodel_update({"quantity": quantity, **_priced(item, product, live)})
    cart.updated_at = now
    await _record_added(
        session, deps=deps, cart=cart, line=line, quantity=data.quantity, user=user, data=data
    )
    answer = await present(session, deps=deps, cart=cart, lines=lines)
    _remember(session, cart, idempotency_key, fingerprint, answer)
    await session.commit()
    return answer


async def set_quantity(
    *,
    session: AsyncSession,
    deps: Deps,
    user: Principal | None,
    data: CartItemSet,
    idempotency_key: str | None,
) -> CartPublic:
    """Set the quantity of a line of the cart; 0 removes it. More than before follows the rules of
    adding (the product still shown in its live, the stock, the cart's currency), is priced anew
    and counts as an addition (`cart.added` of the difference); fewer is always allowed."""
    cart = await locked(session, owner_of(user, data.session_id))
    if cart is None:
        raise NotInCart(data.product_id)
    # A set is its own kind of request: a key used for an add is not reused for it.
    fingerprint = domain.fingerprint({"set": data.model_dump(mode="json")})
    if (answer := await _answered(session, cart, idempotency_key, fingerprint)) is not None:
        return answer
    lines = await lines_of(session, cart.id)
    if (line := line_of(lines, stream_id=data.stream_id, product_id=data.product_id)) is None:
        raise NotInCart(data.product_id)
    if data.quantity > line.quantity:
        item, product = await visible_product(
            session, stream_id=data.stream_id, product_id=data.product_id
        )
        _check_can_hold(lines, line, product, quantity=data.quantity)
        added = data.quantity - line.quantity
        live = await live_status(session, data.stream_id)
        line.sqlmodel_update({"quantity": data.quantity, **_priced(item, product, live)})
        await _record_added(
            session, deps=deps, cart=cart, line=line, quantity=added, user=user, data=data
        )
    elif data.quantity == 0:
        await session.delete(line)
        lines.remove(line)
    else:
        line.quantity = data.quantity
    cart.updated_at = datetime.now(UTC)
    answer = await present(session, deps=deps, cart=cart, lines=lines)
    _remember(session, cart, idempotency_key, fingerprint, answer)
    await session.commit()
    return answer


async def remove_line(
    *,
    session: AsyncSession,
    deps: Deps,
    user: Principal | None,
    session_id: str,
    stream_id: UUID,
    product_id: UUID,
) -> CartPublic:
    cart = await locked(session, owner_of(user, session_id))
    lines = await lines_of(session, cart.id) if cart is not None else []
    if cart is None or (line := line_of(lines, stream_id=stream_id, product_id=product_id)) is None:
        raise NotInCart(product_id)
    await session.delete(line)
    lines.remove(line)
    cart.updated_at = datetime.now(UTC)
    answer = await present(session, deps=deps, cart=cart, lines=lines)
    await session.commit()
    return answer


async def get_cart(
    *, session: AsyncSession, deps: Deps, user: Principal | None, session_id: str
) -> CartPublic:
    cart = (
        await session.execute(sa.select(Cart).where(col(Cart.owner) == owner_of(user, session_id)))
    ).scalar_one_or_none()
    if cart is None:
        return empty_cart()
    answer = await present(session, deps=deps, cart=cart, lines=await lines_of(session, cart.id))
    await session.commit()  # the prices as they stand, and a cart coupon the link needs
    return answer


def empty_cart() -> CartPublic:
    return CartPublic(
        id=None, lines=[], items=0, total=Decimal("0.00"), currency=None, checkout_url=None
    )


async def _opened(
    session: AsyncSession, *, user: Principal | None, session_id: str, now: datetime
) -> Cart:
    """The viewer's cart, made if it is their first, locked until commit."""
    while True:
        await session.execute(
            insert(Cart)
            .values(
                id=uuid4(),
                owner=owner_of(user, session_id),
                user_id=user.user_id if user is not None else None,
                session_id=session_id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["owner"])
        )
        if (cart := await locked(session, owner_of(user, session_id))) is not None:
            return cart
        # A claim took this session's cart between the two statements: make a new one.


async def locked(session: AsyncSession, owner: str) -> Cart | None:
    """The cart's row, locked until commit: a retry racing its original waits, then finds its
    answer; two changes of one cart happen one after the other."""
    return (
        await session.execute(
            sa.select(Cart)
            .where(col(Cart.owner) == owner)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _answered(
    session: AsyncSession, cart: Cart, key: str | None, fingerprint: str
) -> CartPublic | None:
    """The answer already given to this key, if any (the cart released at once)."""
    if key is None:
        return None
    answered = await session.get(CartRequest, (cart.id, key))
    if answered is None:
        return None
    if answered.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    answer = CartPublic.model_validate(answered.answer)
    await session.rollback()
    return answer


def _remember(
    session: AsyncSession, cart: Cart, key: str | None, fingerprint: str, answer: CartPublic
) -> None:
    if key is not None:
        session.add(
            CartRequest(
                cart_id=cart.id,
                key=key,
                fingerprint=fingerprint,
                answer=answer.model_dump(mode="json"),
            )
        )


def line_of(lines: list[CartLine], *, stream_id: UUID, product_id: UUID) -> CartLine | None:
    return next(
        (ln for ln in lines if (ln.stream_id, ln.product_id) == (stream_id, product_id)), None
    )


def _check_can_hold(
    lines: list[CartLine], line: CartLine | None, product: Product, *, quantity: int
) -> None:
    """`quantity` of `product` on `line` (none: a new line) fits the cart's currency and the
    stock, counting the same product added from another live."""
    if any(ln.currency != product.currency for ln in lines):
        raise CartRefused(f"this cart is in {lines[0].currency}, the product in {product.currency}")
    if product.stock is None:
        return
    elsewhere = sum(ln.quantity for ln in lines if ln.product_id == product.id and ln is not line)
    if elsewhere + quantity <= product.stock:
        return
    if product.stock == 0:
        raise CartRefused("sold out")
    held = elsewhere + (line.quantity if line is not None else 0)
    raise CartRefused(
        f"only {product.stock} left in stock" + (f", {held} already in your cart" if held else "")
    )


def _priced(item: LiveStreamProduct, product: Product, live: Live) -> dict[str, Any]:
    """A line's fields as the product is now: the price to pay (`price_to_pay`), the catalog
    price beside."""
    return {
        "name": product.name,
        "unit_price": price_to_pay(item, product, live),
        "regular_price": product.price,
        "currency": product.currency,
        "external_id": product.external_id,
        "image_url": product.images[0] if product.images else None,
    }


async def _record_added(
    session: AsyncSession,
    *,
    deps: Deps,
    cart: Cart,
    line: CartLine,
    quantity: int,
    user: Principal | None,
    data: CartItemAdd | CartItemSet,
) -> None:
    await deps.outbox.record(
        session,
        CartAdded(
            product_id=line.product_id,
            quantity=quantity,
            cart_id=cart.id,
            session_id=data.session_id,
            user_id=user.user_id if user is not None else None,
            unit_price=line.unit_price,
            currency=line.currency,
        ),
        stream_id=line.stream_id,
    )


async def lines_of(session: AsyncSession, cart_id: UUID) -> list[CartLine]:
    return list(
        (
            await session.execute(
                sa.select(CartLine)
                .where(col(CartLine.cart_id) == cart_id)
                .order_by(col(CartLine.created_at), col(CartLine.product_id))
            )
        ).scalars()
    )


async def stocks_of(session: AsyncSession, product_ids: Iterable[UUID]) -> dict[UUID, int | None]:
    ids = set(product_ids)
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(col(Product.id), col(Product.stock)).where(col(Product.id).in_(ids))
    )
    return {product_id: stock for product_id, stock in rows.all()}


async def present(
    session: AsyncSession, *, deps: Deps, cart: Cart, lines: list[CartLine]
) -> CartPublic:
    """The cart as the viewer sees it: each line at its price now (the live's offer may have
    closed since it was added) beside the catalog's, and the shop's checkout link."""
    paying = await cart_checkout(session, deps=deps, cart=cart, lines=lines)
    stocks = await stocks_of(session, (line.product_id for line in lines))
    for line in lines:
        now = paying.prices.get((line.stream_id, line.product_id))
        if now is not None:
            line.unit_price, line.regular_price = now.unit_price, now.regular_price
    return CartPublic(
        id=cart.id,
        lines=[
            CartLinePublic(
                product_id=line.product_id,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                currency=line.currency,
                stream_id=line.stream_id,
                image_url=line.image_url,
                regular_price=line.regular_price,
                stock=stocks.get(line.product_id),
            )
            for line in lines
        ],
        items=sum(line.quantity for line in lines),
        total=sum((line.unit_price * line.quantity for line in lines), Decimal("0.00")),
        currency=lines[0].currency if lines else None,
        checkout_url=paying.url,
    )
