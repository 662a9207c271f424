"""Use cases of the catalog: local products, and the WooCommerce shop's, cached here.

Each change records its events in the same transaction, then commits.
"""

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts.products import ProductRemoved, ProductUnfeatured
from services.products import offers
from services.products.cards import announce_product_changed
from services.products.catalog_settings import Deps, active_shop, configured_shop
from services.products.models import (
    SHOP_SOURCES,
    FeaturedPeriod,
    Live,
    LiveStreamProduct,
    Product,
    Source,
)
from services.products.schemas import ProductCreate, ProductUpdate
from services.products.shops import ShopProduct, ShopUnavailable

log = logging.getLogger(__name__)

# The fields a viewer's card shows: changing one tells the lives showing the product.
CARD_FIELDS = ("name", "description", "price", "currency", "images", "stock", "product_url")


class ProductNotFound(Exception):
    """No such product in the catalog."""


class SkuTaken(Exception):
    """Another product of the local catalog has this SKU."""


class ManagedByShop(Exception):
    """The product is the shop's: it changes in the shop, not here."""


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(data: ProductCreate | ProductUpdate, fields: set[str]) -> dict:
    """The fields sent, with URLs as strings."""
    values = data.model_dump(include=fields)
    for field in ("product_url",):
        if values.get(field) is not None:
            values[field] = str(values[field])
    if values.get("images") is not None:
        values["images"] = [str(url) for url in values["images"]]
    return values


async def create_product(*, session: AsyncSession, data: ProductCreate) -> Product:
    product = Product(source=Source.LOCAL, **_plain(data, set(type(data).model_fields)))
    session.add(product)
    await _flush_or_sku_taken(session)
    await session.commit()
    return product


async def update_product(
    *, session: AsyncSession, deps: Deps, product_id: UUID, data: ProductUpdate
) -> Product:
    """Change the fields sent; the lives showing the product hear of card changes."""
    product = await _locked(session, product_id)
    if product.source is not Source.LOCAL:
        raise ManagedByShop(product_id)
    changed = False
    card_changed = False
    for field, value in _plain(data, data.model_fields_set).items():
        if getattr(product, field) != value:
            setattr(product, field, value)
            changed = True
            card_changed = card_changed or field in CARD_FIELDS
    if changed:
        product.updated_at = _now()
        await _flush_or_sku_taken(session)
    if card_changed:
        await _product_changed(session, deps=deps, product=product)
    await session.commit()
    return product


async def delete_product(*, session: AsyncSession, deps: Deps, product_id: UUID) -> None:
    """Delete a product; the lives showing it lose it (and their viewers hear so)."""
    product = await _locked(session, product_id)
    if product.source is not Source.LOCAL:
        raise ManagedByShop(product_id)
    await _leave_every_live(session, deps=deps, product=product)
    await session.delete(product)
    await session.commit()


async def _leave_every_live(session: AsyncSession, *, deps: Deps, product: Product) -> None:
    items = (
        await session.execute(
            sa.select(LiveStreamProduct, Live)
            .join(Live, col(Live.stream_id) == col(LiveStreamProduct.stream_id))
            .where(col(LiveStreamProduct.product_id) == product.id)
            .with_for_update(of=Live)
        )
    ).all()
    for item, live in items:
        if item.is_featured:
            await close_featured_period(session, stream_id=live.stream_id)
            await deps.outbox.record(
                session, ProductUnfeatured(product_id=product.id), stream_id=live.stream_id
            )
        if item.visible:
            await deps.outbox.record(
                session, ProductRemoved(product_id=product.id), stream_id=live.stream_id
            )
        await session.delete(item)
    await session.flush()


async def close_featured_period(session: AsyncSession, *, stream_id: UUID) -> None:
    await session.execute(
        sa.update(FeaturedPeriod)
        .where(
            col(FeaturedPeriod.stream_id) == stream_id, col(FeaturedPeriod.unfeatured_at).is_(None)
        )
        .values(unfeatured_at=_now())
    )


async def get_product(*, session: AsyncSession, deps: Deps, product_id: UUID) -> Product:
    """A catalog product; a cached shop product older than the TTL is fetched again first."""
    product = await session.get(Product, product_id)
    if product is None:
        raise ProductNotFound(product_id)
    return await refresh_if_stale(session=session, deps=deps, product=product)


async def refresh_if_stale(*, session: AsyncSession, deps: Deps, product: Product) -> Product:
    """Fetch a cached shop product again once older than the TTL. While the shop is away, the
    cached copy serves."""
    ttl = timedelta(seconds=deps.settings.shop_cache_ttl_s)
    if product.source not in SHOP_SOURCES or (
        product.synced_at is not None and _now() - product.synced_at < ttl
    ):
        return product
    shop = await configured_shop(session=session, deps=deps, source=product.source)
    if shop is None or product.external_id is None:
        return product
    try:
        fetched = await shop.product(product.external_id)
    except ShopUnavailable as error:
        log.warning("serving product %s from cache: %s", product.id, error)
        return product
    if fetched is None:  # gone from the shop: the cache keeps the last known copy
        return product
    [product] = await cache_products(
        session, deps=deps, source=product.source, fetched=[fetched], currency=product.currency
    )
    await session.commit()
    return product


async def search_products(
    *, session: AsyncSession, deps: Deps, search: str | None, limit: int, offset: int
) -> tuple[list[Product], int]:
    """One page of the active source's products (the shop's are cached on the way)."""
    found = await active_shop(session=session, deps=deps)
    if found is not None:
        source, shop = found
        currency = await shop.currency()
        fetched, total = await shop.search(search=search, limit=limit, offset=offset)
        products = await cache_products(
            session, deps=deps, source=source, fetched=fetched, currency=currency
        )
        await session.commit()
        return products, total
    query = sa.select(Product).where(col(Product.source) == Source.LOCAL)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(col(Product.name).ilike(pattern), col(Product.sku).ilike(pattern))
        )
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))
    ).scalar_one()
    page = (
        query.order_by(sa.func.lower(col(Product.name)), col(Product.id))
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(page)).scalars()), total


async def cache_products(
    session: AsyncSession,
    *,
    deps: Deps,
    source: Source,
    fetched: list[ShopProduct],
    currency: str,
) -> list[Product]:
    """Upsert the shop's products by their shop id; lives showing a changed one hear of it."""
    if not fetched:
        return []
    now = _now()
    fields = {
        p.external_id: {
            "name": p.name,
            "description": p.description,
            "price": p.price,
            "currency": p.currency or currency,
            "images": p.images,
            "stock": p.stock,
            "product_url": p.product_url,
            "sku": p.sku,
            "external_parent_id": p.parent_id,
            "inventory_item_id": p.inventory_item_id,
        }
        for p in fetched
    }
    # New ones first (a concurrent search inserting the same one is no conflict) …
    await session.execute(
        insert(Product)
        .values(
            [
                {
                    "id": uuid4(),
                    "source": source,
                    "external_id": external_id,
                    "created_at": now,
                    "updated_at": now,
                    "synced_at": now,
                    **values,
                }
                for external_id, values in fields.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
    )
    # … then every one of them, locked, brought up to date.
    cached = {
        p.external_id: p
        for p in (
            await session.execute(
                sa.select(Product)
                .where(
                    col(Product.source) == source,
                    col(Product.external_id).in_(list(fields)),
                )
                .order_by(col(Product.id))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalars()
    }
    for external_id, values in fields.items():
        product = cached[external_id]
        changed = [field for field, value in values.items() if getattr(product, field) != value]
        for field in changed:
            setattr(product, field, values[field])
        product.synced_at = now
        if changed:
            product.updated_at = now
            if any(field in CARD_FIELDS for field in changed):
                await _product_changed(session, deps=deps, product=product)
    await session.flush()
    return [cached[p.external_id] for p in fetched]


async def _product_changed(session: AsyncSession, *, deps: Deps, product: Product) -> None:
    """Viewers of the lives showing the product see the change; their offers follow its price."""
    await announce_product_changed(session, outbox=deps.outbox, product=product)
    await offers.product_changed(session, outbox=deps.outbox, product_id=product.id)


async def _locked(session: AsyncSession, product_id: UUID) -> Product:
    product = (
        await session.execute(
            sa.select(Product)
            .where(col(Product.id) == product_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def _flush_or_sku_taken(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        await session.rollback()
        if "products_local_sku" in str(error.orig):
            raise SkuTaken from None
        raise
