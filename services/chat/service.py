"""Posting and reading a live's chat: the use cases behind `GET` and `POST /api/live/chat`."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from chassis.auth import Principal
from chassis.outbox import Outbox
from chassis.pages import decode_cursor, encode_cursor
from contracts.chat import BanScope, ChatMessage, ChatPosted
from services.chat import domain, lives
from services.chat.limits import PostLimiter
from services.chat.models import (
    BlockedWordsAction,
    ChatPage,
    ChatPost,
    LiveStreamChatBan,
    LiveStreamChatMessage,
    MessageStatus,
    message_position,
)
from services.chat.settings import ChatSettings


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the session; built once in `create_app`."""

    settings: ChatSettings
    outbox: Outbox
    limiter: PostLimiter


class Banned(Exception):
    """The author is banned or timed out from this chat."""


class BlockedWord(Exception):
    """The message contains a word this live's chat refuses."""


class MessageNotFound(Exception):
    """No such message (or it was deleted)."""


class NotHeld(Exception):
    """Only a held message can be approved."""


def now() -> datetime:
    return datetime.now(UTC)


def chat_message(row: LiveStreamChatMessage) -> ChatMessage:
    """A message as viewers see it (the event contract)."""
    return ChatMessage(
        id=row.id,
        user_id=row.user_id,
        display_name=row.display_name,
        message=row.message,
        created_at=row.created_at,
        is_pinned=row.is_pinned,
    )


async def post_message(
    *, session: AsyncSession, deps: Deps, author: Principal, data: ChatPost
) -> tuple[ChatMessage, bool]:
    """Post a message (its text already cleaned by `ChatPost`); returns it and whether it is held
    for a moderator. Moderators skip slow mode and the blocked words; flood protection counts
    everyone."""
    options = await lives.ensure_open(session, data.stream_id)
    await ensure_not_banned(session, user_id=author.user_id, stream_id=data.stream_id)
    held = False
    if not author.is_moderator and domain.blocked_word_in(data.message, options.blocked_words):
        if options.blocked_words_action is BlockedWordsAction.REJECT:
            raise BlockedWord("your message contains a word that is not allowed in this chat")
        held = True
    await deps.limiter.spend(
        user_id=author.user_id,
        stream_id=data.stream_id,
        slow_mode_s=0 if author.is_moderator else options.slow_mode_s,
    )
    row = LiveStreamChatMessage(  # type: ignore[call-arg]  # the database numbers `seq`
        stream_id=data.stream_id,
        user_id=author.user_id,
        display_name=author.display_name,
        message=data.message,
        status=MessageStatus.HELD if held else MessageStatus.VISIBLE,
    )
    session.add(row)
    await session.flush()
    message = chat_message(row)
    if not held:
        await deps.outbox.record(session, ChatPosted(message=message), stream_id=row.stream_id)
    await session.commit()
    return message, held


async def ensure_not_banned(session: AsyncSession, *, user_id: str, stream_id: UUID) -> None:
    """Raise `Banned` (saying until when) if a ban or timeout keeps the user out of this chat."""
    at = now()
    query = sa.select(LiveStreamChatBan).where(
        col(LiveStreamChatBan.user_id) == user_id,
        col(LiveStreamChatBan.lifted_at).is_(None),
        sa.or_(col(LiveStreamChatBan.until).is_(None), col(LiveStreamChatBan.until) > at),
        sa.or_(
            col(LiveStreamChatBan.scope) == BanScope.SHOP,
            col(LiveStreamChatBan.stream_id) == stream_id,
        ),
    )
    bans = list((await session.execute(query)).scalars())
    if not bans:
        return
    # The one that lasts longest decides what the user is told.
    ban = max(bans, key=lambda b: b.until or datetime.max.replace(tzinfo=UTC))
    where = "this shop's chat" if ban.scope is BanScope.SHOP else "this live's chat"
    if ban.until is None:
        raise Banned(f"you are banned from {where}")
    until = ban.until.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise Banned(f"you are timed out from {where} until {until}")


async def history(
    *,
    session: AsyncSession,
    stream_id: UUID,
    before: str | None,
    limit: int,
    include_held: bool = False,
) -> ChatPage:
    """A page of the live's messages, newest last. Pages walk back from `before` by position,
    so messages posted meanwhile never shift a page: none is lost or repeated."""
    await lives.live_state(session, stream_id)  # like posting: no such live, no chat (404)
    statuses = [MessageStatus.VISIBLE] + ([MessageStatus.HELD] if include_held else [])
    query = sa.select(LiveStreamChatMessage).where(
        col(LiveStreamChatMessage.stream_id) == stream_id,
        col(LiveStreamChatMessage.status).in_(statuses),
    )
    if before is not None:
        (seq,) = decode_cursor(before, int)
        query = query.where(col(LiveStreamChatMessage.seq) < seq)
    query = query.order_by(col(LiveStreamChatMessage.seq).desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page = rows[:limit][::-1]
    more = len(rows) > limit
    cursor = encode_cursor(page[0].seq) if more else None
    return ChatPage(
        items=[chat_message(row) for row in page], next_cursor=cursor, next_before=cursor
    )


async def held_messages(*, session: AsyncSession, stream_id: UUID) -> list[ChatMessage]:
    """Messages waiting for a moderator, oldest first."""
    query = (
        sa.select(LiveStreamChatMessage)
        .where(
            col(LiveStreamChatMessage.stream_id) == stream_id,
            col(LiveStreamChatMessage.status) == MessageStatus.HELD,
        )
        .order_by(col(LiveStreamChatMessage.seq))
    )
    return [chat_message(row) for row in (await session.execute(query)).scalars()]


async def approve(
    *, session: AsyncSession, deps: Deps, moderator: Principal, message_id: UUID
) -> ChatMessage:
    """Publish a held message: it joins the chat now, at the end of the history."""
    row = await locked_message(session, message_id)
    if row.status is not MessageStatus.HELD:
        raise NotHeld("this message is not waiting for approval")
    row.status = MessageStatus.VISIBLE
    row.seq = await session.scalar(sa.select(message_position.next_value()))  # type: ignore[assignment]
    row.moderated_by, row.moderated_at = moderator.user_id, now()
    message = chat_message(row)
    await deps.outbox.record(session, ChatPosted(message=message), stream_id=row.stream_id)
    await session.commit()
    return message


async def locked_message(session: AsyncSession, message_id: UUID) -> LiveStreamChatMessage:
    """A message that is not deleted, locked until commit."""
    row = await session.get(
        LiveStreamChatMessage, message_id, with_for_update=True, populate_existing=True
    )
    if row is None or row.status is MessageStatus.DELETED:
        raise MessageNotFound(message_id)
    return row
