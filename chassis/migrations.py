"""Alembic per service: each one migrates its own schema and keeps its own version table there."""

import asyncio
import threading
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chassis.db import async_url

# Alembic's `context` is process-wide: one upgrade at a time per process.
_ALEMBIC = threading.Lock()


def alembic_config(*, migrations_dir: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    config.set_main_option("vitrine.schema", schema)
    return config


async def upgrade(*, migrations_dir: Path, database_url: str, schema: str) -> None:
    """Bring a service's schema to the newest version (safe to run from several replicas)."""
    config = alembic_config(migrations_dir=migrations_dir, database_url=database_url, schema=schema)

    # Alembic drives its own event loop in env.py, so it runs on a worker thread.
    def run() -> None:
        with _ALEMBIC:
            command.upgrade(config, "head")

    await asyncio.to_thread(run)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py` (online mode only)."""
    url = context.config.get_main_option("sqlalchemy.url")
    schema = context.config.get_main_option("vitrine.schema")
    assert url and schema

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(
            url,
            poolclass=NullPool,
            connect_args={"server_settings": {"search_path": schema}},
        )
        async with engine.begin() as conn:
            # Replicas starting together migrate one after the other.
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(main())
