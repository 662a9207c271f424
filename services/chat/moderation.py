"""What moderators do: delete and pin messages, ban and time out users, set a live's chat options.
Every visible change records its `chat.*` event in the same transaction."""

from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import Principal
from contracts.chat import (
    BanScope,
    ChatDeleted,
    ChatMessage,
    ChatPinned,
    ChatUnpinned,
    ChatUserBanned,
)
from services.chat import lives
from services.chat.models import (
    BanCreate,
    ChatOptionsUpdate,
    LiveStreamChatBan,
    LiveStreamChatMessage,
    LiveStreamChatOptions,
    MessageStatus,
)
from services.chat.service import Deps, MessageNotFound, NotHeld, chat_message, locked_message, now

# Shop-wide bans given outside any live are published under this id (`live.<nil>.chat.user_banned`).
SHOP_STREAM_ID = UUID(int=0)


class BanNotFound(Exception):
    """No such ban in force."""


# --- messages ------------------------------------------------------------------------------------


async def delete_message(
    *, session: AsyncSession, deps: Deps, moderator: Principal, message_id: UUID
) -> None:
    """Remove a message (a held one is simply refused); a pinned one is unpinned first."""
    row = await locked_message(session, message_id)
    if row.is_pinned:
        await _unpin(session=session, deps=deps, row=row)
    if row.status is MessageStatus.VISIBLE:
        await deps.outbox.record(session, ChatDeleted(message_id=row.id), stream_id=row.stream_id)
    row.status = MessageStatus.DELETED
    row.moderated_by, row.moderated_at = moderator.user_id, now()
    await session.commit()


async def pin(*, session: AsyncSession, deps: Deps, message_id: UUID) -> ChatMessage:
    """Pin a message on top of the chat; the live's previous pin is unpinned first."""
    stream_id = await session.scalar(
        sa.select(col(LiveStreamChatMessage.stream_id)).where(
            col(LiveStreamChatMessage.id) == message_id
        )
    )
    if stream_id is None:
        raise MessageNotFound(message_id)
    # Pins of one live queue up here, so there is never more than one.
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"chat-pin:{stream_id}")))
    )
    row = await locked_message(session, message_id)
    if row.status is MessageStatus.HELD:
        raise NotHeld("approve this message before pinning it")
    if not row.is_pinned:
        previous = await session.execute(
            sa.select(LiveStreamChatMessage)
            .where(
                col(LiveStreamChatMessage.stream_id) == stream_id,
                col(LiveStreamChatMessage.is_pinned),
            )
            .with_for_update()
        )
        for other in previous.scalars():
            await _unpin(session=session, deps=deps, row=other)
        await session.flush()
        row.is_pinned = True
        await deps.outbox.record(
            session, ChatPinned(message=chat_message(row)), stream_id=row.stream_id
        )
    message = chat_message(row)
    await session.commit()
    return message


async def unpin(*, session: AsyncSession, deps: Deps, message_id: UUID) -> None:
    row = await locked_message(session, message_id)
    if row.is_pinned:
        await _unpin(session=session, deps=deps, row=row)
    await session.commit()


async def _unpin(*, session: AsyncSession, deps: Deps, row: LiveStreamChatMessage) -> None:
    row.is_pinned = False
    await deps.outbox.record(session, ChatUnpinned(message_id=row.id), stream_id=row.stream_id)


async def pinned(*, session: AsyncSession, stream_id: UUID) -> list[ChatMessage]:
    query = sa.select(LiveStreamChatMessage).where(
        col(LiveStreamChatMessage.stream_id) == stream_id,
        col(LiveStreamChatMessage.is_pinned),
        col(LiveStreamChatMessage.status) == MessageStatus.VISIBLE,
    )
    return [chat_message(row) for row in (await session.execute(query)).scalars()]


# --- bans and timeouts ---------------------------------------------------------------------------


async def ban(
    *, session: AsyncSession, deps: Deps, moderator: Principal, data: BanCreate
) -> LiveStreamChatBan:
    """Ban a user (or time them out for `duration_s`) from one live's chat or the whole shop's."""
    if data.stream_id is not None:
        await lives.live_state(session, data.stream_id)
    row = LiveStreamChatBan(
        user_id=data.user_id,
        stream_id=data.stream_id,
        scope=data.scope,
        until=now() + timedelta(seconds=data.duration_s) if data.duration_s else None,
        reason=data.reason,
        created_by=moderator.user_id,
    )
    session.add(row)
    await session.flush()
    await deps.outbox.record(
        session,
        # The moderator's reason stays with moderators: this event reaches every viewer.
        ChatUserBanned(user_id=row.user_id, scope=row.scope, until=row.until),
        stream_id=row.stream_id or SHOP_STREAM_ID,
    )
    await session.commit()
    return row


async def lift_ban(*, session: AsyncSession, moderator: Principal, ban_id: UUID) -> None:
    row = await session.get(LiveStreamChatBan, ban_id, with_for_update=True)
    if row is None or row.lifted_at is not None:
        raise BanNotFound(ban_id)
    row.lifted_by, row.lifted_at = moderator.user_id, now()
    await session.commit()


async def bans_in_force(
    *, session: AsyncSession, stream_id: UUID | None
) -> list[LiveStreamChatBan]:
    """Bans and timeouts in force: all of them, or those that keep users out of one live."""
    query = sa.select(LiveStreamChatBan).where(
        col(LiveStreamChatBan.lifted_at).is_(None),
        sa.or_(col(LiveStreamChatBan.until).is_(None), col(LiveStreamChatBan.until) > now()),
    )
    if stream_id is not None:
        query = query.where(
            sa.or_(
                col(LiveStreamChatBan.scope) == BanScope.SHOP,
                col(LiveStreamChatBan.stream_id) == stream_id,
            )
        )
    query = query.order_by(col(LiveStreamChatBan.created_at).desc())
    return list((await session.execute(query)).scalars())


# --- options -------------------------------------------------------------------------------------


async def options(*, session: AsyncSession, stream_id: UUID) -> LiveStreamChatOptions:
    await lives.live_state(session, stream_id)
    return await lives.options_of(session, stream_id)


async def set_options(
    *, session: AsyncSession, stream_id: UUID, data: ChatOptionsUpdate
) -> LiveStreamChatOptions:
    """Change the options sent (chat on/off, slow mode, blocked words); they apply at once."""
    await lives.live_state(session, stream_id)
    row = await lives.options_of(session, stream_id, for_update=True)
    for field in data.model_fields_set:
        setattr(row, field, getattr(data, field))
    row.updated_at = now()
    await session.commit()
    return row
