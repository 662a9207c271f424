"""Thin HTTP routes: players registering, a live's analytics and credited orders (the shops'
order webhooks are in `webhooks`)."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, FastAPI, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from chassis.auth import AdminUser, MaybeUser
from chassis.pages import Cursor, Limit
from chassis.routes import Refusal, SessionDep, answer_domain_errors
from services.analytics import live_orders, players, report, webhooks
from services.analytics.players import PlayerView

router = APIRouter(tags=["analytics"])

SESSION_ID = r"^[A-Za-z0-9_-]{8,64}$"  # as the viewer websocket's `session_id`


class PlayerSession(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream_id: UUID
    session_id: str = Field(pattern=SESSION_ID)


class PlayerSessionPublic(BaseModel):
    stream_id: UUID
    session_id: str
    watching: bool
    joined_at: datetime
    left_at: datetime | None
    # POST again within this many seconds, or the view ends by itself.
    heartbeat_s: int
    expires_in_s: int | None


def _present(view: PlayerView, ttl_s: int) -> PlayerSessionPublic:
    return PlayerSessionPublic(
        stream_id=view.stream_id,
        session_id=view.session_id,
        watching=view.left_at is None,
        joined_at=view.joined_at,
        left_at=view.left_at,
        heartbeat_s=max(1, ttl_s // 3),
        expires_in_s=ttl_s if view.left_at is None else None,
    )


@router.post(
    "/api/live/viewers",
    status_code=status.HTTP_201_CREATED,
    response_model=PlayerSessionPublic,
    responses={200: {"description": "already watching: the view is kept alive"}},
    summary="A player starts watching (201), or says it still is (200)",
)
async def register_player(
    data: PlayerSession, request: Request, response: Response, session: SessionDep, user: MaybeUser
) -> PlayerSessionPublic:
    deps = request.app.state.deps
    view = await players.register(
        session=session, outbox=deps.outbox, audience=deps.audience,
        ttl_s=deps.settings.player_ttl_s, stream_id=data.stream_id,
        session_id=data.session_id, user_id=user.user_id if user else None,
    )  # fmt: skip
    if not view.started:
        response.status_code = status.HTTP_200_OK
    return _present(view, deps.settings.player_ttl_s)


@router.put(
    "/api/live/viewers", response_model=PlayerSessionPublic, summary="A player stops watching"
)
async def leave_player(
    data: PlayerSession, request: Request, session: SessionDep
) -> PlayerSessionPublic:
    deps = request.app.state.deps
    view = await players.leave(
        session=session, outbox=deps.outbox, audience=deps.audience,
        stream_id=data.stream_id, session_id=data.session_id,
    )  # fmt: skip
    return _present(view, deps.settings.player_ttl_s)


@router.get("/api/live/streams/{stream_id}/analytics", summary="A live's analytics (admins)")
async def live_analytics(stream_id: UUID, session: SessionDep, _: AdminUser) -> dict:
    return await report.live_analytics(session, stream_id)


@router.get(
    "/api/live/streams/{stream_id}/analytics.csv",
    summary="A live's per-minute series as CSV (admins)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def live_analytics_csv(stream_id: UUID, session: SessionDep, _: AdminUser) -> Response:
    figures = await report.live_analytics(session, stream_id)
    return Response(
        report.series_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="live-{stream_id}-analytics.csv"'},
    )


@router.get(
    "/api/live/streams/{stream_id}/orders",
    response_model=live_orders.CreditedOrders,
    summary="The orders credited to a live, newest first, and why each counts (admins)",
)
async def credited_orders(
    stream_id: UUID,
    session: SessionDep,
    _: AdminUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> live_orders.CreditedOrders:
    return await live_orders.credited_orders(session, stream_id, cursor=cursor, limit=limit)


_REFUSALS: dict[type[Exception], int | Refusal] = {
    players.LiveNotFound: Refusal(404, "no such live"),
    players.LiveOver: Refusal(409, "the live has ended"),
    players.NotRegistered: Refusal(404, "no such viewer session"),
    report.LiveNotFound: Refusal(404, "no such live"),
}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(router)
    app.include_router(webhooks.router)
    answer_domain_errors(app, _REFUSALS)
