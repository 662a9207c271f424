"""Which messages are due to whom and when: one `reminder_deliveries` row per recipient, live and
kind, written with ON CONFLICT so planning again (a redelivered event, a second replica, a
moved live) moves a pending message and never makes a second one."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import (
    DeliveryStatus,
    Kind,
    lives,
    reminder_deliveries,
    reminder_subscriptions,
)

deliveries, subscriptions = reminder_deliveries, reminder_subscriptions
# A message that no longer holds (the live moved, started, ended) may come back only while
# pending or set aside, never once sent.
REPLANNABLE = (DeliveryStatus.PENDING.value, DeliveryStatus.SKIPPED.value)


def lead_time(live: sa.Row, default_lead_minutes: int) -> timedelta:
    return timedelta(minutes=live.lead_minutes or default_lead_minutes)


async def plan_live(
    session: AsyncSession,
    *,
    stream_id: UUID,
    default_lead_minutes: int,
    subscription_id: UUID | None = None,
) -> None:
    """Bring the live's messages in line with what is known of it now (for every confirmed
    subscriber of the live or of the shop, or only `subscription_id`)."""
    live = (await session.execute(sa.select(lives).where(lives.c.stream_id == stream_id))).first()
    if live is None:
        return
    now = datetime.now(UTC)
    soon, on_air, replay = Kind.STARTING_SOON, Kind.LIVE, Kind.REPLAY
    if live.status == "scheduled" and live.scheduled_at is not None and live.scheduled_at > now:
        due = live.scheduled_at - lead_time(live, default_lead_minutes)
        await _ensure(session, live=live, kind=soon, due_at=due, only=subscription_id)
    else:
        await _set_aside(session, stream_id=stream_id, kinds=(soon,))
    if live.status == "live":
        await _ensure(session, live=live, kind=on_air, due_at=now, only=subscription_id)
    elif live.status != "scheduled":  # ended or deleted: "we're live" would be a lie now
        await _set_aside(session, stream_id=stream_id, kinds=(on_air,))
    if live.status == "ended" and live.replay_ready:
        await _ensure(session, live=live, kind=replay, due_at=now, only=subscription_id)
    elif live.status == "deleted":
        await _set_aside(session, stream_id=stream_id, kinds=(replay,))


async def plan_subscription(
    session: AsyncSession, *, subscription: sa.Row, default_lead_minutes: int
) -> None:
    """A subscription just confirmed: its live's messages (on air already: "we're live" now), or
    for a follower of the shop, those of every live to come (not of one long on air)."""
    if subscription.stream_id is not None:
        stream_ids = [subscription.stream_id]
    else:
        stream_ids = list(
            (
                await session.execute(
                    sa.select(lives.c.stream_id).where(lives.c.status == "scheduled")
                )
            ).scalars()
        )
    for stream_id in stream_ids:
        await plan_live(
            session,
            stream_id=stream_id,
            default_lead_minutes=default_lead_minutes,
            subscription_id=subscription.id,
        )


async def plan_confirmation(session: AsyncSession, *, subscription: sa.Row) -> None:
    """The double opt-in message, sent once per subscription however often it is asked for."""
    await session.execute(
        insert(deliveries)
        .values(
            id=sa.func.gen_random_uuid(),
            subscription_id=subscription.id,
            recipient=subscription.recipient,
            stream_id=subscription.stream_id,
            kind=Kind.CONFIRM.value,
            status=DeliveryStatus.PENDING.value,
            due_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )


async def _ensure(
    session: AsyncSession, *, live: sa.Row, kind: Kind, due_at: datetime, only: UUID | None
) -> None:
    """A pending message of `kind` for each confirmed subscriber of the live or the shop."""
    # One per address (an insert may not touch the same conflicting row twice): the live's own
    # subscription rather than the shop's when there are both.
    first = sa.type_coerce(
        sa.func.array_agg(
            aggregate_order_by(subscriptions.c.id, subscriptions.c.stream_id.nulls_last())
        ),
        ARRAY(sa.Uuid),
    )[1]
    chosen = (
        sa.select(
            sa.func.gen_random_uuid(),
            first,
            subscriptions.c.recipient,
            sa.literal(live.stream_id, sa.Uuid),
            sa.literal(kind.value),
            sa.literal(DeliveryStatus.PENDING.value),
            sa.literal(due_at, sa.DateTime(timezone=True)),
        )
        .where(
            subscriptions.c.confirmed_at.is_not(None),
            sa.or_(
                subscriptions.c.stream_id == live.stream_id, subscriptions.c.stream_id.is_(None)
            ),
        )
        .group_by(subscriptions.c.recipient)
        # Replicas planning the same live lock the rows in the same order: no deadlock.
        .order_by(subscriptions.c.recipient)
    )
    if only is not None:
        chosen = chosen.where(subscriptions.c.id == only)
    statement = insert(deliveries).from_select(
        ["id", "subscription_id", "recipient", "stream_id", "kind", "status", "due_at"], chosen
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[deliveries.c.recipient, deliveries.c.stream_id, deliveries.c.kind],
            set_={"due_at": statement.excluded.due_at, "status": DeliveryStatus.PENDING.value},
            where=deliveries.c.status.in_(REPLANNABLE),
        )
    )


async def _set_aside(session: AsyncSession, *, stream_id: UUID, kinds: tuple[Kind, ...]) -> None:
    await session.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.stream_id == stream_id,
            deliveries.c.kind.in_([kind.value for kind in kinds]),
            deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.SKIPPED.value)
    )
