"""From the bus to the delivery queue: each event becomes one delivery per endpoint that wants
it, in the consumer's transaction (chassis.consumer), so an event redelivered by JetStream is
queued once, and the unique (endpoint, event) key holds even if it were not."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from services.webhooks.models import DeliveryStatus, EndpointStatus, deliveries, endpoints
from services.webhooks.privacy import for_endpoint


def body_of(document: dict[str, Any]) -> str:
    """The bytes every attempt sends and signs."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def wanting(event_type: str) -> sa.ColumnElement[bool]:
    """Endpoints whose selectors take this type: `*`, the type, or its family (`product.*`)."""
    family = event_type.split(".", 1)[0] + ".*"
    selectors = endpoints.c.event_types
    return sa.or_(*(sa.literal(value) == sa.any_(selectors) for value in ("*", event_type, family)))


async def queue_event(
    session: AsyncSession, envelope: Envelope, *, only_endpoint: UUID | None = None,
    queue: UUID | None = None,
) -> list[int]:  # fmt: skip
    """Queue the event for every enabled endpoint that wants it (or for `only_endpoint`,
    whatever it wants: a test event), behind the earlier deliveries of its live (or of
    `queue`). Returns the new deliveries' ids."""
    query = sa.select(endpoints.c.id, endpoints.c.allow_personal_data)
    if only_endpoint is not None:
        query = query.where(endpoints.c.id == only_endpoint)
    else:
        query = query.where(
            endpoints.c.status == EndpointStatus.ENABLED.value, wanting(envelope.type)
        )
    now = datetime.now(UTC)
    queued = []
    for endpoint in await session.execute(query):
        document = for_endpoint(envelope, allow_personal_data=endpoint.allow_personal_data)
        if document is None:
            continue  # an event nobody has said is free of personal data
        added = await session.execute(
            insert(deliveries)
            .values(
                endpoint_id=endpoint.id,
                event_id=envelope.id,
                event_type=envelope.type,
                stream_id=envelope.stream_id if queue is None else queue,
                body=body_of(document),
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_deliveries_once_per_endpoint")
            .returning(deliveries.c.id)
        )
        queued += list(added.scalars())
    return queued


def handler(wake: Callable[[], None]) -> Callable[[AsyncSession, Envelope], Any]:
    """The consumer's handler: queue, and wake the dispatcher once the transaction commits."""

    async def on_event(session: AsyncSession, envelope: Envelope) -> None:
        if await queue_event(session, envelope):
            sa.event.listen(session.sync_session, "after_commit", lambda _: wake(), once=True)

    return on_event
