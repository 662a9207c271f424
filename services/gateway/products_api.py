"""External routes of the products service (the catalog, a live's products and offer, carts):
authentication here, then the products service answers (and checks the token again)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response

from chassis.auth import AdminUser, CurrentUser, MaybeUser, Principal
from contracts.products import LiveProduct
from services.gateway.api import Rest, StreamId, Upstream
from services.gateway.deps import gateway_of
from services.gateway.openapi import (
    ADMIN,
    BODY,
    CONFLICT,
    NOT_FOUND,
    SIGNED_IN,
    TOKEN,
    answers,
    body,
    each_method,
)
from services.gateway.replay import has_replay
from services.products.schemas import (
    CartClaim,
    CartItemAdd,
    CartItemSet,
    CartPublic,
    FeaturedPeriodPublic,
    LiveProductWrite,
    OfferPublic,
    OfferWrite,
)

router = APIRouter()

ProductId = Annotated[uuid.UUID, "a product's id"]


async def _known_live(request: Request, stream_id: uuid.UUID, caller: Principal | None) -> None:
    """The products service learns of lives from events; the gateway makes sure this one exists
    (for the caller: one to watch, or to watch again) before a product command reaches it."""
    gateway = gateway_of(request.app)
    upstream = gateway.upstream
    token = caller.token if caller else None
    if caller is None:
        if await gateway.visibility.visible(str(stream_id)):
            return
    else:
        status, _ = await upstream.get_json(
            "streams", f"/api/live/streams/{stream_id}", token=token
        )
        if status != 404:
            return
    if not await has_replay(upstream=upstream, stream_id=str(stream_id), token=token):
        raise HTTPException(404, "no such live")


# The shop's catalog (local or WooCommerce) and its settings: products/…, settings.
CATALOG = answers(ADMIN, NOT_FOUND, BODY, CONFLICT)


@each_method(
    router, "/api/catalog/{rest:path}", tags=["catalog"], responses=CATALOG,
    operations={
        "GET": ("read_catalog", "The shop's catalog: products (paginated), a product, settings"),
        "POST": ("add_to_catalog", "Add a product to the local catalog"),
        "PUT": ("change_catalog", "Change a product, or the catalog's settings"),
        "DELETE": ("remove_from_catalog", "Delete a product of the local catalog"),
    },
)  # fmt: skip
async def catalog(request: Request, rest: Rest, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


# Whatever the rest of the path: admins' commands, but a viewer's click (`{product_id}/click`).
LIVE_PRODUCT = answers(ADMIN, NOT_FOUND, BODY, CONFLICT)


@router.get(
    "/api/live/streams/{stream_id}/products", tags=["products"], operation_id="live_products",
    response_model=list[LiveProduct], responses=answers(TOKEN, NOT_FOUND),
    summary="A live's products",
)  # fmt: skip
@router.get(
    "/api/live/streams/{stream_id}/featured", tags=["products"], operation_id="featured_product",
    response_model=LiveProduct, responses=answers(TOKEN, NOT_FOUND), summary="Featured product",
)  # fmt: skip
@router.post(
    "/api/live/streams/{stream_id}/products", tags=["products"], operation_id="put_live_product",
    response_model=LiveProduct, openapi_extra=body(LiveProductWrite), responses=LIVE_PRODUCT,
    summary="Add or update a product of a live (featuring one un-features the previous one)",
)  # fmt: skip
@router.delete(
    "/api/live/streams/{stream_id}/featured", tags=["products"], operation_id="unfeature",
    status_code=204, responses=answers(ADMIN, NOT_FOUND, CONFLICT), summary="Unfeature",
)  # fmt: skip
@router.get(
    "/api/live/streams/{stream_id}/featured-history", tags=["products"],
    operation_id="featured_history", response_model=list[FeaturedPeriodPublic],
    responses=answers(TOKEN, NOT_FOUND),
    summary="What was featured when: a shoppable replay's timeline",
)  # fmt: skip
async def live_products(
    request: Request, stream_id: StreamId, caller: MaybeUser, up: Upstream
) -> Response:
    await _known_live(request, stream_id, caller)
    return await up.forward(request, "products")


@each_method(
    router, "/api/live/streams/{stream_id}/products/{rest:path}", tags=["products"],
    responses=LIVE_PRODUCT,
    operations={
        "POST": ("feature_or_click_live_product",
                 "Feature a live's product (`{product_id}/feature`), or a click (`…/click`)"),
        "PUT": ("reorder_live_products", "Reorder a live's products (`order`)"),
        "DELETE": ("remove_live_product", "Remove a product from a live (`{product_id}`)"),
    },
)  # fmt: skip
async def live_product_command(
    request: Request, stream_id: StreamId, rest: Rest, caller: MaybeUser, up: Upstream
) -> Response:
    await _known_live(request, stream_id, caller)
    return await up.forward(request, "products")


@router.get(
    "/api/live/streams/{stream_id}/offer", tags=["offers"], operation_id="get_live_offer",
    response_model=OfferPublic, responses=answers(ADMIN, NOT_FOUND),
    summary="A live's offer: its code, live prices or percentage, window, and the shop's coupons",
)  # fmt: skip
@router.put(
    "/api/live/streams/{stream_id}/offer", tags=["offers"], operation_id="put_live_offer",
    response_model=OfferPublic, openapi_extra=body(OfferWrite),
    responses=answers(ADMIN, NOT_FOUND, BODY, CONFLICT),
    summary="Set a live's offer (409 once it is over)",
)  # fmt: skip
async def live_offer(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "products")


# A cart is the signed-in user's, else the anonymous session's (its `session_id`).
CART = answers(TOKEN, NOT_FOUND, BODY, CONFLICT)


@router.post(
    "/api/live/cart/items", tags=["cart"], status_code=201, response_model=CartPublic,
    openapi_extra=body(CartItemAdd), responses=CART,
    summary="Add a live's product to the cart (409: not that many in stock)",
)  # fmt: skip
async def add_to_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.get(
    "/api/live/cart", tags=["cart"], response_model=CartPublic, responses=answers(TOKEN),
    summary="The caller's cart and checkout link (?session_id= when anonymous)",
)  # fmt: skip
async def read_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.put(
    "/api/live/cart/items", tags=["cart"], response_model=CartPublic,
    openapi_extra=body(CartItemSet), responses=CART,
    summary="Set a cart line's quantity (0 removes it); answers the cart",
)  # fmt: skip
async def change_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.delete(
    "/api/live/cart/items/{stream_id}/{product_id}", tags=["cart"], response_model=CartPublic,
    responses=CART,
    summary="Remove a line from the cart (?session_id= when anonymous); answers the cart (200)",
)  # fmt: skip
async def remove_from_cart(
    request: Request, stream_id: StreamId, product_id: ProductId, caller: MaybeUser, up: Upstream
) -> Response:
    return await up.forward(request, "products")


@router.post(
    "/api/live/cart/claim", tags=["cart"], response_model=CartPublic,
    openapi_extra=body(CartClaim), responses=answers(SIGNED_IN, BODY, CONFLICT),
    summary="On sign-in, move the session's cart into the user's; answers the user's cart",
)  # fmt: skip
async def claim_cart(request: Request, caller: CurrentUser, up: Upstream) -> Response:
    return await up.forward(request, "products")
