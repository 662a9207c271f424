"""What the webhooks routes take and answer (never a table as the API schema)."""

import contextlib
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from chassis.pages import Page
from contracts import EVENTS, payload_model
from services.webhooks.models import DeliveryStatus, EndpointStatus

MAX_EVENT_TYPES = 50
TEST_EVENT = "webhook.test"


def known_event_types() -> set[str]:
    with contextlib.suppress(LookupError):
        payload_model("", 0)  # loads every contract's models into EVENTS (none is this one)
    return {event_type for event_type, _ in EVENTS} | {TEST_EVENT}


def event_selector(value: str) -> str:
    """`*`, a known event type (`product.featured`) or a known family (`product.*`)."""
    known = known_event_types()
    if value == "*" or value in known:
        return value
    family, _, rest = value.partition(".")
    if rest == "*" and any(event_type.split(".")[0] == family for event_type in known):
        return value
    raise ValueError(f"unknown event type {value!r}: one of {', '.join(sorted(known))}, a family "
                     "such as 'product.*', or '*'")  # fmt: skip


EventSelector = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, strip_whitespace=True),
    AfterValidator(event_selector),
]
EventTypes = Annotated[
    list[EventSelector],
    Field(
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        description='the event types sent to it: `["*"]` for all, or types and families '
        '(`["stream.*", "product.featured"]`)',
    ),
]
Url = Annotated[str, Field(min_length=1, max_length=2048, description="http:// or https://")]
Description = Annotated[str, Field(max_length=500)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes
    description: Description | None = None
    # Sessions, carts and user ids, chat authors: only to an endpoint allowed them (README).
    allow_personal_data: bool = False


class WebhookEndpointUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    allow_personal_data: bool | None = None


class WebhookEndpoint(BaseModel):
    id: UUID
    url: str
    description: str | None
    event_types: list[str]
    allow_personal_data: bool
    status: EndpointStatus
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    """Shown once, when created or rotated: the signing secret is never given again."""

    secret: str = Field(description="`whsec_…`: verify signatures with it (Standard Webhooks)")


WebhookEndpointList = Page[WebhookEndpoint]


class WebhookAttempt(BaseModel):
    attempted_at: datetime = Field(description="when it was sent")
    status_code: int | None = Field(description="the endpoint's answer; null: none (see error)")
    error: str | None
    duration_ms: int


class WebhookDelivery(BaseModel):
    id: int
    event_id: UUID = Field(description="the `webhook-id` header, the same on every attempt")
    event_type: str
    stream_id: UUID
    status: DeliveryStatus
    attempts: list[WebhookAttempt]
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


WebhookDeliveryPage = Page[WebhookDelivery]


class WebhookTestQueued(BaseModel):
    event_id: UUID
    delivery_id: int
