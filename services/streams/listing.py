"""The list of lives, a page at a time (chassis.pages): on air first, then the next to come,
then the rest newest first; ended lives alone, latest ended first.

Pages follow a keyset, each live's place in that order as a row of numbers and its id, so a live
created or started meanwhile never shifts a page. The order's columns may be null (a live with
no date): their keys put those last with an infinite value instead."""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.pages import decode_cursor, encode_cursor
from contracts.streams import StreamStatus
from services.streams.models import LiveStream
from services.streams.service import PUBLIC_STATUSES

INFINITY = sa.cast(sa.literal("Infinity"), DOUBLE_PRECISION)


def _epoch(column: Any) -> Any:
    return sa.cast(sa.extract("epoch", column), DOUBLE_PRECISION)


def _order(status: StreamStatus | None) -> list[Any]:
    """The sort key, every part ascending."""
    if status is StreamStatus.ENDED:
        return [sa.func.coalesce(-_epoch(col(LiveStream.ended_at)), INFINITY), col(LiveStream.id)]
    return [
        sa.case((col(LiveStream.status) == StreamStatus.LIVE, 0), else_=1),
        sa.func.coalesce(_epoch(col(LiveStream.scheduled_at)), INFINITY),
        -_epoch(col(LiveStream.created_at)),
        col(LiveStream.id),
    ]


def _kinds(status: StreamStatus | None) -> tuple[type, ...]:
    return (float, UUID) if status is StreamStatus.ENDED else (int, float, float, UUID)


async def list_streams(
    *,
    session: AsyncSession,
    include_ended: bool,
    status: StreamStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
    offset: int = 0,
) -> tuple[list[LiveStream], str | None]:
    """A page of lives and the cursor of the next one (None: the last). Without
    `include_ended`, ended lives are those with a replay, and only when asked by status.
    `offset` is the old way, kept for one release (with a cursor it is ignored)."""
    replays_only = not include_ended and status is StreamStatus.ENDED
    visible = list(StreamStatus) if include_ended or replays_only else list(PUBLIC_STATUSES)
    if status is not None and status not in visible:
        return [], None
    keys = _order(status)
    query = (
        sa.select(LiveStream, *keys)
        .where(col(LiveStream.status).in_([status] if status is not None else visible))
        .order_by(*keys)
        .limit(limit + 1)
    )
    if replays_only:
        query = query.where(col(LiveStream.replay_url).is_not(None))
    if cursor is not None:
        query = query.where(sa.tuple_(*keys) > sa.tuple_(*decode_cursor(cursor, *_kinds(status))))
    elif offset:
        query = query.offset(offset)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    more = len(rows) > limit
    next_cursor = encode_cursor(*page[-1][1:]) if more else None
    return [row[0] for row in page], next_cursor
