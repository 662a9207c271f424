"""What an attempt's outcome changes: the delivery log, the delivery (delivered, retried later,
or given up), and the endpoint's failure record, which disables it when it keeps failing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    attempts,
    deliveries,
    endpoints,
)
from services.webhooks.sender import Outcome
from services.webhooks.settings import WebhooksSettings

FINISHED = Counter("vitrine_webhook_deliveries_total", "Webhook deliveries finished", ["status"])


async def record_outcome(
    *, sessions: async_sessionmaker[AsyncSession], settings: WebhooksSettings,
    delivery_id: int, claimed_until: datetime, attempt: int, outcome: Outcome,
) -> Any | None:  # fmt: skip
    """Record one attempt, if the delivery is still pending under the claim that made it
    (`claimed_until` as claimed); returns the endpoint's row if this disabled it."""
    now = datetime.now(UTC)
    d = deliveries.c
    async with sessions() as session, session.begin():
        endpoint_id = await session.scalar(sa.select(d.endpoint_id).where(d.id == delivery_id))
        if endpoint_id is None:
            return None  # its endpoint was deleted meanwhile
        # The endpoint first, then its delivery: the order of every use case that locks both
        # (enable, delete), so none waits on another that waits on it.
        endpoint = (
            await session.execute(
                sa.select(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .with_for_update(key_share=True)
            )
        ).first()
        delivery = (
            await session.execute(
                sa.select(d.id)
                .where(
                    d.id == delivery_id,
                    d.status == DeliveryStatus.PENDING.value,
                    d.claimed_until == claimed_until,
                )
                .with_for_update()
            )
        ).first()
        if endpoint is None or delivery is None:
            return None  # deleted meanwhile, or the lease ran out and another took it up
        await session.execute(
            sa.insert(attempts).values(
                delivery_id=delivery_id,
                attempted_at=outcome.started_at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        if outcome.delivered:
            await _finish(session, delivery_id, DeliveryStatus.DELIVERED, attempt, now)
            if endpoint.consecutive_failures or endpoint.failing_since is not None:
                await _endpoint(session, endpoint.id, consecutive_failures=0, failing_since=None)
            return None
        delays = settings.webhooks_retry_delays_s
        failures = endpoint.consecutive_failures
        if attempt <= len(delays):
            await session.execute(
                sa.update(deliveries)
                .where(d.id == delivery_id)
                .values(
                    attempts=attempt,
                    claimed_until=None,
                    next_attempt_at=now + timedelta(seconds=delays[attempt - 1]),
                )
            )
        else:
            await _finish(session, delivery_id, DeliveryStatus.FAILED, attempt, now)
            failures += 1
        failing_since = endpoint.failing_since or now
        reason = _why_disable(settings, failures=failures, failing_for=now - failing_since)
        if reason is None or endpoint.status != EndpointStatus.ENABLED.value:
            await _endpoint(session, endpoint.id, consecutive_failures=failures,
                            failing_since=failing_since)  # fmt: skip
            return None
        return await _endpoint(
            session, endpoint.id, consecutive_failures=failures, failing_since=failing_since,
            status=EndpointStatus.DISABLED.value, disabled_reason=reason, disabled_at=now,
            updated_at=now,
        )  # fmt: skip


def _why_disable(
    settings: WebhooksSettings, *, failures: int, failing_for: timedelta
) -> str | None:
    if failures >= settings.webhooks_disable_after_failures:
        return f"{failures} deliveries in a row were given up"
    if failing_for.total_seconds() >= settings.webhooks_disable_after_s:
        return f"every attempt failed for {_duration(failing_for)}"
    return None


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds} seconds"


async def _finish(
    session: AsyncSession, delivery_id: int, status: DeliveryStatus, attempt: int, now: datetime
) -> None:
    FINISHED.labels(status.value).inc()
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(status=status.value, attempts=attempt, claimed_until=None, finished_at=now)
    )


async def _endpoint(session: AsyncSession, endpoint_id: Any, **values: Any) -> Any:
    return (
        await session.execute(
            sa.update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(**values)
            .returning(endpoints)
        )
    ).one()
