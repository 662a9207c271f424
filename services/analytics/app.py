"""The analytics service's composition root: everything is built here, nothing at import."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI

from chassis.bus import BusProvider
from chassis.consumer import EventConsumer, Redelivery
from chassis.migrations import upgrade
from chassis.outbox import Outbox
from chassis.runtime import readiness, service_runtime
from chassis.web import create_web_app
from services.analytics import api
from services.analytics.announcer import Announcer
from services.analytics.audience import Audience
from services.analytics.handlers import FAMILIES, lock_order, on_event
from services.analytics.models import outbox, processed_events
from services.analytics.settings import AnalyticsSettings

SERVICE = "analytics"
MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class Deps:
    """What the routes need besides the session; built once in `create_app`."""

    settings: AnalyticsSettings
    outbox: Outbox
    audience: Audience


async def migrate(settings: AnalyticsSettings) -> None:
    """Bring the analytics schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


def consumers(
    *,
    bus: BusProvider,
    sessions: object,
    subject_root: str,
    prefix: str = SERVICE,
    batched: bool = True,
    redelivery: Redelivery = Redelivery(),
) -> list[EventConsumer]:
    """One durable consumer per event family, so a burst of viewers never delays the chat's.
    Batched: each fetched batch in one transaction (the handlers only write to the database)."""
    return [
        EventConsumer(
            bus=bus,
            sessions=sessions,  # type: ignore[arg-type]
            processed=processed_events,
            durable=f"{prefix}-{family}",
            events=events,
            handler=on_event,
            subject_root=subject_root,
            batched=batched,
            lock_order=lock_order,
            redelivery=redelivery,
        )
        for family, events in FAMILIES.items()
    ]


def create_app(settings: AnalyticsSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            redis = aioredis.from_url(settings.redis_url, decode_responses=True)
            audience = Audience(redis=redis, prefix=settings.redis_prefix)
            app.state.redis = redis
            app.state.deps = Deps(settings=settings, outbox=runtime.outbox, audience=audience)
            announcer = Announcer(
                sessions=runtime.sessions,
                outbox=runtime.outbox,
                audience=audience,
                interval_s=settings.presence_interval_s,
                presence_ttl_s=settings.presence_ttl_s,
                player_ttl_s=settings.player_ttl_s,
            )
            followers = consumers(
                bus=runtime.bus,
                sessions=runtime.sessions,
                subject_root=settings.subject_root,
                prefix=settings.durable_name(SERVICE),
                redelivery=Redelivery.of(settings),
            )
            app.state.consumers, app.state.announcer = followers, announcer
            runtime.run(announcer.run(), "announcer")
            for follower in followers:
                runtime.run(follower.run(), follower.durable)
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
