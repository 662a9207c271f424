"""Thin HTTP routes of the endpoints and their delivery logs, for admins only (the gateway
checks the token, and so does this service)."""

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.auth import AdminUser
from chassis.pages import Cursor, Limit
from chassis.secrets import SecretBox
from services.webhooks import deliveries_log, endpoints
from services.webhooks.models import DeliveryStatus
from services.webhooks.schemas import (
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookTestQueued,
)
from services.webhooks.settings import WebhooksSettings
from services.webhooks.targets import TargetRefused

router = APIRouter(prefix="/api/webhooks/endpoints", tags=["webhooks"])


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def _settings(request: Request) -> WebhooksSettings:
    return request.app.state.settings


def _box(request: Request) -> SecretBox:
    return request.app.state.box


SessionDep = Annotated[AsyncSession, Depends(_session)]
SettingsDep = Annotated[WebhooksSettings, Depends(_settings)]
BoxDep = Annotated[SecretBox, Depends(_box)]
EndpointId = Annotated[UUID, Path(description="the endpoint's id")]


def _not_found() -> HTTPException:
    return HTTPException(404, "no such webhook endpoint")


def _refused(error: TargetRefused) -> HTTPException:
    loc = ["body", "url"]
    return HTTPException(422, [{"type": "url_refused", "loc": loc, "msg": str(error)}])


@router.post("", status_code=201, response_model=WebhookEndpointWithSecret)
async def create_endpoint(
    data: WebhookEndpointCreate, caller: AdminUser, session: SessionDep, settings: SettingsDep,
    box: BoxDep,
) -> WebhookEndpointWithSecret:  # fmt: skip
    """The answer holds the signing secret: it is never shown again (rotate it if lost)."""
    try:
        return await endpoints.create_endpoint(
            session=session, settings=settings, box=box, data=data
        )
    except TargetRefused as error:
        raise _refused(error) from None
    except endpoints.TooManyEndpoints:
        raise HTTPException(409, f"at most {settings.webhooks_max_endpoints} endpoints") from None


@router.get("", response_model=WebhookEndpointList)
async def list_endpoints(
    caller: AdminUser, session: SessionDep, cursor: Cursor = None, limit: Limit = 50
) -> WebhookEndpointList:
    return await endpoints.list_endpoints(session=session, cursor=cursor, limit=limit)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint)
async def get_endpoint(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookEndpoint:
    try:
        return await endpoints.get_endpoint(session=session, endpoint_id=endpoint_id)
    except endpoints.EndpointNotFound:
        raise _not_found() from None


@router.put("/{endpoint_id}", response_model=WebhookEndpoint)
async def update_endpoint(
    endpoint_id: EndpointId, data: WebhookEndpointUpdate, caller: AdminUser,
    session: SessionDep, settings: SettingsDep,
) -> WebhookEndpoint:  # fmt: skip
    """Only the fields given change; a disabled endpoint stays disabled (see `enable`)."""
    try:
        return await endpoints.update_endpoint(
            session=session, settings=settings, endpoint_id=endpoint_id, data=data
        )
    except TargetRefused as error:
        raise _refused(error) from None
    except endpoints.EndpointNotFound:
        raise _not_found() from None


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> Response:
    try:
        await endpoints.delete_endpoint(session=session, endpoint_id=endpoint_id)
    except endpoints.EndpointNotFound:
        raise _not_found() from None
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret)
async def rotate_secret(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep, settings: SettingsDep,
    box: BoxDep,
) -> WebhookEndpointWithSecret:  # fmt: skip
    """A new secret, shown once; the old one also signs for WEBHOOKS_ROTATION_GRACE_S."""
    try:
        return await endpoints.rotate_secret(
            session=session, settings=settings, box=box, endpoint_id=endpoint_id
        )
    except endpoints.EndpointNotFound:
        raise _not_found() from None


@router.post("/{endpoint_id}/enable", response_model=WebhookEndpoint)
async def enable_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookEndpoint:
    """Enabled again after it was disabled; what was waiting for it goes out now, in order."""
    try:
        enabled = await endpoints.enable_endpoint(session=session, endpoint_id=endpoint_id)
    except endpoints.EndpointNotFound:
        raise _not_found() from None
    request.app.state.dispatcher.wake()
    return enabled


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryPage)
async def list_deliveries(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep, cursor: Cursor = None,
    limit: Limit = 50, status: DeliveryStatus | None = None,
) -> WebhookDeliveryPage:  # fmt: skip
    """The delivery log, newest first: each delivery with its attempts."""
    try:
        return await deliveries_log.delivery_log(
            session=session, endpoint_id=endpoint_id, cursor=cursor, limit=limit, status=status
        )
    except endpoints.EndpointNotFound:
        raise _not_found() from None


@router.post("/{endpoint_id}/test", status_code=202, response_model=WebhookTestQueued)
async def send_test_event(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookTestQueued:
    """Queue a `webhook.test` event for this endpoint; its delivery log shows how it went."""
    try:
        queued = await deliveries_log.send_test_event(session=session, endpoint_id=endpoint_id)
    except endpoints.EndpointNotFound:
        raise _not_found() from None
    except deliveries_log.EndpointDisabled:
        raise HTTPException(409, "the endpoint is disabled: enable it first") from None
    request.app.state.dispatcher.wake()
    return queued


def install(app: FastAPI) -> None:
    app.include_router(router)
