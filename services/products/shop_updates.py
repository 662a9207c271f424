"""What the shops' product webhooks change in the catalog: the cached copies of the product, once
per delivery, never a later change undone by a late delivery. Products the catalog has not cached
are not added (a search caches them)."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.products import shopify_format
from services.products.catalog import cache_products
from services.products.catalog_settings import Deps, configured_shop
from services.products.models import Product, ShopWebhook, Source
from services.products.shops import ShopProduct
from services.products.woocommerce import shop_product

KEPT = timedelta(days=7)  # shops retry for hours, not days: older delivery ids are forgotten
NOT_FOR_SALE = ("draft", "pending", "private", "trash")  # WooCommerce statuses


class InvalidPayload(ValueError):
    """The body is not what the topic sends."""


@dataclass(frozen=True)
class Delivery:
    source: Source
    delivery_id: str
    topic: str


async def shopify_product_updated(
    *, session: AsyncSession, deps: Deps, delivery: Delivery, payload: dict[str, Any]
) -> str:
    """`products/update`: the cached variants it lists take its name, price, images, stock."""
    try:
        product_id = shopify_format.numeric_id(payload["id"])
        variant_ids = [
            shopify_format.numeric_id(v["id"])
            for v in payload.get("variants") or []
            if isinstance(v, dict) and "id" in v
        ]
    except (KeyError, ValueError):
        raise InvalidPayload("not a Shopify product") from None
    cached = await _locked(
        session,
        Source.SHOPIFY,
        sa.or_(
            col(Product.external_parent_id) == product_id,
            col(Product.external_id).in_(variant_ids),
        ),
    )
    moment = shopify_format.webhook_moment(payload.get("updated_at"))
    if (seen := await _note(session, delivery, subject=f"product:{product_id}", at=moment)) or (
        not cached
    ):
        await session.commit()
        return seen or "unknown product"
    told = shopify_format.webhook_variants(
        payload, cached={p.external_id: shop_copy(p) for p in cached if p.external_id}
    )
    return await _apply(session, deps=deps, source=Source.SHOPIFY, fetched=told, cached=cached)


async def shopify_inventory_updated(
    *, session: AsyncSession, deps: Deps, delivery: Delivery, payload: dict[str, Any]
) -> str:
    """`inventory_levels/update` tells one location's level: the variant holding that inventory
    item is asked of Shopify again for its stock over every location. Raises `ShopUnavailable`
    (nothing noted, so that Shopify delivers again) when Shopify cannot be asked."""
    try:
        item = shopify_format.numeric_id(payload["inventory_item_id"])
    except (KeyError, ValueError):
        raise InvalidPayload("not a Shopify inventory level") from None
    where = col(Product.inventory_item_id) == item
    variants = [
        p.external_id
        for p in (await session.execute(_select(Source.SHOPIFY, where))).scalars()
        if p.external_id
    ]
    shop = await configured_shop(session=session, deps=deps, source=Source.SHOPIFY)
    if await _seen(session, delivery) or not variants or shop is None:
        seen = await _note(session, delivery, subject=f"inventory_item:{item}", at=None)
        await session.commit()
        return seen or ("unknown product" if not variants else "no shop configured")
    await session.commit()  # no transaction stays open while Shopify is asked
    fetched = [found for v in variants if (found := await shop.product(v)) is not None]
    cached = await _locked(session, Source.SHOPIFY, where)
    # What was fetched is the stock as of now: a delivery of an older level is no less right.
    moment = shopify_format.webhook_moment(payload.get("updated_at"))
    subject = f"inventory_item:{item}"
    if seen := await _note(session, delivery, subject=subject, at=moment, in_order=False):
        await session.commit()
        return seen
    return await _apply(session, deps=deps, source=Source.SHOPIFY, fetched=fetched, cached=cached)


async def woocommerce_product_changed(
    *, session: AsyncSession, deps: Deps, delivery: Delivery, payload: dict[str, Any]
) -> str:
    """`product.updated` carries the product's JSON; `product.deleted` leaves it (and its
    variations) sold out. Both say nothing of products not cached."""
    try:
        product_id = str(int(payload["id"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidPayload("not a WooCommerce product") from None
    deleted = delivery.topic == "product.deleted"
    where = col(Product.external_id) == product_id
    if deleted:
        where = sa.or_(where, col(Product.external_parent_id) == product_id)
    cached = await _locked(session, Source.WOOCOMMERCE, where)
    # A deletion is never late (it says no time of its own); noted as of now, it makes the
    # updates of before it late.
    moment = datetime.now(UTC) if deleted else _woocommerce_moment(payload)
    subject = f"product:{product_id}"
    seen = await _note(session, delivery, subject=subject, at=moment, in_order=not deleted)
    if seen or not cached:
        await session.commit()
        return seen or "unknown product"
    if deleted:
        told = [replace(shop_copy(p), stock=0) for p in cached]
    else:
        try:
            fresh = shop_product(payload)
        except (KeyError, TypeError, ValueError):
            raise InvalidPayload("not a WooCommerce product") from None
        if payload.get("status") in NOT_FOR_SALE:
            fresh = replace(fresh, stock=0)
        told = [_woocommerce_merge(fresh, p) for p in cached]
    return await _apply(session, deps=deps, source=Source.WOOCOMMERCE, fetched=told, cached=cached)


def shop_copy(product: Product) -> ShopProduct:
    """A cached product as the shop described it when cached."""
    assert product.external_id is not None
    return ShopProduct(
        external_id=product.external_id,
        name=product.name,
        description=product.description,
        price=product.price,
        images=list(product.images),
        stock=product.stock,
        product_url=product.product_url,
        sku=product.sku,
        parent_id=product.external_parent_id,
        inventory_item_id=product.inventory_item_id,
        currency=product.currency,
    )


def _woocommerce_merge(fresh: ShopProduct, cached: Product) -> ShopProduct:
    """A variation's webhook names neither its product nor its attributes' labels: it keeps the
    name and parent it was cached with, and what the payload leaves empty."""
    variation = cached.external_parent_id is not None
    return replace(
        fresh,
        name=cached.name if variation else fresh.name,
        description=fresh.description or cached.description,
        images=fresh.images or list(cached.images),
        parent_id=fresh.parent_id or cached.external_parent_id,
        inventory_item_id=cached.inventory_item_id,
        currency=cached.currency,
    )


def _woocommerce_moment(payload: dict[str, Any]) -> datetime | None:
    """`date_modified_gmt` is UTC without its offset."""
    value = payload.get("date_modified_gmt")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except (TypeError, ValueError):
        return None


# --- each delivery once, in order -----------------------------------------------------------------


async def _seen(session: AsyncSession, delivery: Delivery) -> bool:
    found = await session.get(ShopWebhook, (delivery.source, delivery.delivery_id))
    return found is not None


async def _note(
    session: AsyncSession,
    delivery: Delivery,
    *,
    subject: str,
    at: datetime | None,
    in_order: bool = True,
) -> str | None:
    """Note the delivery; "duplicate" if it was noted before, "late" (when `in_order`) if a
    change of the same subject that happened after it was applied already, None when it is to
    be applied."""
    now = datetime.now(UTC)
    await session.execute(sa.delete(ShopWebhook).where(col(ShopWebhook.received_at) < now - KEPT))
    noted = await session.execute(
        insert(ShopWebhook)
        .values(
            source=delivery.source,
            delivery_id=delivery.delivery_id,
            topic=delivery.topic,
            subject=subject,
            occurred_at=at,
            received_at=now,
        )
        .on_conflict_do_nothing()
        .returning(col(ShopWebhook.delivery_id))
    )
    if noted.first() is None:
        return "duplicate"
    if at is None or not in_order:
        return None
    later = await session.execute(
        sa.select(sa.literal(1)).where(
            col(ShopWebhook.source) == delivery.source,
            col(ShopWebhook.subject) == subject,
            col(ShopWebhook.occurred_at) > at,
            col(ShopWebhook.delivery_id) != delivery.delivery_id,
        )
    )
    return "late" if later.first() is not None else None


def _select(source: Source, where: Any) -> sa.Select:
    return (
        sa.select(Product)
        .where(col(Product.source) == source, where)
        .order_by(col(Product.id))
        .execution_options(populate_existing=True)
    )


async def _locked(session: AsyncSession, source: Source, where: Any) -> list[Product]:
    """The cached products, locked: deliveries of one product queue up here, so the check for
    a later one sees those before it."""
    return list((await session.execute(_select(source, where).with_for_update())).scalars())


async def _apply(
    session: AsyncSession,
    *,
    deps: Deps,
    source: Source,
    fetched: list[ShopProduct],
    cached: list[Product],
) -> str:
    known = {p.external_id for p in cached}
    fetched = [p for p in fetched if p.external_id in known]  # never a product not cached
    if fetched:
        await cache_products(
            session, deps=deps, source=source, fetched=fetched, currency=cached[0].currency
        )
    await session.commit()
    return "applied"
