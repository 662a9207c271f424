"""The streams service's composition root: everything is built here, nothing at import."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.auth import TokenVerifier
from chassis.bus import BusProvider
from chassis.db import create_engine, session_factory
from chassis.migrations import upgrade
from chassis.outbox import Outbox, OutboxRelay
from chassis.secrets import SecretBox
from chassis.web import create_web_app
from services.streams import api, provider_events
from services.streams.models import outbox
from services.streams.provider_settings import Deps
from services.streams.settings import StreamsSettings

log = logging.getLogger(__name__)

SERVICE = "streams"
MIGRATIONS = Path(__file__).with_name("migrations")
NATS_READY_TIMEOUT_S = 2.0


async def migrate(settings: StreamsSettings) -> None:
    """Bring the streams schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


async def end_abandoned_lives_forever(
    sessions: async_sessionmaker[AsyncSession], deps: Deps
) -> None:
    """Lives whose encoder left end once their grace runs out; the deadline is in the database,
    so a restart (or another replica) picks up where this one stopped."""
    while True:
        try:
            async with sessions() as session:
                await provider_events.end_abandoned_lives(session=session, deps=deps)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database away: try again next round
            log.warning("reconnect grace check failed: %s", error)
        await asyncio.sleep(deps.settings.grace_check_interval_s)


def create_app(settings: StreamsSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, schema=settings.schema_for(SERVICE))
        bus = BusProvider(
            settings.nats_url,
            name=SERVICE,
            stream=settings.jetstream_stream,
            subject_root=settings.subject_root,
        )
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.bus = bus
        app.state.token_verifier = TokenVerifier(settings)  # chassis.auth reads it here
        app.state.deps = Deps(
            settings=settings,
            outbox=Outbox(table=outbox, producer=SERVICE, subject_root=settings.subject_root),
            box=SecretBox(settings.vitrine_secret_key.get_secret_value()),
        )
        relay = OutboxRelay(engine=engine, table=outbox, bus=bus, service=SERVICE)
        app.state.relay = relay
        tasks = [
            asyncio.create_task(relay.run(), name="streams-outbox-relay"),
            asyncio.create_task(
                end_abandoned_lives_forever(app.state.sessions, app.state.deps),
                name="streams-reconnect-grace",
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await bus.close()
            await engine.dispose()

    async def database_ready() -> bool:
        async with app.state.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True

    async def nats_ready() -> bool:
        bus = await asyncio.wait_for(app.state.bus.get(), NATS_READY_TIMEOUT_S)
        return bool(bus.nc.is_connected)

    app = create_web_app(
        service=SERVICE,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        readiness={"database": database_ready, "nats": nats_ready},
    )
    api.install(app)
    return app
