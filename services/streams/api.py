"""Thin HTTP routes: parse the request, call a use case, present the result."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from chassis.auth import AdminUser, MaybeUser
from chassis.pages import Cursor, Limit, Page
from chassis.routes import Refusal, SessionDep, answer_domain_errors
from contracts.streams import StreamStatus
from services.streams import (
    ending,
    listing,
    nginx_callbacks,
    provider_settings,
    recording,
    refusals,
    service,
    webhooks_api,
)
from services.streams.deps import DepsDep
from services.streams.domain import InvalidSchedule, InvalidTransition
from services.streams.models import (
    LiveStream,
    ObsSettings,
    RecordingView,
    SettingsRead,
    SettingsWrite,
    StreamAdmin,
    StreamCreate,
    StreamPublic,
    StreamReplay,
    StreamUpdate,
    TakeView,
)
from services.streams.provider_settings import Deps
from services.streams.providers.base import (
    InvalidProviderConfig,
    ProviderUnavailable,
    UnsupportedPlatform,
)

StreamOut = StreamAdmin | StreamPublic

router = APIRouter(prefix="/api/live", tags=["streams"])


def present(stream: LiveStream, *, deps: Deps, admin: bool) -> StreamOut:
    """Admins see how to publish (the key); everyone else sees the public view only."""
    public = service.stream_view(stream).model_dump()
    if not admin:
        return StreamPublic(**public)
    key = service.stream_key(stream, box=deps.box)
    return StreamAdmin(
        **public,
        stream_key=key,
        ingest_url=stream.ingest_url,
        playback_id=stream.playback_id,
        provider_state=stream.provider_state,
        provider_state_at=stream.provider_state_at,
        end_deadline=stream.end_deadline,
        last_webhook=stream.last_webhook,
        last_refused_publish=refusals.view_of(stream.last_refused_publish),
        recording=recording_view(stream),
        obs=ObsSettings(server=stream.ingest_url, stream_key=key),
    )


def recording_view(stream: LiveStream) -> RecordingView | None:
    """The recording's takes and length, once a provider has told of any."""
    takes = recording.takes(stream.recording)
    duration_s = (stream.recording or {}).get("duration_s")
    if not takes and duration_s is None:
        return None
    return RecordingView(
        started_at=takes[0].started_at if takes else None,
        duration_s=duration_s,
        takes=[TakeView.model_validate(take, from_attributes=True) for take in takes],
    )


@router.get("/streams", response_model=Page[StreamOut])
async def list_streams(
    session: SessionDep,
    deps: DepsDep,
    user: MaybeUser,
    cursor: Cursor = None,
    status_: Annotated[StreamStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Annotated[
        int | None,
        Query(ge=0, deprecated=True, description="the old paging: a bare list; use `cursor`"),
    ] = None,
) -> Page[StreamOut] | Response:
    """Lives, on air first; non-admins see only scheduled and live ones, and with
    `?status=ended` the lives that have a replay."""
    admin = user is not None and user.is_admin
    streams, next_cursor = await listing.list_streams(
        session=session,
        include_ended=admin,
        status=status_,
        limit=limit,
        cursor=cursor,
        offset=offset or 0,
    )
    items = [present(stream, deps=deps, admin=admin) for stream in streams]
    if offset is not None and cursor is None:  # the shape before pages, for one release
        return JSONResponse(jsonable_encoder(items), headers={"Deprecation": "true"})
    return Page[StreamOut](items=items, next_cursor=next_cursor)


@router.post("/streams", status_code=status.HTTP_201_CREATED, response_model=StreamAdmin)
async def create_stream(
    data: StreamCreate, session: SessionDep, deps: DepsDep, _: AdminUser
) -> StreamOut:
    stream = await service.create_stream(session=session, deps=deps, data=data)
    return present(stream, deps=deps, admin=True)


@router.get("/streams/{stream_id}", response_model=StreamOut)
async def get_stream(
    stream_id: UUID, session: SessionDep, deps: DepsDep, user: MaybeUser
) -> StreamOut:
    admin = user is not None and user.is_admin
    stream = await service.get_stream(session=session, stream_id=stream_id, include_ended=admin)
    return present(stream, deps=deps, admin=admin)


@router.get("/streams/{stream_id}/replay", response_model=StreamReplay)
async def get_replay(stream_id: UUID, session: SessionDep, user: MaybeUser) -> StreamReplay:
    """The public view of a live that can be watched again (ended, with a replay), with its
    recording's takes, so its timeline can be told in the video's own time."""
    admin = user is not None and user.is_admin
    stream = await service.get_replay(session=session, stream_id=stream_id, admin=admin)
    return StreamReplay(
        **service.stream_view(stream).model_dump(), recording=recording_view(stream)
    )


@router.put("/streams/{stream_id}", response_model=StreamAdmin)
async def update_stream(
    stream_id: UUID, data: StreamUpdate, session: SessionDep, deps: DepsDep, _: AdminUser
) -> StreamOut:
    stream = await service.update_stream(session=session, deps=deps, stream_id=stream_id, data=data)
    return present(stream, deps=deps, admin=True)


@router.delete("/streams/{stream_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_stream(stream_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser) -> None:
    await service.delete_stream(session=session, deps=deps, stream_id=stream_id)


@router.post("/streams/{stream_id}/start", response_model=StreamAdmin)
async def start_stream(
    stream_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> StreamOut:
    stream = await service.start_stream(session=session, deps=deps, stream_id=stream_id)
    return present(stream, deps=deps, admin=True)


@router.post("/streams/{stream_id}/end", response_model=StreamAdmin)
async def end_stream(
    stream_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> StreamOut:
    stream = await ending.end_stream(session=session, deps=deps, stream_id=stream_id)
    return present(stream, deps=deps, admin=True)


@router.post("/streams/{stream_id}/rotate-key", response_model=StreamAdmin)
async def rotate_key(
    stream_id: UUID, session: SessionDep, deps: DepsDep, _: AdminUser
) -> StreamOut:
    """A new stream key; the old one is refused from now on."""
    stream = await service.rotate_key(session=session, deps=deps, stream_id=stream_id)
    return present(stream, deps=deps, admin=True)


@router.get("/settings", response_model=SettingsRead)
async def get_settings(session: SessionDep, deps: DepsDep, _: AdminUser) -> SettingsRead:
    """The platform, its settings (secrets masked) and the last publish refused, any key."""
    settings = await provider_settings.get_settings(session=session, deps=deps)
    return settings.model_copy(
        update={"last_refused_publish": await refusals.last_refused(session)}
    )


@router.put("/settings", response_model=SettingsRead)
async def put_settings(
    data: SettingsWrite, session: SessionDep, deps: DepsDep, _: AdminUser
) -> SettingsRead:
    settings = await provider_settings.put_settings(session=session, deps=deps, data=data)
    return settings.model_copy(
        update={"last_refused_publish": await refusals.last_refused(session)}
    )


_REFUSALS: dict[type[Exception], int | Refusal] = {
    # Said like any other invalid field.
    InvalidSchedule: Refusal(422, lambda error: [_invalid_field(error)]),
    service.StreamNotFound: Refusal(404, "live not found"),
    nginx_callbacks.PublishRefused: Refusal(403, "this stream key opens no live"),
    InvalidTransition: 409,
    UnsupportedPlatform: 422,
    InvalidProviderConfig: 422,
    ProviderUnavailable: 502,
}


def _invalid_field(error: Exception) -> dict[str, object]:
    field = getattr(error, "field", "")
    return {"type": "value_error", "loc": ["body", field], "msg": str(error)}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(router)
    app.include_router(webhooks_api.router)
    answer_domain_errors(app, _REFUSALS)
