"""External routes of the webhooks service (outbound webhooks: endpoints an admin registers,
their delivery logs): admins only, checked here, then the webhooks service answers (and checks
the token again)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response

from chassis.auth import AdminUser
from chassis.pages import Cursor, Limit
from services.gateway.api import Upstream
from services.gateway.openapi import ADMIN, BODY, CONFLICT, PAGED, Answers, answers, body, error
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

router = APIRouter(prefix="/api/webhooks/endpoints", tags=["webhooks"])
EndpointId = Annotated[uuid.UUID, "a webhook endpoint's id"]
NO_ENDPOINT: Answers = {404: error("no such webhook endpoint")}


@router.post(
    "", status_code=201, response_model=WebhookEndpointWithSecret,
    openapi_extra=body(WebhookEndpointCreate), responses=answers(ADMIN, BODY, CONFLICT),
    summary="Register an endpoint: {url, event_types, description?, allow_personal_data?}; "
    "the answer shows its signing secret once",
)  # fmt: skip
async def create_webhook_endpoint(request: Request, caller: AdminUser, up: Upstream) -> Response:
    return await up.forward(request, "webhooks")


@router.get(
    "", response_model=WebhookEndpointList, responses=answers(ADMIN, PAGED),
    summary="The webhook endpoints, oldest first (?cursor=&limit=)",
)  # fmt: skip
async def list_webhook_endpoints(
    request: Request, caller: AdminUser, up: Upstream, cursor: Cursor = None, limit: Limit = 50
) -> Response:
    return await up.forward(request, "webhooks")


@router.get(
    "/{endpoint_id}", response_model=WebhookEndpoint, responses=answers(ADMIN, NO_ENDPOINT),
    summary="A webhook endpoint, with its state (enabled, or disabled: why and since when)",
)  # fmt: skip
async def get_webhook_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")


@router.put(
    "/{endpoint_id}", response_model=WebhookEndpoint, openapi_extra=body(WebhookEndpointUpdate),
    responses=answers(ADMIN, NO_ENDPOINT, BODY),
    summary="Change an endpoint (only the fields given)",
)  # fmt: skip
async def update_webhook_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")


@router.delete(
    "/{endpoint_id}", status_code=204, responses=answers(ADMIN, NO_ENDPOINT),
    summary="Remove an endpoint, its delivery log and what was still to send to it",
)  # fmt: skip
async def delete_webhook_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret,
    responses=answers(ADMIN, NO_ENDPOINT),
    summary="A new signing secret, shown once (the old one signs too for a grace period)",
)  # fmt: skip
async def rotate_webhook_secret(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")


@router.post(
    "/{endpoint_id}/enable", response_model=WebhookEndpoint,
    responses=answers(ADMIN, NO_ENDPOINT, CONFLICT),
    summary="Enable a disabled endpoint again: what waited for it goes out, in order (409 if "
    "it is not disabled)",
)  # fmt: skip
async def enable_webhook_endpoint(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")


@router.get(
    "/{endpoint_id}/deliveries", response_model=WebhookDeliveryPage,
    responses=answers(ADMIN, NO_ENDPOINT, PAGED),
    summary="An endpoint's delivery log, newest first, each with its attempts (?cursor=&limit=)",
)  # fmt: skip
async def list_webhook_deliveries(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream,
    cursor: Cursor = None, limit: Limit = 50, status: DeliveryStatus | None = None,
) -> Response:  # fmt: skip
    return await up.forward(request, "webhooks")


@router.post(
    "/{endpoint_id}/test", status_code=202, response_model=WebhookTestQueued,
    responses=answers(ADMIN, NO_ENDPOINT, CONFLICT),
    summary="Send a `webhook.test` event to the endpoint (409 while it is disabled)",
)  # fmt: skip
async def send_webhook_test(
    request: Request, endpoint_id: EndpointId, caller: AdminUser, up: Upstream
) -> Response:
    return await up.forward(request, "webhooks")
