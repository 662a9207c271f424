"""Thin HTTP routes: parse the request, call a use case, present the result."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import Response

from chassis.auth import CurrentUser, MaybeUser, ModeratorUser
from chassis.pages import CURSOR_MAX, Cursor
from chassis.routes import Refusal, SessionDep, answer_domain_errors, use_case_deps
from contracts.chat import ChatMessage
from services.chat import lives, moderation, service
from services.chat.limits import TooFast
from services.chat.models import (
    BanCreate,
    BanPublic,
    ChatOptionsModerator,
    ChatOptionsPublic,
    ChatOptionsUpdate,
    ChatPage,
    ChatPost,
    LiveStreamChatOptions,
)
from services.chat.service import Deps

DepsDep = Annotated[Deps, Depends(use_case_deps)]
StreamIdQuery = Annotated[UUID, Query()]

router = APIRouter(prefix="/api/live", tags=["chat"])


# --- messages ------------------------------------------------------------------------------------


@router.get("/chat", response_model=ChatPage)
async def chat_history(
    request: Request,
    session: SessionDep,
    user: MaybeUser,
    stream_id: StreamIdQuery,
    cursor: Cursor = None,
    before: Annotated[
        str | None, Query(max_length=CURSOR_MAX, deprecated=True, description="old `cursor`")
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    include_held: bool = False,
) -> ChatPage:
    """A page of the live's chat, newest last; `next_cursor` asks for the page before it."""
    if include_held and (user is None or not user.is_moderator):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only moderators see held messages")
    largest = request.app.state.deps.settings.chat_history_max_page
    return await service.history(
        session=session,
        stream_id=stream_id,
        before=cursor or before,
        limit=min(limit or 50, largest),
        include_held=include_held,
    )


@router.post(
    "/chat",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatMessage,
    responses={202: {"model": ChatMessage, "description": "held for a moderator"}},
)
async def post_message(
    data: ChatPost, response: Response, session: SessionDep, deps: DepsDep, user: CurrentUser
) -> ChatMessage:
    """Post as the signed-in user; 202 when a blocked word holds it for a moderator."""
    message, held = await service.post_message(session=session, deps=deps, author=user, data=data)
    if held:
        response.status_code = status.HTTP_202_ACCEPTED
    return message


@router.get("/chat/pinned", response_model=list[ChatMessage])
async def pinned_messages(session: SessionDep, stream_id: StreamIdQuery) -> list[ChatMessage]:
    return await moderation.pinned(session=session, stream_id=stream_id)


@router.get("/chat/held", response_model=list[ChatMessage])
async def held_messages(
    session: SessionDep, _: ModeratorUser, stream_id: StreamIdQuery
) -> list[ChatMessage]:
    return await service.held_messages(session=session, stream_id=stream_id)


@router.post("/chat/{message_id}/approve", response_model=ChatMessage)
async def approve_message(
    message_id: UUID, session: SessionDep, deps: DepsDep, user: ModeratorUser
) -> ChatMessage:
    return await service.approve(session=session, deps=deps, moderator=user, message_id=message_id)


@router.delete("/chat/{message_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_message(
    message_id: UUID, session: SessionDep, deps: DepsDep, user: ModeratorUser
) -> None:
    await moderation.delete_message(
        session=session, deps=deps, moderator=user, message_id=message_id
    )


@router.post("/chat/{message_id}/pin", response_model=ChatMessage)
async def pin_message(
    message_id: UUID, session: SessionDep, deps: DepsDep, _: ModeratorUser
) -> ChatMessage:
    return await moderation.pin(session=session, deps=deps, message_id=message_id)


@router.delete("/chat/{message_id}/pin", status_code=status.HTTP_204_NO_CONTENT)
async def unpin_message(
    message_id: UUID, session: SessionDep, deps: DepsDep, _: ModeratorUser
) -> None:
    await moderation.unpin(session=session, deps=deps, message_id=message_id)


# --- bans ----------------------------------------------------------------------------------------


@router.post("/chat/bans", status_code=status.HTTP_201_CREATED, response_model=BanPublic)
async def ban_user(
    data: BanCreate, session: SessionDep, deps: DepsDep, user: ModeratorUser
) -> BanPublic:
    row = await moderation.ban(session=session, deps=deps, moderator=user, data=data)
    return BanPublic.model_validate(row)


@router.get("/chat/bans", response_model=list[BanPublic])
async def list_bans(
    session: SessionDep, _: ModeratorUser, stream_id: Annotated[UUID | None, Query()] = None
) -> list[BanPublic]:
    rows = await moderation.bans_in_force(session=session, stream_id=stream_id)
    return [BanPublic.model_validate(row) for row in rows]


@router.delete("/chat/bans/{ban_id}", status_code=status.HTTP_204_NO_CONTENT)
async def lift_ban(ban_id: UUID, session: SessionDep, user: ModeratorUser) -> None:
    await moderation.lift_ban(session=session, moderator=user, ban_id=ban_id)


# --- per-live options ----------------------------------------------------------------------------


def _options(row: LiveStreamChatOptions, *, moderator: bool) -> ChatOptionsPublic:
    """Everyone sees whether the chat is open and slow; only moderators see the blocked words."""
    public = ChatOptionsPublic(enabled=row.enabled, slow_mode_s=row.slow_mode_s)
    if not moderator:
        return public
    return ChatOptionsModerator(
        **public.model_dump(),
        blocked_words=row.blocked_words,
        blocked_words_action=row.blocked_words_action,
    )


@router.get("/streams/{stream_id}/chat", response_model=ChatOptionsModerator | ChatOptionsPublic)
async def get_options(stream_id: UUID, session: SessionDep, user: MaybeUser) -> ChatOptionsPublic:
    row = await moderation.options(session=session, stream_id=stream_id)
    return _options(row, moderator=user is not None and user.is_moderator)


@router.put("/streams/{stream_id}/chat", response_model=ChatOptionsModerator)
async def put_options(
    stream_id: UUID, data: ChatOptionsUpdate, session: SessionDep, _: ModeratorUser
) -> ChatOptionsPublic:
    row = await moderation.set_options(session=session, stream_id=stream_id, data=data)
    return _options(row, moderator=True)


# --- errors --------------------------------------------------------------------------------------

# --- errors --------------------------------------------------------------------------------------


def _retry_after(error: Exception) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after_s)} if isinstance(error, TooFast) else {}


_REFUSALS: dict[type[Exception], int | Refusal] = {
    lives.LiveNotFound: Refusal(404, "live not found"),
    lives.ChatClosed: 403,
    service.Banned: 403,
    service.BlockedWord: 422,
    service.MessageNotFound: Refusal(404, "message not found"),
    service.NotHeld: 409,
    moderation.BanNotFound: Refusal(404, "no such ban in force"),
    TooFast: Refusal(429, headers=_retry_after),
}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(router)
    answer_domain_errors(app, _REFUSALS)
