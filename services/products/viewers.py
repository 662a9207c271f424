"""What viewers do with a live's products: open one, put one in their cart.

Carts belong to a signed-in user (`user:<id>`) or to an anonymous viewer's session
(`session:<id>`). An add-to-cart retried with the same `Idempotency-Key` adds once and gets the
first answer again.
"""

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import Principal
from contracts.products import CartAdded, ProductClicked
from services.products import domain
from services.products.cards import live_status
from services.products.catalog_settings import Deps, checkout
from services.products.models import Cart, CartLine, CartRequest, LiveStreamProduct, Product
from services.products.schemas import QUANTITY_MAX, CartItemAdd, CartLinePublic, CartPublic
from services.products.showcase import NotInLive


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


class CartRefused(Exception):
    """The cart cannot take this (another currency, more than the stock …)."""


class TooMany(ValueError):
    """More of one product than a cart line holds."""


def owner_of(user: Principal | None, session_id: str) -> str:
    return f"user:{user.user_id}" if user is not None else f"session:{session_id}"


async def _visible_product(
    session: AsyncSession, *, stream_id: UUID, product_id: UUID
) -> tuple[LiveStreamProduct, Product]:
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
    await _visible_product(session, stream_id=stream_id, product_id=product_id)
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
    owner = owner_of(user, data.session_id)
    await session.execute(
        insert(Cart)
        .values(
            id=uuid4(),
            owner=owner,
            user_id=user.user_id if user is not None else None,
            session_id=data.session_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["owner"])
    )
    # The cart's row, locked: a retry racing its original waits and then finds its answer.
    cart = (
        await session.execute(
            sa.select(Cart)
            .where(col(Cart.owner) == owner)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    fingerprint = domain.fingerprint(data.model_dump(mode="json"))
    if idempotency_key is not None:
        answered = await session.get(CartRequest, (cart.id, idempotency_key))
        if answered is not None:
            if answered.fingerprint != fingerprint:
                raise IdempotencyKeyReused(idempotency_key)
            answer = CartPublic.model_validate(answered.answer)
            await session.rollback()  # nothing to add: release the cart at once
            return answer

    item, product = await _visible_product(
        session, stream_id=data.stream_id, product_id=data.product_id
    )
    lines = await _lines(session, cart.id)
    if any(line.currency != product.currency for line in lines):
        raise CartRefused(f"this cart is in {lines[0].currency}, the product in {product.currency}")
    line = next(
        (ln for ln in lines if (ln.stream_id, ln.product_id) == (data.stream_id, data.product_id)),
        None,
    )
    quantity = (line.quantity if line is not None else 0) + data.quantity
    if quantity > QUANTITY_MAX:
        raise TooMany(f"at most {QUANTITY_MAX} of one product in a cart")
    in_cart = sum(ln.quantity for ln in lines if ln.product_id == product.id) + data.quantity
    if product.stock is not None and in_cart > product.stock:
        raise CartRefused(f"only {product.stock} left in stock")
    price = domain.unit_price(product.price, item.special_price)
    if line is None:
        line = CartLine(
            cart_id=cart.id,
            stream_id=data.stream_id,
            product_id=product.id,
            name=product.name,
            quantity=quantity,
            unit_price=price,
            currency=product.currency,
            external_id=product.external_id,
        )
        session.add(line)
        lines.append(line)
    else:
        line.quantity, line.unit_price, line.name = quantity, price, product.name
    cart.updated_at = now
    await deps.outbox.record(
        session,
        CartAdded(
            product_id=product.id,
            quantity=data.quantity,
            cart_id=cart.id,
            session_id=data.session_id,
            user_id=user.user_id if user is not None else None,
            unit_price=price,
            currency=product.currency,
        ),
        stream_id=data.stream_id,
    )
    answer = await _present(session, cart=cart, lines=lines)
    if idempotency_key is not None:
        session.add(
            CartRequest(
                cart_id=cart.id,
                key=idempotency_key,
                fingerprint=fingerprint,
                answer=answer.model_dump(mode="json"),
            )
        )
    await session.commit()
    return answer


async def get_cart(*, session: AsyncSession, user: Principal | None, session_id: str) -> CartPublic:
    cart = (
        await session.execute(sa.select(Cart).where(col(Cart.owner) == owner_of(user, session_id)))
    ).scalar_one_or_none()
    if cart is None:
        return CartPublic(
            id=None, lines=[], total=Decimal("0.00"), currency=None, checkout_url=None
        )
    return await _present(session, cart=cart, lines=await _lines(session, cart.id))


async def _lines(session: AsyncSession, cart_id: UUID) -> list[CartLine]:
    return list(
        (
            await session.execute(
                sa.select(CartLine)
                .where(col(CartLine.cart_id) == cart_id)
                .order_by(col(CartLine.created_at), col(CartLine.product_id))
            )
        ).scalars()
    )


async def _present(session: AsyncSession, *, cart: Cart, lines: list[CartLine]) -> CartPublic:
    quantities: dict[tuple[str, str | None], int] = defaultdict(int)
    for line in lines:
        quantities[(str(line.product_id), line.external_id)] += line.quantity
    where = await checkout(session=session)
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
            )
            for line in lines
        ],
        total=sum((line.unit_price * line.quantity for line in lines), Decimal("0.00")),
        currency=lines[0].currency if lines else None,
        checkout_url=domain.checkout_url(
            shop_url=where.shop_url,
            template=where.template,
            items=[
                domain.CheckoutItem(product_id=pid, external_id=eid, quantity=qty)
                for (pid, eid), qty in quantities.items()
            ],
        ),
    )
