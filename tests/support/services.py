"""A service under test: its app behind an in-process HTTP client, the run's JetStream, and a
connection to the service's own schema."""

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import nats
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from nats.js import JetStreamContext

from chassis.bus import ensure_stream
from chassis.settings import ServiceSettings


@contextlib.asynccontextmanager
async def serving(app: FastAPI, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client that calls it as `http://<name>`."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url=f"http://{name}"
        ) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def jetstream(env: dict) -> AsyncIterator[JetStreamContext]:
    """The run's JetStream, its stream made sure of (a test may publish before any service)."""
    nc = await nats.connect(env["nats_url"])
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream=env["jetstream_stream"], subject_root=env["subject_root"])
        yield js
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def schema_connection(
    settings: ServiceSettings, service: str
) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the service's schema, to look at what it stored."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f'SET search_path TO "{settings.schema_for(service)}"')
        yield conn
    finally:
        await conn.close()


@contextlib.contextmanager
def on_a_port(config: uvicorn.Config, *, name: str) -> Iterator[int]:
    """A uvicorn server on its own thread (and event loop) until the block ends: its port."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
