"""Use cases of subscribing: a live's reminder or following the shop, double opt-in,
unsubscribing, and an admin's GDPR export and erasure."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.auth import Principal
from services.notifications import lives, planning
from services.notifications.models import (
    Channel,
    DeliveryStatus,
    Kind,
    reminder_deliveries,
    reminder_subscriptions,
)
from services.notifications.schemas import (
    DeliveryExport,
    LiveSubscribers,
    PersonalDataExport,
    ReminderPublic,
    ReminderRequest,
    SubscriptionExport,
)
from services.notifications.settings import NotificationsSettings

subscriptions, deliveries = reminder_subscriptions, reminder_deliveries
# A pending subscription asked for again gets its confirmation again, at most this often.
CONFIRMATION_RESEND_AFTER = timedelta(minutes=10)


class LiveNotFound(Exception):
    """No such live (never announced, or deleted)."""


class NoAddress(Exception):
    """Anonymous, and no e-mail given."""


class PushUnavailable(Exception):
    """No VAPID key: this deployment sends no Web Push."""


class PushHostRefused(Exception):
    """The endpoint is not at a push service this deployment posts to (PUSH_ALLOWED_HOSTS)."""


@dataclass(frozen=True)
class Subscribed:
    reminder: ReminderPublic
    created: bool
    # False: the caller is not the address's signed-in owner; they learn nothing of the
    # subscription (whether it existed, its state or preferences), only "check your inbox".
    disclosed: bool = True


def recipient_of(email: str) -> str:
    return f"{Channel.EMAIL.value}:{email}"


def present(row: sa.Row) -> ReminderPublic:
    return ReminderPublic(
        id=row.id,
        stream_id=row.stream_id,
        channel=row.channel,
        status="confirmed" if row.confirmed_at is not None else "pending_confirmation",
        language=row.language,
        time_zone=row.time_zone,
    )


async def subscribe(
    *,
    session: AsyncSession,
    settings: NotificationsSettings,
    stream_id: UUID | None,
    data: ReminderRequest,
    caller: Principal | None,
) -> Subscribed:
    """Subscribe an address to a live (or, `stream_id` None, to the shop). Asking again is a
    no-op, so nobody can flood an address with confirmations. The token's own address needs no
    confirmation, nor does a browser's push subscription (the browser asked its user); any
    other address gets one message asking for it and nothing else until then."""
    if stream_id is not None and await lives.live_row(session, stream_id) is None:
        raise LiveNotFound(stream_id)
    who, owner = _who(settings=settings, data=data, caller=caller)
    now = datetime.now(UTC)
    preferences = {
        "language": data.language or settings.reminder_default_language,
        "time_zone": data.time_zone or settings.reminder_default_time_zone,
    }
    inserted = await session.execute(
        insert(subscriptions)
        .values(
            id=uuid.uuid4(),
            stream_id=stream_id,
            user_id=caller.user_id if caller else None,
            created_at=now,
            confirmed_at=now if owner else None,
            **who,
            **preferences,
        )
        .on_conflict_do_nothing()
        .returning(*subscriptions.c)
    )
    row = inserted.first()
    created = row is not None
    if row is None:
        existing = subscriptions.c.recipient == who["recipient"]
        row = (
            await session.execute(
                sa.select(subscriptions).where(
                    existing, subscriptions.c.stream_id.is_not_distinct_from(stream_id)
                )
            )
        ).one()
        if owner:  # its owner asking again: confirmed now, with the preferences they give
            row = await _confirm(session, row.id, at=now, changes={**who, **preferences})
        elif row.confirmed_at is None:  # still pending: the confirmation again, not too often
            await _confirmation_again(session, row.id, now=now)
    if created or owner:
        if row.confirmed_at is not None:
            await planning.plan_subscription(
                session, subscription=row, default_lead_minutes=settings.reminder_lead_minutes
            )
        else:
            await planning.plan_confirmation(session, subscription=row)
    await session.commit()
    return Subscribed(
        reminder=present(row), created=created, disclosed=owner or row.channel != Channel.EMAIL
    )


async def _confirmation_again(
    session: AsyncSession, subscription_id: UUID, *, now: datetime
) -> None:
    """The pending subscription's confirmation due again, if it went out long enough ago."""
    await session.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.kind == Kind.CONFIRM.value,
            deliveries.c.status.in_((DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)),
            sa.func.coalesce(deliveries.c.sent_at, deliveries.c.due_at)
            < now - CONFIRMATION_RESEND_AFTER,
        )
        .values(
            status=DeliveryStatus.PENDING.value, due_at=now, attempts=0, claimed_until=None,
            sent_at=None, last_error=None,
        )
    )  # fmt: skip


def _who(
    *, settings: NotificationsSettings, data: ReminderRequest, caller: Principal | None
) -> tuple[dict[str, object], bool]:
    """The subscription's address columns, and whether it needs no confirmation."""
    if data.subscription is not None:
        if not settings.push_enabled:
            raise PushUnavailable
        endpoint = data.subscription.endpoint
        host = (urlsplit(endpoint).hostname or "").lower()
        if not any(host == allowed or host.endswith(f".{allowed}") for allowed in
                   settings.push_hosts):  # fmt: skip
            raise PushHostRefused(host)
        return {
            "channel": Channel.WEBPUSH.value, "recipient": f"{Channel.WEBPUSH.value}:{endpoint}",
            "email": None, "push_endpoint": endpoint,
            "push_p256dh": data.subscription.keys.p256dh,
            "push_auth": data.subscription.keys.auth,
        }, True  # fmt: skip
    given = data.email or (caller.email if caller else None)
    if not given:
        raise NoAddress
    email = given.strip().lower()
    owner = caller is not None and (caller.email or "").strip().lower() == email
    return {"channel": Channel.EMAIL.value, "recipient": recipient_of(email), "email": email}, owner


async def _confirm(
    session: AsyncSession,
    subscription_id: UUID,
    *,
    at: datetime,
    changes: dict[str, object] | None = None,
) -> sa.Row:
    return (
        await session.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(
                confirmed_at=sa.func.coalesce(subscriptions.c.confirmed_at, at), **changes or {}
            )
            .returning(*subscriptions.c)
        )
    ).one()


async def confirm(
    *, session: AsyncSession, settings: NotificationsSettings, subscription_id: UUID
) -> ReminderPublic | None:
    """The double opt-in's link followed: reminders may go from now on (None: unsubscribed)."""
    row = (
        await session.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id))
    ).first()
    if row is None:
        return None
    if row.confirmed_at is None:
        row = await _confirm(session, subscription_id, at=datetime.now(UTC))
        await planning.plan_subscription(
            session, subscription=row, default_lead_minutes=settings.reminder_lead_minutes
        )
    await session.commit()
    return present(row)


async def unsubscribe(*, session: AsyncSession, subscription_id: UUID) -> bool:
    """Remove a subscription and what was planned for it; False if it was gone already."""
    gone = await session.execute(
        sa.delete(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .returning(subscriptions.c.id)
    )
    await session.commit()
    return gone.first() is not None


async def export(*, session: AsyncSession, email: str) -> PersonalDataExport:
    """All that is kept about one address (GDPR access)."""
    email = email.strip().lower()
    rows = (
        await session.execute(
            sa.select(subscriptions)
            .where(subscriptions.c.email == email)
            .order_by(subscriptions.c.created_at)
        )
    ).all()
    sent = (
        await session.execute(
            sa.select(deliveries)
            .where(deliveries.c.subscription_id.in_([row.id for row in rows]))
            .order_by(deliveries.c.due_at)
        )
    ).all()
    return PersonalDataExport(
        email=email,
        subscriptions=[
            _exported(row, [one for one in sent if one.subscription_id == row.id]) for row in rows
        ],
    )


def _exported(row: sa.Row, sent: list[sa.Row]) -> SubscriptionExport:
    fields = [name for name in SubscriptionExport.model_fields if name != "deliveries"]
    return SubscriptionExport(
        **{name: getattr(row, name) for name in fields},
        deliveries=[
            DeliveryExport(**{name: getattr(one, name) for name in DeliveryExport.model_fields})
            for one in sent
        ],
    )


async def erase(*, session: AsyncSession, email: str) -> int:
    """Forget an address entirely (GDPR erasure): its subscriptions and what was sent to it."""
    gone = await session.execute(
        sa.delete(subscriptions)
        .where(subscriptions.c.email == email.strip().lower())
        .returning(subscriptions.c.id)
    )
    await session.commit()
    return len(gone.all())


async def count(
    *, session: AsyncSession, settings: NotificationsSettings, stream_id: UUID
) -> LiveSubscribers:
    """How many will hear of the live, without saying who."""
    live = await lives.live_row(session, stream_id)
    if live is None:
        raise LiveNotFound(stream_id)
    confirmed = subscriptions.c.confirmed_at.is_not(None)
    of_live = subscriptions.c.stream_id == stream_id
    email, push = (subscriptions.c.channel == channel.value for channel in Channel)
    figures = (
        await session.execute(
            sa.select(
                sa.func.count().filter(of_live & confirmed),
                sa.func.count().filter(of_live & ~confirmed),
                sa.func.count().filter(subscriptions.c.stream_id.is_(None) & confirmed),
                sa.func.count().filter(of_live & confirmed & email),
                sa.func.count().filter(of_live & confirmed & push),
            )
        )
    ).one()
    sent = (
        await session.execute(
            sa.select(deliveries.c.kind, sa.func.count())
            .where(
                deliveries.c.stream_id == stream_id,
                deliveries.c.status == DeliveryStatus.SENT.value,
            )
            .group_by(deliveries.c.kind)
        )
    ).all()
    return LiveSubscribers(
        stream_id=stream_id,
        subscribers=figures[0],
        by_channel={Channel.EMAIL.value: figures[3], Channel.WEBPUSH.value: figures[4]},
        pending_confirmation=figures[1],
        shop_followers=figures[2],
        lead_minutes=live.lead_minutes or settings.reminder_lead_minutes,
        sent={kind: number for kind, number in sent},
    )
