"""Thin HTTP routes of the endpoints and their delivery logs, for admins only (the gateway
checks the token, and so does this service)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response

from chassis.auth import AdminUser
from chassis.pages import Cursor, Limit
from chassis.routes import Refusal, SessionDep, answer_domain_errors
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


def _settings(request: Request) -> WebhooksSettings:
    return request.app.state.settings


def _box(request: Request) -> SecretBox:
    return request.app.state.box


SettingsDep = Annotated[WebhooksSettings, Depends(_settings)]
BoxDep = Annotated[SecretBox, Depends(_box)]
EndpointId = Annotated[UUID, Path(description="the endpoint's id")]


@router.post("", status_code=201, response_model=WebhookEndpointWithSecret)
async def create_endpoint(
    data: WebhookEndpointCreate, caller: AdminUser, session: SessionDep, settings: SettingsDep,
    box: BoxDep,
) -> WebhookEndpointWithSecret:  # fmt: skip
    """The answer holds the signing secret: it is never shown again (rotate it if lost)."""
    return await endpoints.create_endpoint(session=session, settings=settings, box=box, data=data)


@router.get("", response_model=WebhookEndpointList)
async def list_endpoints(
    caller: AdminUser, session: SessionDep, cursor: Cursor = None, limit: Limit = 50
) -> WebhookEndpointList:
    return await endpoints.list_endpoints(session=session, cursor=cursor, limit=limit)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint)
async def get_endpoint(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookEndpoint:
    return await endpoints.get_endpoint(session=session, endpoint_id=endpoint_id)


@router.put("/{endpoint_id}", response_model=WebhookEndpoint)
async def update_endpoint(
    endpoint_id: EndpointId, data: WebhookEndpointUpdate, caller: AdminUser,
    session: SessionDep, settings: SettingsDep,
) -> WebhookEndpoint:  # fmt: skip
    """Only the fields given change; a disabled endpoint stays disabled (see `enable`)."""
    return await endpoints.update_endpoint(
        session=session, settings=settings, endpoint_id=endpoint_id, data=data
    )


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> Response:
    await endpoints.delete_endpoint(session=session, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret)
async def rotate_secret(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep, settings: SettingsDep,
    box: BoxDep,
) -> WebhookEndpointWithSecret:  # fmt: skip
    """A new secret, shown once; the old one also signs for WEBHOOKS_ROTATION_GRACE_S."""
    return await endpoints.rotate_secret(
        session=session, settings=settings, box=box, endpoint_id=endpoint_id
    )


@router.post("/{endpoint_id}/enable", response_model=WebhookEndpoint)
async def enable_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookEndpoint:
    """Enabled again after it was disabled (409 if it is not); what was waiting for it goes
    out now, in order."""
    enabled = await endpoints.enable_endpoint(session=session, endpoint_id=endpoint_id)
    request.app.state.dispatcher.wake()
    return enabled


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryPage)
async def list_deliveries(
    endpoint_id: EndpointId, caller: AdminUser, session: SessionDep, cursor: Cursor = None,
    limit: Limit = 50, status: DeliveryStatus | None = None,
) -> WebhookDeliveryPage:  # fmt: skip
    """The delivery log, newest first: each delivery with its attempts."""
    return await deliveries_log.delivery_log(
        session=session, endpoint_id=endpoint_id, cursor=cursor, limit=limit, status=status
    )


@router.post("/{endpoint_id}/test", status_code=202, response_model=WebhookTestQueued)
async def send_test_event(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, session: SessionDep
) -> WebhookTestQueued:
    """Queue a `webhook.test` event for this endpoint; its delivery log shows how it went."""
    queued = await deliveries_log.send_test_event(session=session, endpoint_id=endpoint_id)
    request.app.state.dispatcher.wake()
    return queued


# --- errors --------------------------------------------------------------------------------------


def _url_refused(error: Exception) -> object:
    return [{"type": "url_refused", "loc": ["body", "url"], "msg": str(error)}]


_REFUSALS: dict[type[Exception], int | Refusal] = {
    endpoints.EndpointNotFound: Refusal(404, "no such webhook endpoint"),
    TargetRefused: Refusal(422, _url_refused),
    endpoints.TooManyEndpoints: 409,
    endpoints.EndpointNotDisabled: 409,
    deliveries_log.EndpointDisabled: Refusal(409, "the endpoint is disabled: enable it first"),
    endpoints.Conflicted: Refusal(503, headers=lambda _: {"Retry-After": "1"}),
}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(router)
    answer_domain_errors(app, _REFUSALS)
