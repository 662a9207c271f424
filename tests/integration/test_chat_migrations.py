"""The chat migrations build exactly the tables the models declare."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chassis.db import async_url
from services.chat.app import migrate
from services.chat.models import ChatBase
from services.chat.settings import ChatSettings


@pytest.fixture(scope="module")
async def settings(env: dict) -> ChatSettings:
    # A schema of its own, so this test neither sees nor disturbs the service tests' one.
    return ChatSettings(**{**env, "db_schema_prefix": "migrations_"})


async def test_migrating_twice_is_harmless_and_leaves_no_drift_from_the_models(
    settings: ChatSettings,
) -> None:
    await migrate(settings)
    await migrate(settings)
    schema = settings.schema_for("chat")
    engine = create_async_engine(
        async_url(settings.database_url),
        poolclass=NullPool,
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"compare_type": True, "include_schemas": False}
                    ),
                    ChatBase.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
