"""Real PostgreSQL, NATS JetStream and Redis for every test run, each run isolated.

A server is used when its URL is set (DATABASE_URL, NATS_URL, REDIS_URL) or when one answers on the
default local port; otherwise, with a Docker engine, testcontainers starts one. Each run gets its
own database, JetStream stream and subject root, and Redis key prefix, and removes them at the end.
"""

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET

# `system`, `gateway`, `nats_proxy`: the whole system as processes, once per run.
pytest_plugins = ["tests.support.system"]


def _listening(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _server(env: str, default: str, port: int, container) -> Iterator[str]:
    url = os.environ.get(env, default)
    if os.environ.get(env) or _listening(url, port):
        yield url
        return
    with container() as started:  # needs a Docker engine
        yield started


@pytest.fixture(scope="session")
def run_id() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    def container():
        from testcontainers.postgres import PostgresContainer

        @contextlib.contextmanager
        def started():
            with PostgresContainer("postgres:16", driver=None) as pg:
                yield pg.get_connection_url()

        return started()

    yield from _server(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres", 5432, container
    )


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    def container():
        from testcontainers.nats import NatsContainer

        @contextlib.contextmanager
        def started():
            with NatsContainer("nats:2.10", jetstream=True) as server:
                yield server.nats_uri()

        return started()

    yield from _server("NATS_URL", "nats://127.0.0.1:4222", 4222, container)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    def container():
        from testcontainers.redis import RedisContainer

        @contextlib.contextmanager
        def started():
            with RedisContainer("redis:7") as server:
                host, port = server.get_container_host_ip(), server.get_exposed_port(6379)
                yield f"redis://{host}:{port}/0"

        return started()

    yield from _server("REDIS_URL", "redis://127.0.0.1:6379/0", 6379, container)


@pytest.fixture(scope="session")
async def database_url(postgres_url: str, run_id: str) -> AsyncIterator[str]:
    """A database of this run's own, dropped at the end."""
    admin_dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"vitrine_{run_id}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield str(urlsplit(admin_dsn)._replace(path=f"/{name}").geturl())
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest.fixture(scope="session")
async def env(database_url: str, nats_url: str, redis_url: str, run_id: str) -> AsyncIterator[dict]:
    """Settings shared by every service of this run; cleans NATS and Redis afterwards."""
    values = {
        "vitrine_env": "test",
        "database_url": database_url,
        "nats_url": nats_url,
        "redis_url": redis_url,
        "jetstream_stream": f"LIVE_{run_id}",
        "subject_root": f"{run_id}.live",
        "redis_prefix": f"{run_id}:",
        "jwt_secret": INSECURE_JWT_SECRET,
    }
    yield values
    # The run's stream, its dead letters, and those of the systems tests ran on their own
    # (`LIVE_<run>_FUZZ`…): each stream reserves its max bytes on the server while it exists.
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        for name in await js.streams_info():
            if (name.config.name or "").startswith(values["jetstream_stream"]):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name.config.name)
    await nc.close()
    client = aioredis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{run_id}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """Bearer tokens for each kind of caller."""
    return {
        "admin": issue_token(
            secret=INSECURE_JWT_SECRET, user_id="admin-1", name="Alice", role="admin"
        ),
        "user": issue_token(secret=INSECURE_JWT_SECRET, user_id="user-1", name="Bob"),
        "moderator": issue_token(
            secret=INSECURE_JWT_SECRET, user_id="mod-1", name="Maud", role="moderator"
        ),
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def every_page(client: Any, path: str, *, headers: dict | None = None, **params) -> list:
    """The items of every page of a list route, following `next_cursor`."""
    items: list = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get(path, params=query, headers=headers or {})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def eventually(check, *, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check` (sync or async) until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def on_air(gateway: Any, admin: dict, live_id: str) -> None:
    """Start the live through the gateway and wait until the products service has heard it (its
    offer opens): its live prices are to pay from then on."""
    started = await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
    assert started.status_code == 200, started.text

    async def heard() -> bool:
        offer = await gateway.get(f"/api/live/streams/{live_id}/offer", headers=admin)
        return bool(offer.json()["status"] == "open")

    await eventually(heard)
