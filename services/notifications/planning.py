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
    confirmation_budgets,
    lives,
    reminder_deliveries,
    reminder_optouts,
    reminder_subscriptions,
)

deliveries, subscriptions, optouts = reminder_deliveries, reminder_subscriptions, reminder_optouts
# A pending subscription asked for again gets its confirmation again, at most this often; an
# address, at most CONFIRMATIONS_PER_ADDRESS_PER_DAY in a window of a day.
CONFIRMATION_RESEND_AFTER = timedelta(minutes=10)
CONFIRMATION_WINDOW = timedelta(days=1)
# A message that no longer holds (the live moved, started, ended) may come back only while
# pending or set aside, never once sent...
REPLANNABLE = (DeliveryStatus.PENDING.value, DeliveryStatus.SKIPPED.value)
# ...unless it was about another time: "starts soon" for a live moved since goes again.
GONE_OUT = (DeliveryStatus.SENDING.value, DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)


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
    # FOR SHARE: a subscription planned by a request and the live changed by an event wait for
    # each other, so whichever commits second sees the other (never a plan from a stale live).
    live = (
        await session.execute(
            sa.select(lives).where(lives.c.stream_id == stream_id).with_for_update(read=True)
        )
    ).first()
    if live is None:
        return
    now = datetime.now(UTC)
    soon, on_air, replay = Kind.STARTING_SOON, Kind.LIVE, Kind.REPLAY
    if live.status == "scheduled" and live.scheduled_at is not None and live.scheduled_at > now:
        due = live.scheduled_at - lead_time(live, default_lead_minutes)
        await _ensure(
            session, live=live, kind=soon, due_at=due, only=subscription_id,
            about=live.scheduled_at,
        )  # fmt: skip
    else:
        await _set_aside(session, stream_id=stream_id, kinds=(soon,), only=subscription_id)
    if live.status == "live":
        await _ensure(session, live=live, kind=on_air, due_at=now, only=subscription_id)
    elif live.status != "scheduled":  # ended or deleted: "we're live" would be a lie now
        await _set_aside(session, stream_id=stream_id, kinds=(on_air,), only=subscription_id)
    if live.status == "ended" and live.replay_ready:
        await _ensure(session, live=live, kind=replay, due_at=now, only=subscription_id)
    elif live.status == "deleted":
        await _set_aside(session, stream_id=stream_id, kinds=(replay,), only=subscription_id)


async def plan_subscription(
    session: AsyncSession, *, subscription: sa.Row, default_lead_minutes: int
) -> None:
    """A subscription just confirmed: its live's messages (on air already: "we're live" now), or
    for a follower of the shop, those of every live to come (not of one long on air). An
    address subscribing to a live again lifts its earlier "not this live"."""
    if subscription.stream_id is not None:
        await session.execute(
            sa.delete(optouts).where(
                optouts.c.recipient == subscription.recipient,
                optouts.c.stream_id == subscription.stream_id,
            )
        )
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


async def plan_confirmation(
    session: AsyncSession, *, subscription: sa.Row, per_address_per_day: int
) -> None:
    """The double opt-in message, once per subscription however often it is asked for, and
    again (to one asking again) once the last went out `CONFIRMATION_RESEND_AFTER` ago. An
    address gets at most `per_address_per_day` of them, whoever asks, for however many lives:
    a subscription beyond that stays pending without one, until asked for again later."""
    now = datetime.now(UTC)
    mine = deliveries.c.subscription_id == subscription.id
    last = (
        await session.execute(
            sa.select(deliveries.c.status, deliveries.c.due_at, deliveries.c.sent_at).where(
                mine, deliveries.c.kind == Kind.CONFIRM.value
            )
        )
    ).first()
    if last is not None and (
        last.status not in (DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)
        or (last.sent_at or last.due_at) > now - CONFIRMATION_RESEND_AFTER
    ):
        return  # on its way, or gone out too recently
    if not await _spend_confirmation(
        session, recipient=subscription.recipient, per_day=per_address_per_day, now=now
    ):
        return
    fresh = {"status": DeliveryStatus.PENDING.value, "due_at": now, "first_due_at": now,
             "claimed_until": None, "sent_at": None, "last_error": None}  # fmt: skip
    statement = insert(deliveries).values(
        id=sa.func.gen_random_uuid(),
        subscription_id=subscription.id,
        recipient=subscription.recipient,
        stream_id=subscription.stream_id,
        kind=Kind.CONFIRM.value,
        **fresh,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[deliveries.c.recipient, deliveries.c.stream_id, deliveries.c.kind],
            set_=fresh,
            where=deliveries.c.status.in_((DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)),
        )
    )


async def _spend_confirmation(
    session: AsyncSession, *, recipient: str, per_day: int, now: datetime
) -> bool:
    """One confirmation from the address's budget for the day (False: none left), in one
    statement, so concurrent requests for an address never spend more than it has."""
    budget = confirmation_budgets
    window = budget.c.window_start <= now - CONFIRMATION_WINDOW  # over: a new day begins
    statement = insert(budget).values(recipient=recipient, window_start=now, sent=1)
    spent = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[budget.c.recipient],
            set_={
                "window_start": sa.case((window, now), else_=budget.c.window_start),
                "sent": sa.case((window, 1), else_=budget.c.sent + 1),
            },
            where=window | (budget.c.sent < per_day),
        ).returning(budget.c.recipient)
    )
    return spent.first() is not None


async def _ensure(
    session: AsyncSession,
    *,
    live: sa.Row,
    kind: Kind,
    due_at: datetime,
    only: UUID | None,
    about: datetime | None = None,
) -> None:
    """A pending message of `kind` for each confirmed subscriber of the live or the shop (but
    an address that unsubscribed from this live), `about` the live's time for "starts soon"."""
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
            sa.literal(due_at, sa.DateTime(timezone=True)),
            sa.literal(about, sa.DateTime(timezone=True)),
        )
        .where(
            subscriptions.c.confirmed_at.is_not(None),
            sa.or_(
                subscriptions.c.stream_id == live.stream_id, subscriptions.c.stream_id.is_(None)
            ),
            ~sa.exists().where(
                optouts.c.recipient == subscriptions.c.recipient,
                optouts.c.stream_id == live.stream_id,
            ),
        )
        .group_by(subscriptions.c.recipient)
        # Replicas planning the same live lock the rows in the same order: no deadlock.
        .order_by(subscriptions.c.recipient)
    )
    if only is not None:
        chosen = chosen.where(subscriptions.c.id == only)
    columns = ["id", "subscription_id", "recipient", "stream_id", "kind", "status", "due_at",
               "first_due_at", "scheduled_for"]  # fmt: skip
    statement = insert(deliveries).from_select(columns, chosen)
    new = statement.excluded
    was_about = deliveries.c.scheduled_for
    moved_since = was_about.is_not(None) & was_about.is_distinct_from(new.scheduled_for)
    # A pending message about the same time keeps its schedule (a retry's backoff and window):
    # another event about the live moves nothing.
    same = (deliveries.c.status == DeliveryStatus.PENDING.value) & was_about.is_not_distinct_from(
        new.scheduled_for
    )

    def kept(column: sa.Column, otherwise: object) -> sa.ColumnElement:
        return sa.case((same, column), else_=otherwise)

    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[deliveries.c.recipient, deliveries.c.stream_id, deliveries.c.kind],
            set_={
                # The live's own subscription once there is one (its unsubscribe link, and
                # unsubscribing from the live takes the message with it).
                "subscription_id": new.subscription_id,
                "due_at": kept(deliveries.c.due_at, new.due_at),
                "first_due_at": kept(deliveries.c.first_due_at, new.first_due_at),
                "scheduled_for": new.scheduled_for,
                "status": DeliveryStatus.PENDING.value,
                # A message sent (or on its way) about another time: its claim is void
                # (`attempts` only grows, so a sender still on it records nothing).
                "claimed_until": None,
                "last_error": kept(deliveries.c.last_error, None),
            },
            where=deliveries.c.status.in_(REPLANNABLE)
            | (deliveries.c.status.in_(GONE_OUT) & moved_since),
        )
    )


async def _set_aside(
    session: AsyncSession, *, stream_id: UUID, kinds: tuple[Kind, ...], only: UUID | None
) -> None:
    pending = sa.update(deliveries).where(
        deliveries.c.stream_id == stream_id,
        deliveries.c.kind.in_([kind.value for kind in kinds]),
        deliveries.c.status == DeliveryStatus.PENDING.value,
    )
    if only is not None:
        pending = pending.where(deliveries.c.subscription_id == only)
    await session.execute(pending.values(status=DeliveryStatus.SKIPPED.value))
