"""External routes (DESIGN.md §3): authentication here, then the owning service answers.

The routes of the products service are in products_api.py, the notifications service's in
reminders_api.py. What the document says of each route's answers: services/gateway/openapi.py.
"""

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from chassis.asyncapi import build as build_asyncapi
from chassis.auth import AdminUser, MaybeUser
from chassis.pages import Page
from contracts.chat import ChatMessage
from services.analytics.live_orders import CreditedOrders
from services.chat.models import (
    ChatOptionsModerator,
    ChatOptionsPublic,
    ChatOptionsUpdate,
    ChatPage,
    ChatPost,
)
from services.gateway.deps import GatewayDep, gateway_of
from services.gateway.live import gather_live
from services.gateway.openapi import (
    ADMIN,
    BODY,
    CONFLICT,
    MODERATOR,
    NOT_FOUND,
    PAGED,
    SIGNED_IN,
    THROTTLED,
    TOKEN,
    answers,
    body,
    each_method,
    error,
)
from services.gateway.replay import Replay, gather_replay
from services.gateway.upstream import Upstream as UpstreamClient
from services.gateway.webhooks import webhook_owner
from services.streams.models import (
    SettingsRead,
    SettingsWrite,
    StreamAdmin,
    StreamCreate,
    StreamPublic,
    StreamUpdate,
)

router = APIRouter()

StreamId = Annotated[uuid.UUID, "a live's id"]
# What a catch-all passes on after its prefix; the service behind it routes the rest.
Rest = Annotated[str, Path(description="the rest of the path, routed by the service")]


def upstream(request: Request) -> UpstreamClient:
    return gateway_of(request.app).upstream


Upstream = Annotated[UpstreamClient, Depends(upstream)]


@router.get(
    "/api/live/streams", tags=["streams"], response_model=Page[StreamAdmin | StreamPublic],
    responses=answers(TOKEN, PAGED),
    summary="List lives (non-admins: scheduled and live ones; ?status=ended: those with a replay)",
)  # fmt: skip
async def list_streams(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.post(
    "/api/live/streams", tags=["streams"], status_code=201, response_model=StreamAdmin,
    openapi_extra=body(StreamCreate), responses=answers(ADMIN, BODY), summary="Schedule a live",
)  # fmt: skip
async def create_stream(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.get(
    "/api/live/streams/{stream_id}", tags=["streams"], responses=answers(TOKEN, NOT_FOUND),
    summary="A live, aggregated",
)  # fmt: skip
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
    responses=answers(TOKEN, NOT_FOUND),
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


@router.put(
    "/api/live/streams/{stream_id}", tags=["streams"], response_model=StreamAdmin,
    openapi_extra=body(StreamUpdate), responses=answers(ADMIN, NOT_FOUND, BODY, CONFLICT),
    summary="Update a live",
)  # fmt: skip
async def update_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.delete(
    "/api/live/streams/{stream_id}", tags=["streams"], status_code=204,
    responses=answers(ADMIN, NOT_FOUND, CONFLICT), summary="Delete a live (409 while live)",
)  # fmt: skip
async def delete_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


# A live's state machine: scheduled → live → ended; any other step is a 409.
TRANSITION = answers(ADMIN, NOT_FOUND, CONFLICT)


@router.post(
    "/api/live/streams/{stream_id}/start", tags=["streams"], response_model=StreamAdmin,
    responses=TRANSITION, summary="Go live",
)  # fmt: skip
async def start_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.post(
    "/api/live/streams/{stream_id}/end", tags=["streams"], response_model=StreamAdmin,
    responses=TRANSITION, summary="End a live",
)  # fmt: skip
async def end_stream(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.post(
    "/api/live/streams/{stream_id}/rotate-key", tags=["streams"], response_model=StreamAdmin,
    responses=TRANSITION, summary="New stream key",
)  # fmt: skip
async def rotate_key(
    request: Request, stream_id: StreamId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "streams")


@router.get(
    "/api/live/settings", tags=["settings"], response_model=SettingsRead,
    responses=answers(ADMIN), summary="Platform and provider keys",
)  # fmt: skip
async def get_settings(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.put(
    "/api/live/settings", tags=["settings"], response_model=SettingsRead,
    openapi_extra=body(SettingsWrite), responses=answers(ADMIN, BODY),
    summary="Choose the platform, set keys",
)  # fmt: skip
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


@router.get(
    "/api/live/chat", tags=["chat"], response_model=ChatPage,
    responses=answers(TOKEN, NOT_FOUND, PAGED),
    summary="A live's chat history, oldest first (?stream_id=&cursor=&limit=)",
)  # fmt: skip
async def chat_history(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "chat")


@router.post(
    "/api/live/chat", tags=["chat"], status_code=201, response_model=ChatMessage,
    openapi_extra=body(ChatPost),
    responses=answers(
        SIGNED_IN, NOT_FOUND, BODY, THROTTLED,
        {202: {"model": ChatMessage, "description": "held for a moderator"},
         403: error("the live's chat is closed, or the caller banned from it")},
    ),
    summary="Post in a live's chat (signed in); 202 when a moderator must approve it first",
)  # fmt: skip
async def post_chat_message(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "chat")


# Moderation: pinned and held messages (GET), approve and pin (POST), delete and unpin (DELETE),
# bans (all three): what the chat service answers depends on the rest of the path.
MODERATION = answers(MODERATOR, NOT_FOUND, BODY, CONFLICT)


@each_method(
    router, "/api/live/chat/{rest:path}", tags=["chat"], responses=MODERATION,
    operations={
        "GET": ("read_chat_moderation", "Pinned messages; for moderators held messages and bans"),
        "POST": ("moderate_chat", "Approve or pin a message, ban a user (moderators)"),
        "DELETE": ("remove_from_chat", "Delete or unpin a message, lift a ban (moderators)"),
    },
)  # fmt: skip
async def chat_moderation(
    request: Request, rest: Rest, caller: MaybeUser, up: Upstream
) -> Response:
    return await up.forward(request, "chat")


@router.get(
    "/api/live/streams/{stream_id}/chat", tags=["chat"], operation_id="get_chat_options",
    response_model=ChatOptionsModerator | ChatOptionsPublic, responses=answers(TOKEN, NOT_FOUND),
    summary="A live's chat options: on/off, slow mode (moderators: the blocked words too)",
)  # fmt: skip
@router.put(
    "/api/live/streams/{stream_id}/chat", tags=["chat"], operation_id="put_chat_options",
    response_model=ChatOptionsModerator, openapi_extra=body(ChatOptionsUpdate),
    responses=answers(MODERATOR, NOT_FOUND, BODY),
    summary="Change a live's chat options: on/off, slow mode, blocked words (moderators)",
)  # fmt: skip
async def chat_options(
    request: Request, stream_id: StreamId, caller: MaybeUser, up: Upstream
) -> Response:
    return await up.forward(request, "chat")


@router.post(
    "/api/live/viewers", tags=["viewers"], operation_id="player_starts_watching", status_code=201,
    responses=answers(
        TOKEN, NOT_FOUND, BODY, CONFLICT,
        {200: {"description": "already watching: the view is kept alive"}},
    ),
    summary="A player without a websocket starts watching (201), or says it still is (200)",
)  # fmt: skip
@router.put(
    "/api/live/viewers", tags=["viewers"], operation_id="player_stops_watching",
    responses=answers(TOKEN, NOT_FOUND, BODY), summary="A player without a websocket stops",
)  # fmt: skip
async def player_viewers(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "analytics")


@router.get(
    "/api/live/streams/{stream_id}/analytics", tags=["analytics"], operation_id="live_analytics",
    responses=answers(ADMIN, NOT_FOUND), summary="A live's analytics",
)  # fmt: skip
@router.get(
    "/api/live/streams/{stream_id}/analytics.csv", tags=["analytics"],
    operation_id="live_analytics_csv", response_class=Response,
    responses=answers(ADMIN, NOT_FOUND, {200: {"content": {"text/csv": {}}, "description": "CSV"}}),
    summary="A live's per-minute series as CSV",
)  # fmt: skip
@router.get(
    "/api/live/streams/{stream_id}/orders", tags=["analytics"], operation_id="live_orders",
    response_model=CreditedOrders,
    responses=answers(ADMIN, NOT_FOUND, PAGED),
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
