"""Players without a websocket: `POST /api/live/viewers` registers (and, sent again, keeps the
view alive), `PUT /api/live/viewers` leaves; a player that stops POSTing leaves by itself.

Each view is announced like a gateway's (`viewer.joined/left`, gateway `player`), from the same
transaction that records it, so it is counted once however often the player retries.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.outbox import Outbox
from contracts.presence import viewer_key
from contracts.streams import StreamStatus
from contracts.viewers import ViewerJoined, ViewerLeft
from services.analytics.audience import Audience
from services.analytics.domain import PLAYER_GATEWAY
from services.analytics.models import lives, player_sessions


class LiveNotFound(Exception):
    """No such live (or it was deleted)."""


class LiveOver(Exception):
    """The live has ended: nobody watches it live any more."""


class NotRegistered(Exception):
    """No player registered with this session id for this live."""


@dataclass(frozen=True)
class PlayerView:
    stream_id: UUID
    session_id: str
    joined_at: datetime
    left_at: datetime | None
    started: bool  # this call started the view (201) rather than kept it alive (200)


def now() -> datetime:
    return datetime.now(UTC)


async def _watchable(session: AsyncSession, stream_id: UUID) -> None:
    live = (await session.execute(sa.select(lives).where(lives.c.stream_id == stream_id))).first()
    if live is None or live.deleted:
        raise LiveNotFound(stream_id)
    if live.status == StreamStatus.ENDED:
        raise LiveOver(stream_id)


async def register(
    *,
    session: AsyncSession,
    outbox: Outbox,
    audience: Audience,
    ttl_s: int,
    stream_id: UUID,
    session_id: str,
    user_id: str | None,
) -> PlayerView:
    """Start a view, or keep it alive (the heartbeat); a view that had ended starts again."""
    await _watchable(session, stream_id)
    at = now()
    t = player_sessions.c
    started = (
        await session.execute(
            insert(player_sessions)
            .values(
                stream_id=stream_id,
                session_id=session_id,
                user_id=user_id,
                joined_at=at,
                last_seen_at=at,
            )
            .on_conflict_do_nothing()
            .returning(t.joined_at)
        )
    ).first() is not None
    if not started:
        row = (
            await session.execute(
                sa.select(player_sessions)
                .where(t.stream_id == stream_id, t.session_id == session_id)
                .with_for_update()
            )
        ).one()
        started = row.left_at is not None
        changes: dict[str, object] = {"last_seen_at": at}
        if started:
            changes |= {"joined_at": at, "left_at": None, "user_id": user_id}
        await session.execute(
            sa.update(player_sessions)
            .where(t.stream_id == stream_id, t.session_id == session_id)
            .values(**changes)
        )
    if started:
        joined = ViewerJoined(session_id=session_id, user_id=user_id, gateway_id=PLAYER_GATEWAY)
        await outbox.record(session, joined, stream_id=stream_id)
    row = (
        await session.execute(
            sa.select(player_sessions).where(t.stream_id == stream_id, t.session_id == session_id)
        )
    ).one()
    await session.commit()
    await audience.player_watching(
        str(stream_id),
        viewer=viewer_key(user_id=row.user_id, session_id=session_id),
        until_ms=int((at + timedelta(seconds=ttl_s)).timestamp() * 1000),
        now_s=at.timestamp(),
        new_view=started,
    )
    return PlayerView(stream_id, session_id, row.joined_at, None, started)


async def leave(
    *, session: AsyncSession, outbox: Outbox, audience: Audience, stream_id: UUID, session_id: str
) -> PlayerView:
    """End the view (again: nothing more happens)."""
    t = player_sessions.c
    row = (
        await session.execute(
            sa.select(player_sessions)
            .where(t.stream_id == stream_id, t.session_id == session_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotRegistered(session_id)
    if row.left_at is not None:
        await session.rollback()
        return PlayerView(stream_id, session_id, row.joined_at, row.left_at, False)
    at = now()
    await _close(session, outbox, row, at)
    await session.commit()
    await audience.player_gone(
        str(stream_id),
        viewer=viewer_key(user_id=row.user_id, session_id=session_id),
        now_s=at.timestamp(),
    )
    return PlayerView(stream_id, session_id, row.joined_at, at, False)


async def _close(session: AsyncSession, outbox: Outbox, row: sa.Row, at: datetime) -> None:
    t = player_sessions.c
    await session.execute(
        sa.update(player_sessions)
        .where(t.stream_id == row.stream_id, t.session_id == row.session_id)
        .values(left_at=at)
    )
    left = ViewerLeft(
        session_id=row.session_id,
        user_id=row.user_id,
        gateway_id=PLAYER_GATEWAY,
        watched_seconds=round(max((at - row.joined_at).total_seconds(), 0.0), 3),
    )
    await outbox.record(session, left, stream_id=row.stream_id)


async def expire_silent_players(
    *, sessions: async_sessionmaker[AsyncSession], outbox: Outbox, ttl_s: int, batch: int = 500
) -> int:
    """End the views of players that stopped POSTing: they left when last heard of."""
    t = player_sessions.c
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                sa.select(player_sessions)
                .where(t.left_at.is_(None), t.last_seen_at < now() - timedelta(seconds=ttl_s))
                .order_by(t.last_seen_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            await _close(session, outbox, row, row.last_seen_at)
    return len(rows)
