"""Notifications' own copy of each live, fed by `stream.*` (no call to the streams service), and
what each change means for the reminders: planned, moved, or no longer to be sent."""

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.streams import (
    StreamCreated,
    StreamDeleted,
    StreamEnded,
    StreamStarted,
    StreamUpdated,
    StreamView,
)
from services.notifications import planning
from services.notifications.models import lives

DELETED = "deleted"


class LiveFollower:
    """The handler of the `notifications-streams` consumer."""

    def __init__(self, *, lead_minutes: int) -> None:
        self.lead_minutes = lead_minutes

    async def on_stream_event(self, session: AsyncSession, envelope: Envelope) -> None:
        payload = envelope.payload()
        if isinstance(payload, StreamDeleted):
            await forget(session, stream_id=envelope.stream_id, at=envelope.occurred_at)
        elif isinstance(payload, StreamCreated | StreamUpdated | StreamStarted | StreamEnded):
            await record(session, view=payload.stream)
        else:  # the provider's state: nothing a subscriber hears of
            return
        await planning.plan_live(
            session, stream_id=envelope.stream_id, default_lead_minutes=self.lead_minutes
        )


async def record(session: AsyncSession, *, view: StreamView) -> None:
    """Keep what the event says of the live unless a newer version is known. A change of time
    bumps the calendar's SEQUENCE; a deleted live stays deleted."""
    values = {
        "stream_id": view.id,
        "title": view.title,
        "description": view.description,
        "status": view.status.value,
        "scheduled_at": view.scheduled_at,
        "started_at": view.started_at,
        "replay_ready": view.replay_url is not None,
        "version": view.updated_at,
        "created_at": view.created_at,
    }
    statement = insert(lives).values(**values)
    new = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[lives.c.stream_id],
            set_={
                **{name: new[name] for name in values if name not in ("stream_id", "created_at")},
                "sequence": sa.case(
                    (lives.c.scheduled_at.is_distinct_from(new.scheduled_at), lives.c.sequence + 1),
                    else_=lives.c.sequence,
                ),
            },
            where=(lives.c.version <= new.version) & (lives.c.status != DELETED),
        )
    )


async def forget(session: AsyncSession, *, stream_id: UUID, at: datetime) -> None:
    """A deleted live: nothing more is sent about it (kept as a tombstone, so a late
    `stream.updated` cannot bring it back)."""
    statement = insert(lives).values(
        stream_id=stream_id, title="", status=DELETED, version=at, created_at=at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[lives.c.stream_id],
            set_={"status": DELETED, "sequence": lives.c.sequence + 1},
        )
    )


async def live_row(session: AsyncSession, stream_id: UUID) -> sa.Row | None:
    """The live as known here, None if never heard of or deleted."""
    row = (await session.execute(sa.select(lives).where(lives.c.stream_id == stream_id))).first()
    return None if row is None or row.status == DELETED else row


async def set_lead_time(
    session: AsyncSession, *, stream_id: UUID, lead_minutes: int | None, default_lead_minutes: int
) -> bool:
    """An admin's lead time for one live (None: the default); moves its pending reminders."""
    changed = await session.execute(
        sa.update(lives)
        .where(lives.c.stream_id == stream_id, lives.c.status != DELETED)
        .values(lead_minutes=lead_minutes)
        .returning(lives.c.stream_id)
    )
    if changed.first() is None:
        return False
    await planning.plan_live(
        session, stream_id=stream_id, default_lead_minutes=default_lead_minutes
    )
    return True
