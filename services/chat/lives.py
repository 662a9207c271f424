"""Chat's own copy of each live's status, fed by `stream.*` events (no call to the streams
service on any request path), and the per-live chat options."""

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
)
from services.chat.models import LiveState, LiveStreamChatOptions, LiveStreamState

# A live's state only moves forward, so late or reordered events never reopen an ended chat.
_ORDER = {state: rank for rank, state in enumerate(LiveState)}


class LiveNotFound(Exception):
    """No such live (never announced, or deleted)."""


class ChatClosed(Exception):
    """Nobody may post in this chat now (turned off, or the live has ended)."""


def _rank(column: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    return sa.case(*((column == state.value, rank) for state, rank in _ORDER.items()), else_=-1)


async def record_state(
    session: AsyncSession, *, stream_id: UUID, status: LiveState, occurred_at: datetime
) -> None:
    """Note what an event says of a live, unless we already know of a later state."""
    table = LiveStreamState.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(stream_id=stream_id, status=status, updated_at=occurred_at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.stream_id],
            set_={"status": statement.excluded.status, "updated_at": statement.excluded.updated_at},
            where=_rank(table.c.status) < _rank(statement.excluded.status),
        )
    )


async def on_stream_event(session: AsyncSession, envelope: Envelope) -> None:
    """The `chat-streams` consumer's handler: every `stream.*` event of every live."""
    payload = envelope.payload()
    if isinstance(payload, StreamCreated | StreamUpdated | StreamStarted | StreamEnded):
        status = LiveState(payload.stream.status.value)
    elif isinstance(payload, StreamDeleted):
        status = LiveState.DELETED
    else:  # the provider's state says nothing about the chat
        return
    await record_state(
        session, stream_id=envelope.stream_id, status=status, occurred_at=envelope.occurred_at
    )


async def live_state(session: AsyncSession, stream_id: UUID) -> LiveState:
    """The live's state; `LiveNotFound` if it was never announced or was deleted."""
    row = await session.get(LiveStreamState, stream_id)
    if row is None or row.status is LiveState.DELETED:
        raise LiveNotFound(stream_id)
    return row.status


async def ensure_open(session: AsyncSession, stream_id: UUID) -> LiveStreamChatOptions:
    """The options of a live whose chat accepts messages now, or why it does not."""
    if await live_state(session, stream_id) is LiveState.ENDED:
        raise ChatClosed("this live has ended: its chat is closed")
    options = await options_of(session, stream_id)
    if not options.enabled:
        raise ChatClosed("the chat of this live is closed")
    return options


async def options_of(
    session: AsyncSession, stream_id: UUID, *, for_update: bool = False
) -> LiveStreamChatOptions:
    """The live's chat options (the defaults until a moderator changes one)."""
    if for_update:
        defaults = LiveStreamChatOptions(stream_id=stream_id).model_dump()
        await session.execute(
            insert(LiveStreamChatOptions).values(**defaults).on_conflict_do_nothing()
        )
        row = await session.get(
            LiveStreamChatOptions, stream_id, with_for_update=True, populate_existing=True
        )
    else:
        row = await session.get(LiveStreamChatOptions, stream_id)
    return row or LiveStreamChatOptions(stream_id=stream_id)
