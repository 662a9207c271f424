"""Thin HTTP routes: parse the request, call a use case, present the result."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, status
from fastapi.responses import Response

from chassis.auth import AdminUser, CurrentUser, MaybeUser, admin, signed_in
from chassis.pages import Cursor, InvalidCursor, Limit, decode_cursor, encode_cursor
from chassis.routes import Refusal, SessionDep, answer_domain_errors
from contracts.products import LiveProduct
from contracts.streams import StreamStatus
from services.products import (
    cart_claim,
    carts,
    catalog,
    catalog_settings,
    offer_api,
    offers,
    shop_webhooks,
    showcase,
    viewers,
)
from services.products.api_deps import DepsDep
from services.products.cards import StreamNotFound, live_status
from services.products.schemas import (
    IDEMPOTENCY_KEY_MAX,
    CartClaim,
    CartItemAdd,
    CartItemSet,
    CartPublic,
    CatalogSettingsRead,
    CatalogSettingsWrite,
    Click,
    FeaturedPeriodPublic,
    LiveProductOrder,
    LiveProductWrite,
    ProductCreate,
    ProductPage,
    ProductPublic,
    ProductUpdate,
    SessionId,
)
from services.products.shops import ShopUnavailable

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
]

catalog_router = APIRouter(prefix="/api/catalog", tags=["catalog"])
SEARCH_DEPTH = 100_000  # how far into the results a page may start
live_router = APIRouter(prefix="/api/live", tags=["live products"])


# --- catalog (admins) ----------------------------------------------------------------------------


@catalog_router.get("/products", response_model=ProductPage)
async def search_products(
    session: SessionDep,
    deps: DepsDep,
    _: AdminUser,
    search: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
    offset: Annotated[
        int | None, Query(ge=0, le=SEARCH_DEPTH, deprecated=True, description="use `cursor`")
    ] = None,
) -> ProductPage:
    """Search the active source (the local catalog or the shop), a page at a time. The shops
    page by number, so a cursor here is where the next page starts in the results."""
    start = decode_cursor(cursor, int)[0] if cursor is not None else offset or 0
    if not 0 <= start <= SEARCH_DEPTH:
        raise InvalidCursor
    products, total = await catalog.search_products(
        session=session,
        deps=deps,
        search=(search or "").strip() or None,
        limit=limit,
        offset=start,
    )
    following = start + limit
    return ProductPage(
        items=[ProductPublic.model_validate(p, from_attributes=True) for p in products],
        total=total,
        next_cursor=encode_cursor(following) if following < total else None,
    )


@catalog_router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductPublic)
async def create_product(data: ProductCreate, session: SessionDep, _: AdminUser) -> ProductPublic:
    product = await catalog.create_product(session=session, data=data)
    return ProductPublic.model_validate(product, from_attributes=True)


@catalog_router.get("/products/{product_id}", response_model=ProductPublic)
async def get_product(
    product_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> ProductPublic:
    product = await catalog.get_product(session=session, deps=deps, product_id=product_id)
    return ProductPublic.model_validate(product, from_attributes=True)


@catalog_router.put("/products/{product_id}", response_model=ProductPublic)
async def update_product(
    product_id: UUID, data: ProductUpdate, session: SessionDep, deps: DepsDep, _: AdminUser
) -> ProductPublic:
    product = await catalog.update_product(
        session=session, deps=deps, product_id=product_id, data=data
    )
    return ProductPublic.model_validate(product, from_attributes=True)


@catalog_router.delete("/products/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_product(
    product_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> None:
    await catalog.delete_product(session=session, deps=deps, product_id=product_id)


@catalog_router.get("/settings", response_model=CatalogSettingsRead)
async def get_catalog_settings(
    session: SessionDep, deps: DepsDep, _: AdminUser
) -> CatalogSettingsRead:
    return await catalog_settings.get_settings(session=session, deps=deps)


@catalog_router.put("/settings", response_model=CatalogSettingsRead)
async def put_catalog_settings(
    data: CatalogSettingsWrite, session: SessionDep, deps: DepsDep, _: AdminUser
) -> CatalogSettingsRead:
    return await catalog_settings.put_settings(session=session, deps=deps, data=data)


# --- a live's products ---------------------------------------------------------------------------


@live_router.get("/streams/{stream_id}/products", response_model=list[LiveProduct])
async def list_live_products(
    stream_id: UUID, session: SessionDep, user: MaybeUser
) -> list[LiveProduct]:
    """The live's products in order. Hidden products, and promo codes before the live starts,
    are for admins only."""
    admin = user is not None and user.is_admin
    return await showcase.list_live_products(session=session, stream_id=stream_id, admin=admin)


@live_router.post("/streams/{stream_id}/products", response_model=LiveProduct)
async def put_live_product(
    stream_id: UUID,
    data: LiveProductWrite,
    session: SessionDep,
    deps: DepsDep,
    _: AdminUser,
    response: Response,
) -> LiveProduct:
    """Add a product to the live (201) or change it there (200)."""
    product, added = await showcase.put_live_product(
        session=session, deps=deps, stream_id=stream_id, data=data
    )
    response.status_code = status.HTTP_201_CREATED if added else status.HTTP_200_OK
    return product


@live_router.put("/streams/{stream_id}/products/order", response_model=list[LiveProduct])
async def reorder_live_products(
    stream_id: UUID, data: LiveProductOrder, session: SessionDep, deps: DepsDep, _: AdminUser
) -> list[LiveProduct]:
    return await showcase.reorder(
        session=session, deps=deps, stream_id=stream_id, product_ids=data.product_ids
    )


@live_router.delete(
    "/streams/{stream_id}/products/{product_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def remove_live_product(
    stream_id: UUID, product_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> None:
    await showcase.remove_live_product(
        session=session, deps=deps, stream_id=stream_id, product_id=product_id
    )


@live_router.post("/streams/{stream_id}/products/{product_id}/feature", response_model=LiveProduct)
async def feature_product(
    stream_id: UUID, product_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> LiveProduct:
    """Present this product; the one presented before steps down in the same instant."""
    return await showcase.feature(
        session=session, deps=deps, stream_id=stream_id, product_id=product_id
    )


@live_router.delete("/streams/{stream_id}/featured", status_code=status.HTTP_204_NO_CONTENT)
async def unfeature_product(
    stream_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> None:
    await showcase.unfeature(session=session, deps=deps, stream_id=stream_id)


@live_router.get("/streams/{stream_id}/featured", response_model=LiveProduct)
async def featured_product(stream_id: UUID, session: SessionDep, user: MaybeUser) -> LiveProduct:
    admin = user is not None and user.is_admin
    return await showcase.featured_product(session=session, stream_id=stream_id, admin=admin)


@live_router.get("/streams/{stream_id}/featured-history", response_model=list[FeaturedPeriodPublic])
async def featured_history(
    stream_id: UUID, session: SessionDep, user: MaybeUser
) -> list[FeaturedPeriodPublic]:
    """Which product was presented when, in seconds from the live's start: admins any time,
    anyone once the live has ended (a shoppable replay's timeline)."""
    admin_caller = user is not None and user.is_admin
    if not admin_caller and (await live_status(session, stream_id)).status != StreamStatus.ENDED:
        await admin(await signed_in(user))  # refused as by any admin-only route
    return await showcase.featured_history(session=session, stream_id=stream_id, admin=admin_caller)


# --- viewers -------------------------------------------------------------------------------------


@live_router.post(
    "/streams/{stream_id}/products/{product_id}/click", status_code=status.HTTP_202_ACCEPTED
)
async def click_product(
    stream_id: UUID,
    product_id: UUID,
    data: Click,
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
) -> dict[str, str]:
    await viewers.record_click(
        session=session,
        deps=deps,
        stream_id=stream_id,
        product_id=product_id,
        session_id=data.session_id,
        user=user,
    )
    return {"status": "accepted"}


@live_router.post("/cart/items", status_code=status.HTTP_201_CREATED, response_model=CartPublic)
async def add_to_cart(
    data: CartItemAdd,
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
    idempotency_key: IdempotencyKey = None,
) -> CartPublic:
    """Put a product of a live in the viewer's cart (a signed-in user's, else the session's).
    A retry with the same `Idempotency-Key` adds nothing and answers the same. Sold out, or more
    than the stock: 409 with what is left in `detail`."""
    return await carts.add_to_cart(
        session=session, deps=deps, user=user, data=data, idempotency_key=idempotency_key
    )


@live_router.put("/cart/items", response_model=CartPublic)
async def set_cart_quantity(
    data: CartItemSet,
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
    idempotency_key: IdempotencyKey = None,
) -> CartPublic:
    """Set the quantity of a line of the cart (0 removes it); 404 if the cart has no such line.
    More than before follows the rules of adding (stock, currency, the product still shown)."""
    return await carts.set_quantity(
        session=session, deps=deps, user=user, data=data, idempotency_key=idempotency_key
    )


@live_router.delete(
    "/cart/items/{stream_id}/{product_id}",
    response_model=CartPublic,
    summary="Remove a line from the cart; answers the cart (200)",
)
async def remove_cart_line(
    stream_id: UUID,
    product_id: UUID,
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
    session_id: Annotated[SessionId | None, Query()] = None,
) -> CartPublic:
    """404 if the cart has no line for this product of this live."""
    if user is None and session_id is None:
        raise HTTPException(422, "session_id is required without a signed-in user")
    return await carts.remove_line(
        session=session,
        deps=deps,
        user=user,
        session_id=session_id or "",
        stream_id=stream_id,
        product_id=product_id,
    )


@live_router.post("/cart/claim", response_model=CartPublic)
async def claim_cart(
    data: CartClaim, session: SessionDep, deps: DepsDep, user: CurrentUser
) -> CartPublic:
    """Move the cart filled before signing in (the session's) into the user's; harmless twice.
    409 when the two carts are in different currencies (then neither changes)."""
    return await cart_claim.claim(session=session, deps=deps, user=user, session_id=data.session_id)


@live_router.get("/cart", response_model=CartPublic)
async def get_cart(
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
    session_id: Annotated[SessionId | None, Query()] = None,
) -> CartPublic:
    if user is None and session_id is None:
        raise HTTPException(422, "session_id is required without a signed-in user")
    return await carts.get_cart(session=session, deps=deps, user=user, session_id=session_id or "")


_REFUSALS: dict[type[Exception], int | Refusal] = {
    catalog.ProductNotFound: Refusal(404, "product not found"),
    showcase.NotInLive: Refusal(404, "this product is not in this live"),
    showcase.NothingFeatured: Refusal(404, "no product is featured"),
    StreamNotFound: Refusal(404, "live not found"),
    catalog.SkuTaken: Refusal(409, "another product has this sku"),
    catalog.ManagedByShop: Refusal(409, "this product is the shop's: change it in the shop"),
    showcase.HiddenProductCannotBeFeatured: Refusal(409, "a hidden product cannot be featured"),
    carts.NotInCart: Refusal(404, "this product is not in your cart"),
    carts.CartRefused: 409,
    carts.IdempotencyKeyReused: Refusal(422, "this Idempotency-Key was used for another request"),
    carts.TooMany: 422,
    showcase.WrongOrder: 422,
    catalog_settings.InvalidCatalogSettings: 422,
    showcase.LiveOver: Refusal(409, "the live has ended: products cannot be added or featured"),
    offers.OfferOver: Refusal(409, "the live's offer is over: it cannot change any more"),
    offers.CodeTaken: Refusal(409, "another live's offer has this code"),
    ShopUnavailable: 502,
}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(catalog_router)
    app.include_router(live_router)
    app.include_router(offer_api.router)
    app.include_router(shop_webhooks.router)

    answer_domain_errors(app, _REFUSALS)
