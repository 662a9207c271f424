"""External routes (DESIGN.md §3): authentication here, then the owning service answers."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from chassis.auth import AdminUser, MaybeUser
from services.gateway.live import gather_live
from services.gateway.upstream import Upstream as UpstreamClient

router = APIRouter()

StreamId = Annotated[uuid.UUID, "a live's id"]


def upstream(request: Request) -> UpstreamClient:
    return request.app.state.upstream


Upstream = Annotated[UpstreamClient, Depends(upstream)]


@router.get("/api/live/streams", tags=["streams"], summary="List lives")
async def list_streams(request: Request, caller: MaybeUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.post("/api/live/streams", tags=["streams"], summary="Schedule a live", status_code=201)
async def create_stream(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "streams")


@router.get("/api/live/streams/{stream_id}", tags=["streams"], summary="A live, aggregated")
async def get_stream(request: Request, stream_id: StreamId, caller: MaybeUser) -> dict:
    live = await gather_live(
        upstream=request.app.state.upstream,
        presence=request.app.state.presence,
        stream_id=str(stream_id),
        token=caller.token if caller else None,
    )
    if live is None:
        raise HTTPException(404, "no such live")
    return live


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


@router.post("/webhooks/nginx-rtmp/{callback}", tags=["webhooks"], include_in_schema=False)
async def nginx_rtmp_callback(request: Request, callback: str, up: Upstream) -> Response:
    if callback not in ("on_publish", "on_publish_done"):
        raise HTTPException(404, "unknown nginx-rtmp callback")
    return await up.forward(request, "streams")
