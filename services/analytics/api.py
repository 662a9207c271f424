"""Thin HTTP routes: players registering, the shop's order webhooks, a live's analytics."""

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.auth import AdminUser, MaybeUser
from services.analytics import domain, orders, players, report
from services.analytics.players import PlayerView

log = logging.getLogger(__name__)
router = APIRouter(tags=["analytics"])

SESSION_ID = r"^[A-Za-z0-9_-]{8,64}$"  # as the viewer websocket's `session_id`
PING = re.compile(rb"^webhook_id=\d+$")
ORDER_TOPICS = ("order.created", "order.updated")


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]


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


@router.post("/webhooks/woocommerce", include_in_schema=False)
@router.post("/webhooks/woocommerce/{rest:path}", include_in_schema=False)
async def woocommerce_order(request: Request, session: SessionDep) -> dict:
    """An order webhook (`order.created`, `order.updated`) signed with the webhook's secret."""
    body = await request.body()
    signature = request.headers.get("x-wc-webhook-signature")
    if signature is None and PING.match(body):
        return {"status": "pong"}  # WooCommerce checks a new webhook's URL with an unsigned ping
    secret = request.app.state.deps.settings.woocommerce_webhook_secret
    if secret is None:
        log.warning("a WooCommerce webhook came but WOOCOMMERCE_WEBHOOK_SECRET is not set")
    if not domain.signature_is_valid(
        body=body, signature=signature, secret=secret.get_secret_value() if secret else ""
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid webhook signature")
    topic = request.headers.get("x-wc-webhook-topic", "order.created")
    if topic not in ORDER_TOPICS:
        return {"status": "ignored", "topic": topic}
    try:
        order = domain.parse_order(json.loads(body))
    except ValueError as error:  # JSON or order
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not an order: {error}") from None
    credits = await orders.record(session, order)
    await session.commit()
    return {
        "status": "recorded",
        "order_id": order.order_id,
        "streams": sorted({str(c.stream_id) for c in credits}),
    }


_ERRORS: dict[type[Exception], tuple[int, str]] = {
    players.LiveNotFound: (status.HTTP_404_NOT_FOUND, "no such live"),
    players.LiveOver: (status.HTTP_409_CONFLICT, "the live has ended"),
    players.NotRegistered: (status.HTTP_404_NOT_FOUND, "no such viewer session"),
    report.LiveNotFound: (status.HTTP_404_NOT_FOUND, "no such live"),
}


def install(app: FastAPI) -> None:
    """Mount the routes and turn domain errors into HTTP answers."""
    app.include_router(router)

    async def domain_error(request: Request, error: Exception) -> Response:
        code, detail = next(v for k, v in _ERRORS.items() if isinstance(error, k))
        return JSONResponse({"detail": detail}, status_code=code)

    for kind in _ERRORS:
        app.add_exception_handler(kind, domain_error)
