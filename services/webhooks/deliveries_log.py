"""An endpoint's delivery log: its deliveries newest first, a page at a time, each with its
attempts (time, status code or error, duration); and the test event an admin sends."""

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pages import decode_cursor, encode_cursor
from contracts import Envelope
from services.webhooks.endpoints import EndpointNotFound
from services.webhooks.intake import queue_event
from services.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    attempts,
    deliveries,
    endpoints,
)
from services.webhooks.schemas import (
    TEST_EVENT,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookTestQueued,
)

# The test event is about no live (its `stream_id` says this nil id); each stands in a queue of
# its own, so a new one never waits behind an earlier one still being retried.
NO_LIVE = UUID(int=0)


class EndpointDisabled(Exception):
    pass


async def delivery_log(
    *, session: AsyncSession, endpoint_id: UUID, cursor: str | None, limit: int,
    status: DeliveryStatus | None = None,
) -> WebhookDeliveryPage:  # fmt: skip
    d = deliveries.c
    known = await session.scalar(sa.select(endpoints.c.id).where(endpoints.c.id == endpoint_id))
    if known is None:
        raise EndpointNotFound(endpoint_id)
    query = sa.select(deliveries).where(d.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(d.status == status.value)
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        query = query.where(d.id < before)
    rows = (await session.execute(query.order_by(d.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    tried: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if page:
        found = await session.execute(
            sa.select(attempts)
            .where(attempts.c.delivery_id.in_([row.id for row in page]))
            .order_by(attempts.c.id)
        )
        for attempt in found:
            tried[attempt.delivery_id].append(
                WebhookAttempt.model_validate(attempt, from_attributes=True)
            )
    return WebhookDeliveryPage(
        items=[_delivery(row, tried[row.id]) for row in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


def _delivery(row: Any, tried: list[WebhookAttempt]) -> WebhookDelivery:
    pending = row.status == DeliveryStatus.PENDING.value
    live = NO_LIVE if row.event_type == TEST_EVENT else row.stream_id  # not its queue's key
    return WebhookDelivery(
        id=row.id, event_id=row.event_id, event_type=row.event_type, stream_id=live,
        status=DeliveryStatus(row.status), attempts=tried,
        next_attempt_at=row.next_attempt_at if pending else None,
        created_at=row.created_at, finished_at=row.finished_at,
    )  # fmt: skip


async def send_test_event(*, session: AsyncSession, endpoint_id: UUID) -> WebhookTestQueued:
    """A `webhook.test` event queued for this endpoint only, signed and retried like any."""
    endpoint = (
        await session.execute(sa.select(endpoints).where(endpoints.c.id == endpoint_id))
    ).first()
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    if endpoint.status != EndpointStatus.ENABLED.value:
        raise EndpointDisabled
    envelope = Envelope(
        id=uuid.uuid4(), type=TEST_EVENT, version=1, occurred_at=datetime.now(UTC),
        stream_id=NO_LIVE, producer="webhooks",
        data={"endpoint_id": str(endpoint_id), "message": "A test event from Vitrine."},
    )  # fmt: skip
    (delivery_id,) = await queue_event(
        session, envelope, only_endpoint=endpoint_id, queue=envelope.id
    )
    await session.commit()
    return WebhookTestQueued(event_id=envelope.id, delivery_id=delivery_id)
