"""A benchmark run of its own, like a test run (DESIGN.md §8): own database, stream, keys.

The servers already running on the machine (PostgreSQL, NATS JetStream, Redis; or those named by
DATABASE_URL, NATS_URL, REDIS_URL) are shared with tests and `make dev`, so a run creates its own
database, JetStream stream, subject root and Redis prefix, and removes them when it ends.
"""

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import nats
import redis.asyncio as aioredis

from chassis.dead_letters import dead_letter_stream
from chassis.settings import INSECURE_JWT_SECRET
from vitrine.services import SERVICES, spec


@contextlib.asynccontextmanager
async def isolated_env() -> AsyncIterator[dict[str, str]]:
    """The services' settings for one run (lower-case names), with every schema migrated."""
    run_id = "bench_" + secrets.token_hex(4)
    admin_dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_dsn = admin_dsn.replace("postgresql+asyncpg://", "postgresql://")
    database = f"vitrine_{run_id}"
    env = {
        "run_id": run_id,
        "vitrine_env": "test",
        "database_url": urlsplit(admin_dsn)._replace(path=f"/{database}").geturl(),
        "nats_url": os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        "redis_url": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "jetstream_stream": f"LIVE_{run_id}",
        "subject_root": f"{run_id}.live",
        "redis_prefix": f"{run_id}:",
        "jwt_secret": INSECURE_JWT_SECRET,
    }
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    try:
        for name in SERVICES:
            chosen = spec(name)
            if chosen.migrate is not None:
                await chosen.migrate(chosen.settings(**env))  # type: ignore[call-arg]
        yield env
    finally:
        await _clean(env, admin_dsn=admin_dsn, database=database)


async def _clean(env: dict[str, str], *, admin_dsn: str, database: str) -> None:
    nc = await nats.connect(env["nats_url"])
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(env["jetstream_stream"])
    with contextlib.suppress(Exception):  # its consumers' dead letters (chassis.dead_letters)
        await nc.jetstream().delete_stream(dead_letter_stream(env["jetstream_stream"]))
    await nc.close()
    client = aioredis.from_url(env["redis_url"])
    keys = [key async for key in client.scan_iter(match=f"{env['redis_prefix']}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await conn.close()


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The same settings as environment variables, for the services' processes."""
    return {key.upper(): value for key, value in env.items() if key != "run_id"}
