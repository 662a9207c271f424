"""The products service's composition root: everything is built here, nothing at import."""

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from chassis.auth import TokenVerifier
from chassis.bus import BusProvider
from chassis.consumer import EventConsumer
from chassis.db import create_engine, session_factory
from chassis.migrations import upgrade
from chassis.outbox import Outbox, OutboxRelay
from chassis.secrets import SecretBox
from chassis.web import create_web_app
from services.products import api
from services.products.catalog_settings import Deps
from services.products.handlers import on_stream_event
from services.products.models import outbox, processed_events
from services.products.settings import ProductsSettings

SERVICE = "products"
MIGRATIONS = Path(__file__).with_name("migrations")
NATS_READY_TIMEOUT_S = 2.0
BUS_DRAIN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


async def migrate(settings: ProductsSettings) -> None:
    """Bring the products schema to the newest version."""
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


def create_app(settings: ProductsSettings) -> FastAPI:
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
        shop_client = httpx.AsyncClient(
            timeout=settings.woocommerce_timeout_s,
            verify=ssl.create_default_context(cafile=settings.woocommerce_ca_bundle)
            if settings.woocommerce_ca_bundle
            else True,
            headers={"User-Agent": "Vitrine products"},
        )
        events = Outbox(table=outbox, producer=SERVICE, subject_root=settings.subject_root)
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.bus = bus
        app.state.token_verifier = TokenVerifier(settings)  # chassis.auth reads it here
        app.state.deps = Deps(
            settings=settings,
            outbox=events,
            box=SecretBox(settings.vitrine_secret_key.get_secret_value()),
            http=shop_client,
        )
        relay = OutboxRelay(engine=engine, table=outbox, bus=bus, service=SERVICE)
        lives = EventConsumer(
            bus=bus,
            sessions=sessions,
            processed=processed_events,
            durable="products-streams",
            events="stream.>",
            handler=functools.partial(on_stream_event, outbox=events),
            subject_root=settings.subject_root,
        )
        app.state.relay, app.state.lives_consumer = relay, lives
        tasks = [
            asyncio.create_task(relay.run(), name="products-outbox-relay"),
            asyncio.create_task(lives.run(), name="products-streams-consumer"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await shop_client.aclose()
            await _close_bus(bus)
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
