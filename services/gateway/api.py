"""External routes (DESIGN.md §3): authentication here, then the owning service answers."""

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from chassis.asyncapi import build as build_asyncapi
from chassis.auth import AdminUser, CurrentUser, MaybeUser, Principal
from services.gateway.deps import GatewayDep, gateway_of
from services.gateway.live import gather_live
from services.gateway.replay import Replay, gather_replay, has_replay
from services.gateway.upstream import Upstream as UpstreamClient
from services.gateway.webhooks import webhook_owner

router = APIRouter()

StreamId = Annotated[uuid.UUID, "a live's id"]


def upstream(request: Request) -> UpstreamClient:
    return gateway_of(request.app).upstream


Upstream = Annotated[UpstreamClient, Depends(upstream)]


@router.get(
    "/api/live/streams", tags=["streams"],
    summary="List lives (non-admins: scheduled and live ones; ?status=ended: those with a replay)",
)  # fmt: skip
async def list_streams(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.post("/api/live/streams", tags=["streams"], summary="Schedule a live", status_code=201)
async def create_stream(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.get("/api/live/streams/{stream_id}", tags=["streams"], summary="A live, aggregated")
async def get_stream(stream_id: StreamId, caller: MaybeUser, gateway: GatewayDep) -> dict:
    live = await gather_live(
        upstream=gateway.upstream,
        presence=gateway.presence,
        stream_id=str(stream_id),
        token=caller.token if caller else None,
    )
    if live is None:
        raise HTTPException(404, "no such live")
    return live


@router.get(
    "/api/live/streams/{stream_id}/replay", tags=["streams"], response_model=Replay,
    summary="A shoppable replay: an ended live's recording and what was featured when",
)  # fmt: skip
async def get_replay(stream_id: StreamId, caller: MaybeUser, up: Upstream) -> Replay:
    """404 unless the live ended with a replay (admins may see one as soon as it exists)."""
    replay = await gather_replay(
        upstream=up,
        stream_id=str(stream_id),
        token=caller.token if caller else None,
    )
    if replay is None:
        raise HTTPException(404, "no replay of this live")
    return replay


@router.put("/api/live/streams/{stream_id}", tags=["streams"], summary="Update a live")
async def update_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.delete(
    "/api/live/streams/{stream_id}", tags=["streams"], summary="Delete a live", status_code=204
)
async def delete_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.post("/api/live/streams/{stream_id}/start", tags=["streams"], summary="Go live")
async def start_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.post("/api/live/streams/{stream_id}/end", tags=["streams"], summary="End a live")
async def end_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.post("/api/live/streams/{stream_id}/rotate-key", tags=["streams"], summary="New stream key")
async def rotate_key(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.get("/api/live/settings", tags=["settings"], summary="Platform and provider keys")
async def get_settings(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.put("/api/live/settings", tags=["settings"], summary="Choose the platform, set keys")
async def put_settings(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.post("/webhooks/{source}", tags=["webhooks"], include_in_schema=False)
@router.post("/webhooks/{source}/{rest:path}", tags=["webhooks"], include_in_schema=False)
async def webhook(request: Request, source: str, up: Upstream) -> Response:
    """Routed by source, and for the shops by topic; the service verifies the signature."""
    owner = webhook_owner(source, request.headers)
    if owner is None:
        raise HTTPException(404, "unknown webhook source")
    return await up.forward(request, owner, signed=True)


@router.api_route("/api/live/chat", methods=["GET", "POST"], tags=["chat"], summary="Chat")
@router.api_route(
    "/api/live/chat/{rest:path}", methods=["GET", "POST", "DELETE"], tags=["chat"],
    summary="Chat moderation: pin, delete, held messages, bans",
)  # fmt: skip
async def chat(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "chat")


@router.api_route(
    "/api/live/streams/{stream_id}/chat", methods=["GET", "PUT"], tags=["chat"],
    summary="A live's chat options: on/off, slow mode, blocked words",
)  # fmt: skip
async def chat_options(
    request: Request, stream_id: StreamId, caller: MaybeUser, up: Upstream
) -> Response:
    return await up.forward(request, "chat")


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


@router.api_route(
    "/api/catalog/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"], tags=["catalog"],
    summary="The shop's catalog (local or WooCommerce) and its settings",
)  # fmt: skip
async def catalog(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.get(
    "/api/live/streams/{stream_id}/products", tags=["products"], summary="A live's products"
)
@router.get("/api/live/streams/{stream_id}/featured", tags=["products"], summary="Featured product")
async def read_live_products(
    request: Request, stream_id: StreamId, caller: MaybeUser, up: Upstream
) -> Response:
    await _known_live(request, stream_id, caller)
    return await up.forward(request, "products")


@router.post(
    "/api/live/streams/{stream_id}/products", tags=["products"],
    summary="Add or update a product of a live (featuring one un-features the previous one)",
)  # fmt: skip
@router.api_route(
    "/api/live/streams/{stream_id}/products/{rest:path}", methods=["POST", "PUT", "DELETE"],
    tags=["products"], summary="Remove, reorder, feature a live's products; viewers' clicks",
)  # fmt: skip
@router.delete("/api/live/streams/{stream_id}/featured", tags=["products"], summary="Unfeature")
@router.get(
    "/api/live/streams/{stream_id}/featured-history", tags=["products"],
    summary="What was featured when: a shoppable replay's timeline",
)  # fmt: skip
async def live_products(
    request: Request, stream_id: StreamId, caller: MaybeUser, up: Upstream
) -> Response:
    await _known_live(request, stream_id, caller)
    return await up.forward(request, "products")


@router.api_route(
    "/api/live/streams/{stream_id}/offer", methods=["GET", "PUT"], tags=["offers"],
    summary="A live's offer: its code, live prices or percentage, window, and the shop's coupons",
)  # fmt: skip
async def live_offer(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "products")


@router.post("/api/live/cart/items", tags=["cart"], summary="Add a live's product to the cart")
async def add_to_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.get("/api/live/cart", tags=["cart"], summary="The caller's cart and checkout link")
async def read_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.put(
    "/api/live/cart/items", tags=["cart"],
    summary="Set a cart line's quantity (0 removes it); answers the cart",
)  # fmt: skip
@router.delete(
    "/api/live/cart/items/{stream_id}/{product_id}", tags=["cart"],
    summary="Remove a line from the cart (?session_id= when anonymous); answers the cart (200)",
)  # fmt: skip
async def change_cart(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.post(
    "/api/live/cart/claim", tags=["cart"],
    summary="On sign-in, move the session's cart into the user's; answers the user's cart",
)  # fmt: skip
async def claim_cart(request: Request, caller: CurrentUser, up: Upstream) -> Response:
    return await up.forward(request, "products")


@router.api_route(
    "/api/live/viewers", methods=["POST", "PUT"], tags=["viewers"],
    summary="A player without a websocket starts (POST, again as a heartbeat) or stops (PUT)",
)  # fmt: skip
async def player_viewers(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "analytics")


@router.get(
    "/api/live/streams/{stream_id}/analytics", tags=["analytics"], summary="A live's analytics"
)
@router.get(
    "/api/live/streams/{stream_id}/analytics.csv", tags=["analytics"],
    summary="A live's per-minute series as CSV",
)  # fmt: skip
@router.get(
    "/api/live/streams/{stream_id}/orders", tags=["analytics"],
    summary="The orders credited to a live, newest first, and why each counts (?cursor=&limit=)",
)  # fmt: skip
async def live_analytics(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "analytics")


@router.get("/asyncapi.json", tags=["events"], summary="AsyncAPI document of every event")
async def asyncapi(gateway: GatewayDep) -> dict:
    """This deployment's: its subject root and JetStream stream."""
    return _asyncapi(gateway.settings.subject_root, gateway.settings.jetstream_stream)


@functools.cache
def _asyncapi(subject_root: str, jetstream_stream: str) -> dict:
    return build_asyncapi(subject_root=subject_root, jetstream_stream=jetstream_stream)
