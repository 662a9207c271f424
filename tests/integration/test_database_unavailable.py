"""A service whose database is down, full or out of pooled connections answers 503 with
`Retry-After` (chassis.errors), logs a line, not a traceback, and serves again once it is back."""

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chassis import errors
from chassis.errors import RETRY_AFTER_BUSY_S, RETRY_AFTER_DOWN_S
from services.chat.app import create_app as chat_app
from services.chat.app import migrate as migrate_chat
from services.chat.settings import ChatSettings
from services.streams.app import create_app as streams_app
from services.streams.app import migrate as migrate_streams
from services.streams.settings import StreamsSettings
from tests.conftest import eventually
from vitrine.embedded import start_postgres
from vitrine.system import free_port

MAX_CONNECTIONS = 6  # the least PostgreSQL accepts (3 are kept for superusers)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app, raise_app_exceptions=False),
            base_url="http://service",
        ) as client,
    ):
        yield client


def assert_unavailable(answer: httpx.Response, retry_after_s: int) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == str(retry_after_s)
    assert answer.json() == {"detail": "the database is unavailable, try again shortly"}


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """None from Vitrine's code (asyncio's own about a socket another test left is not ours)."""
    assert not [
        record.getMessage()
        for record in caplog.records
        if record.exc_info and record.name != "asyncio"
    ]


@pytest.fixture(scope="module")
async def small_postgres(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A PostgreSQL of our own allowing MAX_CONNECTIONS clients, and a role that is no superuser
    (superusers have slots of their own)."""
    data_dir: Path = tmp_path_factory.mktemp("small-postgres") / "data"
    port = free_port()
    with start_postgres(port, data_dir, database="shop"):
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            await conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
            await conn.execute("CREATE ROLE shop LOGIN")
            await conn.execute("ALTER DATABASE shop OWNER TO shop")
        finally:
            await conn.close()
    with start_postgres(port, data_dir, database="shop"):  # max_connections takes a restart
        yield f"postgresql://shop@127.0.0.1:{port}/shop"


async def test_a_database_refusing_connections_gets_503_with_retry_after(env, caplog) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/vitrine"
    settings = ChatSettings(**{**env, "database_url": closed})
    async with serving(chat_app(settings)) as client:
        answer = await client.get("/api/live/chat", params={"stream_id": str(uuid4())})
        assert_unavailable(answer, RETRY_AFTER_DOWN_S)
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    assert any("database unavailable" in record.getMessage() for record in caplog.records)
    assert_no_traceback(caplog)


async def test_a_database_with_too_many_clients_gets_503_then_serves_again(
    env, small_postgres, caplog
) -> None:
    settings = StreamsSettings(**{**env, "database_url": small_postgres, "db_schema_prefix": ""})
    await migrate_streams(settings)
    app = streams_app(settings)
    async with serving(app) as client:
        assert (await client.get("/api/live/streams")).status_code == 200
        # The service's idle connections closed, then every slot taken (a superuser's too).
        await app.state.engine.dispose()
        hogs = []
        with contextlib.suppress(asyncpg.TooManyConnectionsError):
            for _ in range(MAX_CONNECTIONS):
                hogs.append(await asyncpg.connect(small_postgres.replace("shop@", "postgres@")))
        try:
            answer = await client.get("/api/live/streams")
            assert_unavailable(answer, RETRY_AFTER_BUSY_S)
        finally:
            for hog in hogs:
                await hog.close()

        async def recovered() -> bool:  # the pool connects again once a connection is free
            return bool((await client.get("/api/live/streams")).status_code == 200)

        await eventually(recovered)
    assert any("too many clients" in record.getMessage() for record in caplog.records)
    assert_no_traceback(caplog)


async def test_a_pool_with_no_free_connection_gets_503_with_retry_after(env, caplog) -> None:
    # No bus and a schema of its own: the chat's consumer would otherwise take the one
    # connection for every event the run left on the live subjects, and another chat service of
    # the run (the end-to-end system's) hold the relay's leadership while this relay waits for it
    # on that connection.
    settings = ChatSettings(
        **{**env, "db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.5,
           "nats_url": "nats://127.0.0.1:9", "db_schema_prefix": f"pool{uuid4().hex[:8]}_"}
    )  # fmt: skip
    await migrate_chat(settings)
    app = chat_app(settings)
    async with serving(app) as client:
        engine = app.state.engine
        held = None
        while held is None:  # the outbox relay takes the connection at times
            with contextlib.suppress(PoolTimeout):
                held = await engine.connect()
        try:
            answer = await client.get("/api/live/chat", params={"stream_id": str(uuid4())})
            assert_unavailable(answer, RETRY_AFTER_BUSY_S)
        finally:
            await held.close()
    assert_no_traceback(caplog)


@pytest.fixture(autouse=True)
def _warnings(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(errors, "_outage_log", errors.Throttled())  # each test sees its line
