"""The gateway's composition root: auth, proxying, the viewer websocket, presence."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from nats.js import JetStreamContext

from chassis.auth import TokenVerifier
from chassis.bus import BusProvider, publish_event
from chassis.health import tolerated
from chassis.web import create_web_app
from contracts import Envelope, subject_for
from services.gateway import (
    api,
    openapi,
    outbound_webhooks_api,
    pages,
    products_api,
    reminders_api,
    ws,
)
from services.gateway.deps import Gateway, gateway_of
from services.gateway.fanout import Fanout
from services.gateway.limits import Rate, SubscribeLimits
from services.gateway.live import Visibility
from services.gateway.presence import Presence
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Upstream

REDIS_TIMEOUT_S = 2.0


def create_app(settings: GatewaySettings) -> FastAPI:
    gateway_id = settings.gateway_id or f"gw-{secrets.token_hex(4)}"
    bus = BusProvider(
        settings.nats_url,
        name=f"vitrine-{gateway_id}",
        stream=settings.jetstream_stream,
        subject_root=settings.subject_root,
        replicas=settings.jetstream_replicas,
        options=settings.bus_options(),
    )

    async def js() -> JetStreamContext:
        return (await bus.get()).js

    async def publish(envelope: Envelope) -> None:
        await publish_event(
            await bus.get(),
            subject=subject_for(envelope.stream_id, envelope.type, root=settings.subject_root),
            body=envelope.model_dump_json().encode(),
            event_id=envelope.id,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Bounded: a Redis that hangs must not hold a viewer's join (it only holds counts).
        redis = aioredis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        app.state.token_verifier = TokenVerifier(settings)
        upstream = Upstream(
            services={
                "streams": settings.streams_url,
                "products": settings.products_url,
                "chat": settings.chat_url,
                "analytics": settings.analytics_url,
                "notifications": settings.notifications_url,
                "webhooks": settings.webhooks_url,
            },
            timeout_s=settings.upstream_timeout_s,
        )
        visibility = Visibility(upstream)
        fanout = Fanout(
            js_provider=js,
            jetstream_stream=settings.jetstream_stream,
            subject_root=settings.subject_root,
            linger_s=settings.hub_linger_s,
            max_held=settings.ws_max_replay,
            on_final=visibility.forget,
        )
        presence = Presence(
            redis=redis,
            prefix=settings.redis_prefix,
            gateway_id=gateway_id,
            ttl_s=settings.presence_ttl_s,
            publish=publish,
        )
        app.state.gateway = Gateway(
            settings=settings,
            upstream=upstream,
            visibility=visibility,
            fanout=fanout,
            presence=presence,
            subscribe_limits=SubscribeLimits(
                redis=redis,
                prefix=settings.redis_prefix,
                anonymous=Rate(
                    burst=settings.reminder_subscribe_burst,
                    per_hour=settings.reminder_subscribe_per_hour,
                ),
                signed_in=Rate(
                    burst=settings.reminder_subscribe_user_burst,
                    per_hour=settings.reminder_subscribe_user_per_hour,
                ),
            ),
        )
        presence_task = asyncio.create_task(presence.run(settings.presence_interval_s))
        try:
            yield
        finally:
            presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await presence_task
            await fanout.close()
            with contextlib.suppress(Exception):
                await presence.sync()  # hand our last counts over before leaving
            await upstream.close()
            await bus.close()
            await redis.aclose()

    async def nats_ready() -> bool:
        await bus.get()
        return bus.connected

    async def redis_ready() -> bool:
        return bool(await gateway_of(app).presence.redis.ping())

    app = create_web_app(
        service="gateway",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        generate_unique_id_function=openapi.operation_id,
        # The gateway's sockets live on NATS, its viewer counts on Redis: an outage is ridden
        # out (viewers resume with since=, presence fails open and catches up); past its bound
        # a NATS outage drains the gateway, a Redis one by default never does.
        readiness={
            "nats": tolerated(nats_ready, bound_s=settings.readiness_nats_outage_bound_s),
            "redis": tolerated(redis_ready, bound_s=settings.readiness_redis_outage_bound_s),
        },
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["Location", "Retry-After", "X-Request-ID"],
    )
    app.include_router(api.router)
    app.include_router(products_api.router)
    app.include_router(reminders_api.router)
    app.include_router(outbound_webhooks_api.router)
    app.include_router(ws.router)
    app.include_router(pages.router)
    openapi.install(app)
    return app
