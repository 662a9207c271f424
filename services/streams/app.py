"""The streams service's composition root: everything is built here, nothing at import."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.cancellation import raise_if_cancelled
from chassis.migrations import upgrade
from chassis.runtime import readiness, service_runtime
from chassis.secrets import SecretBox
from chassis.web import create_web_app
from services.streams import api, ivs_metadata, provider_events
from services.streams.models import outbox
from services.streams.provider_settings import Deps
from services.streams.settings import StreamsSettings

log = logging.getLogger(__name__)

SERVICE = "streams"
MIGRATIONS = Path(__file__).with_name("migrations")


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
            raise_if_cancelled(error)
            log.warning("reconnect grace check failed: %s", error)
        raise_if_cancelled()
        await asyncio.sleep(deps.settings.grace_check_interval_s)


def create_app(settings: StreamsSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            app.state.deps = Deps(
                settings=settings,
                outbox=runtime.outbox,
                box=SecretBox(settings.vitrine_secret_key.get_secret_value()),
            )
            runtime.run(
                end_abandoned_lives_forever(runtime.sessions, app.state.deps), "reconnect-grace"
            )
            # Featured products pushed into the video of lives on air on AWS IVS.
            app.state.featured_sync = ivs_metadata.follow_featured_products(runtime, app.state.deps)
            yield

    app = create_web_app(service=SERVICE, lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.readiness.update(readiness(app, settings))
    api.install(app)
    return app
