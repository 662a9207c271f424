"""The chat service's composition root: everything is built here, nothing at import."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI

from chassis.migrations import upgrade
from chassis.runtime import readiness, service_runtime
from chassis.web import create_web_app
from services.chat import api, lives
from services.chat.limits import PostLimiter
from services.chat.models import outbox, processed_events
from services.chat.service import Deps
from services.chat.settings import ChatSettings

SERVICE = "chat"
MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(settings: ChatSettings) -> None:
    """Bring the chat schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


def create_app(settings: ChatSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            redis = aioredis.from_url(settings.redis_url, decode_responses=True)
            app.state.redis = redis
            app.state.deps = Deps(
                settings=settings,
                outbox=runtime.outbox,
                limiter=PostLimiter(
                    redis=redis,
                    prefix=settings.redis_prefix,
                    capacity=settings.chat_rate_capacity,
                    refill_per_s=settings.chat_rate_refill_per_s,
                ),
            )
            # Chat learns each live's status from `stream.*`, never by calling the streams service.
            app.state.consumer = runtime.consume(
                durable="chat-streams",
                events="stream.>",
                handler=lives.on_stream_event,
                processed=processed_events,
            )
            try:
                yield
            finally:
                await redis.aclose()

    async def redis_ready() -> bool:
        return bool(await app.state.redis.ping())

    app = create_web_app(service=SERVICE, lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.readiness.update(readiness(app, settings, redis=redis_ready))
    api.install(app)
    return app
