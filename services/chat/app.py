"""The chat service's composition root: everything is built here, nothing at import."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
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
from services.chat import api, lives
from services.chat.limits import PostLimiter
from services.chat.models import outbox, processed_events
from services.chat.service import Deps
from services.chat.settings import ChatSettings

SERVICE = "chat"
MIGRATIONS = Path(__file__).with_name("migrations")
NATS_READY_TIMEOUT_S = 2.0
BUS_DRAIN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


async def migrate(settings: ChatSettings) -> None:
    """Bring the chat schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


async def _close_bus(bus: BusProvider) -> None:
    """Drain the NATS connection, but not for ever: a cancelled pull subscription can leave
    messages that draining would wait on (chassis.consumer does not unsubscribe on its way out)."""
    try:
        await asyncio.wait_for(bus.close(), BUS_DRAIN_TIMEOUT_S)
    except TimeoutError:
        log.warning("NATS drain took over %.0fs; closing the connection", BUS_DRAIN_TIMEOUT_S)
        await (await bus.get()).nc.close()


def create_app(settings: ChatSettings) -> FastAPI:
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
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.bus = bus
        app.state.redis = redis
        app.state.token_verifier = TokenVerifier(settings)  # chassis.auth reads it here
        app.state.deps = Deps(
            settings=settings,
            outbox=Outbox(table=outbox, producer=SERVICE, subject_root=settings.subject_root),
            limiter=PostLimiter(
                redis=redis,
                prefix=settings.redis_prefix,
                capacity=settings.chat_rate_capacity,
                refill_per_s=settings.chat_rate_refill_per_s,
            ),
        )
        relay = OutboxRelay(engine=engine, table=outbox, bus=bus, service=SERVICE)
        # Chat learns each live's status from `stream.*`, never by calling the streams service.
        consumer = EventConsumer(
            bus=bus,
            sessions=sessions,
            processed=processed_events,
            durable="chat-streams",
            events="stream.>",
            handler=lives.on_stream_event,
            subject_root=settings.subject_root,
        )
        app.state.relay, app.state.consumer = relay, consumer
        tasks = [
            asyncio.create_task(relay.run(), name="chat-outbox-relay"),
            asyncio.create_task(consumer.run(), name="chat-streams-consumer"),
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
