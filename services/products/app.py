"""The products service's composition root: everything is built here, nothing at import."""

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from chassis.migrations import upgrade
from chassis.runtime import readiness, service_runtime
from chassis.secrets import SecretBox
from chassis.web import create_web_app
from services.products import api
from services.products.catalog_settings import Deps
from services.products.coupon_sync import OfferKeeper
from services.products.handlers import on_stream_event
from services.products.models import outbox, processed_events
from services.products.settings import ProductsSettings

SERVICE = "products"
MIGRATIONS = Path(__file__).with_name("migrations")


async def migrate(settings: ProductsSettings) -> None:
    """Bring the products schema to the newest version."""
    await upgrade(
        migrations_dir=MIGRATIONS,
        database_url=settings.database_url,
        schema=settings.schema_for(SERVICE),
    )


def create_app(settings: ProductsSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(app, settings, service=SERVICE, outbox=outbox) as runtime:
            shop_client = httpx.AsyncClient(
                timeout=settings.shop_timeout_s,
                verify=ssl.create_default_context(cafile=settings.shop_ca_bundle)
                if settings.shop_ca_bundle
                else True,
                headers={"User-Agent": "Vitrine products"},
            )
            app.state.deps = Deps(
                settings=settings,
                outbox=runtime.outbox,
                box=SecretBox(settings.vitrine_secret_key.get_secret_value()),
                http=shop_client,
            )
            app.state.offer_keeper = OfferKeeper(sessions=runtime.sessions, deps=app.state.deps)
            runtime.run(app.state.offer_keeper.run(), "offer-keeper")
            app.state.lives_consumer = runtime.consume(
                durable="products-streams",
                events="stream.>",
                handler=functools.partial(on_stream_event, outbox=runtime.outbox),
                processed=processed_events,
            )
            try:
                yield
            finally:
                await shop_client.aclose()

    app = create_web_app(service=SERVICE, lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.readiness.update(readiness(app, settings))
    api.install(app)
    return app
