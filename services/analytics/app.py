"""The analytics service's composition root: everything is built here, nothing at import."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
import sqlalchemy as sa
from fastapi import FastAPI

from chassis.auth import TokenVerifier
from chassis.bus import BusProvider
from chassis.consumer import EventConsumer
from chassis.db import create_engine, session_factory
from chassis.migrations import upgrade
from chassis.outbox import Outbox, OutboxRelay
from chassis.web import create_web_app
from services.analytics import api
from services.analytics.announcer import Announcer
from services.analytics.audience import Audience
from services.analytics.handlers import FAMILIES, PRODUCER, on_event
from services.analytics.models import outbox, processed_events
from services.analytics.settings import AnalyticsSettings

SERVICE = "analytics"
MIGRATIONS = Path(__file__).with_name("migrations")
NATS_READY_TIMEOUT_S = 2.0
BUS_DRAIN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


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


async def _close_bus(bus: BusProvider) -> None:
    """Drain the NATS connection, but not for ever (see services/chat/app.py)."""
    try:
        await asyncio.wait_for(bus.close(), BUS_DRAIN_TIMEOUT_S)
    except TimeoutError:
        log.warning("NATS drain took over %.0fs; closing the connection", BUS_DRAIN_TIMEOUT_S)
        await (await bus.get()).nc.close()


def consumers(
    *, bus: BusProvider, sessions: object, subject_root: str, prefix: str = SERVICE
) -> list[EventConsumer]:
    """One durable consumer per event family, so a burst of viewers never delays the chat's."""
    return [
        EventConsumer(
            bus=bus,
            sessions=sessions,  # type: ignore[arg-type]
            processed=processed_events,
            durable=f"{prefix}-{family}",
            events=events,
            handler=on_event,
            subject_root=subject_root,
        )
        for family, events in FAMILIES.items()
    ]


def create_app(settings: AnalyticsSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, schema=settings.schema_for(SERVICE))
        sessions = session_factory(engine)
        bus = BusProvider(
            settings.nats_url,
            name=SERVICE,
            stream=settings.jetstream_stream,
            subject_root=settings.subject_root,
        )
        redis = aioredis.from_url(settings.redis_url, decode_responses=True)
        events = Outbox(table=outbox, producer=PRODUCER, subject_root=settings.subject_root)
        audience = Audience(redis=redis, prefix=settings.redis_prefix)
        app.state.engine, app.state.sessions, app.state.bus = engine, sessions, bus
        app.state.redis = redis
        app.state.token_verifier = TokenVerifier(settings)  # chassis.auth reads it here
        app.state.deps = Deps(settings=settings, outbox=events, audience=audience)
        relay = OutboxRelay(engine=engine, table=outbox, bus=bus, service=SERVICE)
        announcer = Announcer(
            sessions=sessions,
            outbox=events,
            audience=audience,
            interval_s=settings.presence_interval_s,
            presence_ttl_s=settings.presence_ttl_s,
            player_ttl_s=settings.player_ttl_s,
        )
        followers = consumers(bus=bus, sessions=sessions, subject_root=settings.subject_root)
        app.state.relay, app.state.consumers, app.state.announcer = relay, followers, announcer
        tasks = [
            asyncio.create_task(relay.run(), name="analytics-outbox-relay"),
            asyncio.create_task(announcer.run(), name="analytics-announcer"),
            *(asyncio.create_task(c.run(), name=c.durable) for c in followers),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _close_bus(bus)
            await redis.aclose()
            await engine.dispose()

    async def database_ready() -> bool:
        async with app.state.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True

    async def nats_ready() -> bool:
        bus = await asyncio.wait_for(app.state.bus.get(), NATS_READY_TIMEOUT_S)
        return bool(bus.nc.is_connected)

    async def redis_ready() -> bool:
        return bool(await app.state.redis.ping())

    app = create_web_app(
        service=SERVICE,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        readiness={"database": database_ready, "nats": nats_ready, "redis": redis_ready},
    )
    api.install(app)
    return app
