"""Every service's migrations build exactly the tables its models declare, and running them
twice is harmless."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chassis.db import async_url
from vitrine.services import SERVICES, spec


def declared_tables(service: str) -> MetaData:
    if service == "streams":
        from services.streams.models import StreamsBase

        return StreamsBase.metadata
    if service == "products":
        from services.products.models import ProductsBase

        return ProductsBase.metadata
    if service == "chat":
        from services.chat.models import ChatBase

        return ChatBase.metadata
    if service == "notifications":
        from services.notifications.models import metadata as notifications

        return notifications
    if service == "webhooks":
        from services.webhooks.models import metadata as webhooks

        return webhooks
    from services.analytics.models import metadata

    return metadata


MIGRATED = [name for name in SERVICES if spec(name).migrate is not None]


@pytest.mark.parametrize("service", MIGRATED)
async def test_migrating_twice_is_harmless_and_leaves_no_drift_from_the_models(env, service):
    chosen = spec(service)
    assert chosen.migrate is not None
    # A schema of its own, so this test neither sees nor disturbs the service tests' one.
    settings = chosen.settings(**{**env, "db_schema_prefix": "migrations_"})  # type: ignore[call-arg]
    await chosen.migrate(settings)
    await chosen.migrate(settings)
    engine = create_async_engine(
        async_url(settings.database_url),
        poolclass=NullPool,
        connect_args={"server_settings": {"search_path": settings.schema_for(service)}},
    )
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"compare_type": True, "include_schemas": False}
                    ),
                    declared_tables(service),
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_every_migrated_service_is_checked():
    assert set(MIGRATED) == {
        "streams", "products", "chat", "analytics", "notifications", "webhooks"
    }  # fmt: skip
