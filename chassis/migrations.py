"""Alembic per service: each one migrates its own schema and keeps its own version table there."""

import asyncio
import threading
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError
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


async def is_migrated(*, migrations_dir: Path, database_url: str, schema: str) -> bool:
    """Whether the schema is at (or past) the newest version of these migrations: what a pod
    of a new release waits for before it starts (`vitrine migrate --wait`), so it never
    queries tables its migrations have not made yet. A version these scripts do not know was
    written by a newer release's migrations (a rollback, or a rollout still under way) and
    counts as past; only a missing schema or a known ancestor of the head is behind. Reads
    only."""
    config = alembic_config(migrations_dir=migrations_dir, database_url=database_url, schema=schema)
    scripts = ScriptDirectory.from_config(config)
    heads = set(scripts.get_heads())
    known = {script.revision for script in scripts.walk_revisions()}
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            # The schema is ours (a service's name and a validated prefix), never user input.
            version = f'SELECT version_num FROM "{schema}".alembic_version'  # noqa: S608
            versions = {row.version_num for row in await conn.execute(text(version))}
    except ProgrammingError:  # no schema or version table yet
        return False
    finally:
        await engine.dispose()
    if not versions:
        return False
    return versions == heads or not versions <= known


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
