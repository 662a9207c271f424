"""Use cases of subscribing: a live's reminder or following the shop, double opt-in,
unsubscribing, and an admin's GDPR export and erasure."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
    confirmation_budgets,
    reminder_deliveries,
    reminder_optouts,
    reminder_subscriptions,
)
from services.notifications.schemas import (
    DeliveryExport,
    LiveSubscribers,
    OptOutExport,
    PersonalDataExport,
    ReminderPublic,
    ReminderRequest,
    SubscriptionExport,
)
from services.notifications.settings import NotificationsSettings

subscriptions, deliveries, optouts = reminder_subscriptions, reminder_deliveries, reminder_optouts


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
    # Whose own it is (their token's address, or their browser): never the id of one who gave
    # somebody else's address.
    mine = {"user_id": caller.user_id if caller and owner else None}
    inserted = await session.execute(
        insert(subscriptions)
        .values(
            id=uuid.uuid4(),
            stream_id=stream_id,
            created_at=now,
            confirmed_at=now if owner else None,
            **who,
            **preferences,
            **mine,
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
            changes = {**who, **preferences, **(mine if caller else {})}
            row = await _confirm(session, row.id, at=now, changes=changes)
    if row.confirmed_at is not None:
        if created or owner:
            await planning.plan_subscription(
                session, subscription=row, default_lead_minutes=settings.reminder_lead_minutes
            )
    else:  # new or still pending: the confirmation (again, not too often)
        await planning.plan_confirmation(
            session, subscription=row,
            per_address_per_day=settings.confirmations_per_address_per_day,
        )  # fmt: skip
    await session.commit()
    return Subscribed(
        reminder=present(row), created=created, disclosed=owner or row.channel != Channel.EMAIL
    )


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
    """Remove a subscription and what was planned for it; False if it was gone already. A
    live's is remembered as "not this live" for its address, so that following the shop does
    not plan that live for it again."""
    gone = (
        await session.execute(
            sa.delete(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .returning(subscriptions.c.recipient, subscriptions.c.stream_id)
        )
    ).first()
    if gone is not None and gone.stream_id is not None:
        await _not_this_live(session, recipient=gone.recipient, stream_id=gone.stream_id)
    elif gone is not None:  # no longer following the shop: its "not this live"s serve nothing
        await session.execute(sa.delete(optouts).where(optouts.c.recipient == gone.recipient))
    await session.commit()
    return gone is not None


async def _not_this_live(session: AsyncSession, *, recipient: str, stream_id: UUID) -> None:
    """What the shop's follow planned of the live for the address is dropped unsent, and the
    live kept as "not this live" while the address follows the shop (only then: an address
    is kept no longer than it needs to be)."""
    await session.execute(
        sa.delete(deliveries).where(
            deliveries.c.recipient == recipient,
            deliveries.c.stream_id == stream_id,
            deliveries.c.status.in_((DeliveryStatus.PENDING.value, DeliveryStatus.SKIPPED.value)),
        )
    )
    follows = sa.select(subscriptions.c.id).where(
        subscriptions.c.recipient == recipient, subscriptions.c.stream_id.is_(None)
    )
    if (await session.execute(follows)).first() is not None:
        await session.execute(
            insert(optouts)
            .values(recipient=recipient, stream_id=stream_id, created_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )


def _of_person(*, email: str | None, user_id: str | None) -> sa.ColumnElement[bool]:
    """A person's subscriptions: their address's, and whatever they subscribed signed in (their
    browsers' push subscriptions too), found by the user id given or that of their address."""
    mine = []
    if email is not None:
        email = email.strip().lower()
        mine.append(subscriptions.c.email == email)
        signed_in = sa.select(subscriptions.c.user_id).where(
            subscriptions.c.email == email, subscriptions.c.user_id.is_not(None)
        )
        mine.append(subscriptions.c.user_id.in_(signed_in.scalar_subquery()))
    if user_id is not None:
        mine.append(subscriptions.c.user_id == user_id)
    return sa.or_(*mine) if mine else sa.false()


async def export(
    *, session: AsyncSession, email: str | None = None, user_id: str | None = None
) -> PersonalDataExport:
    """All that is kept about one person (GDPR access)."""
    rows = (
        await session.execute(
            sa.select(subscriptions)
            .where(_of_person(email=email, user_id=user_id))
            .order_by(subscriptions.c.created_at)
        )
    ).all()
    ids = [row.id for row in rows]
    sent = (
        await session.execute(
            sa.select(deliveries)
            .where(deliveries.c.subscription_id.in_(ids))
            .order_by(deliveries.c.due_at)
        )
    ).all()
    declined = (
        await session.execute(
            sa.select(optouts)
            .where(optouts.c.recipient.in_(_recipients(rows, email)))
            .order_by(optouts.c.created_at)
        )
    ).all()
    budgets = confirmation_budgets
    confirmations = (
        await session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(budgets.c.sent), 0)).where(
                budgets.c.recipient.in_(_recipients(rows, email))
            )
        )
    ).scalar_one()
    return PersonalDataExport(
        email=email.strip().lower() if email else None,
        confirmations_sent_lately=confirmations,
        user_id=user_id,
        subscriptions=[
            _exported(row, [one for one in sent if one.subscription_id == row.id]) for row in rows
        ],
        unsubscribed_lives=[
            OptOutExport(stream_id=one.stream_id, at=one.created_at) for one in declined
        ],
    )


def _recipients(rows: Sequence[sa.Row], email: str | None) -> set[str]:
    """The person's addresses: those of their subscriptions, and the one given."""
    known = {row.recipient for row in rows}
    if email is not None:
        known.add(recipient_of(email.strip().lower()))
    return known


def _exported(row: sa.Row, sent: list[sa.Row]) -> SubscriptionExport:
    fields = [name for name in SubscriptionExport.model_fields if name != "deliveries"]
    return SubscriptionExport(
        **{name: getattr(row, name) for name in fields},
        deliveries=[
            DeliveryExport(**{name: getattr(one, name) for name in DeliveryExport.model_fields})
            for one in sent
        ],
    )


async def erase(
    *, session: AsyncSession, email: str | None = None, user_id: str | None = None
) -> int:
    """Forget a person entirely (GDPR erasure): their subscriptions, what was sent to them
    (deliveries go with their subscription), the lives they unsubscribed from and the count of
    confirmations sent to their address."""
    gone = (
        await session.execute(
            sa.delete(subscriptions)
            .where(_of_person(email=email, user_id=user_id))
            .returning(subscriptions.c.recipient)
        )
    ).all()
    recipients = _recipients(gone, email)
    await session.execute(sa.delete(optouts).where(optouts.c.recipient.in_(recipients)))
    budgets = confirmation_budgets
    await session.execute(sa.delete(budgets).where(budgets.c.recipient.in_(recipients)))
    await session.commit()
    return len(gone)


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
