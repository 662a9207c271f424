"""The embedded path of `make dev`: real servers on spare ports, reached with real clients.

The default ports are taken by the servers already running on these machines, which would hide
this path from the other tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
import redis

from vitrine import embedded
from vitrine.embedded import (
    ensure_services,
    port_open,
    start_nats,
    start_postgres,
    start_valkey,
)


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vitrine-state")


def test_port_open_tells_a_listening_port_from_a_closed_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)


async def test_embedded_nats_acknowledges_jetstream_publishes(state_dir: Path) -> None:
    port = spare_port()
    with start_nats(port, state_dir / "nats") as server:
        client = await nats.connect(f"nats://127.0.0.1:{port}")
        try:
            js = client.jetstream()
            await js.add_stream(name="EMBEDDED", subjects=["embedded.>"])
            ack = await js.publish("embedded.hello", b"bonjour")
            assert (ack.stream, ack.seq) == ("EMBEDDED", 1)
            message = await js.get_msg("EMBEDDED", 1)
            assert message.data == b"bonjour"
        finally:
            await client.close()
    assert not server.running
    assert not port_open("127.0.0.1", port)


def test_embedded_valkey_answers_redis_commands(state_dir: Path) -> None:
    port = spare_port()
    with start_valkey(port, state_dir / "valkey") as server:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            assert client.ping()
            client.set("viewer:42", "watching")
            assert client.get("viewer:42") == b"watching"
        finally:
            client.close()
    assert not server.running
    assert not port_open("127.0.0.1", port)


async def test_embedded_postgres_serves_the_vitrine_database_and_keeps_data(
    state_dir: Path,
) -> None:
    port = spare_port()
    data_dir = state_dir / "postgres"
    url = f"postgresql://postgres@127.0.0.1:{port}/vitrine"
    with start_postgres(port, data_dir) as server:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select 1") == 1
            await conn.execute("create table live_streams (title text)")
            await conn.execute("insert into live_streams values ('Soldes d''hiver')")
        finally:
            await conn.close()
    assert not server.running
    assert not port_open("127.0.0.1", port)

    # A second `make dev` reuses the data directory instead of running initdb again.
    with start_postgres(port, data_dir):
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select title from live_streams") == "Soldes d'hiver"
        finally:
            await conn.close()
    assert not port_open("127.0.0.1", port)


def test_a_server_that_cannot_start_reports_its_log(state_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match="did not start"):
            start_valkey(port, state_dir / "valkey")


def test_explicit_urls_are_used_as_they_are(state_dir: Path) -> None:
    urls, servers = ensure_services(
        "postgresql://app:secret@db.internal:5433/shop",
        "nats://bus.internal:4222",
        "redis://cache.internal:6380/2",
        state_dir,
    )
    assert servers == []
    assert urls == {
        "DATABASE_URL": "postgresql://app:secret@db.internal:5433/shop",
        "NATS_URL": "nats://bus.internal:4222",
        "REDIS_URL": "redis://cache.internal:6380/2",
    }


async def test_ensure_services_uses_the_servers_already_running_on_default_ports(
    state_dir: Path,
) -> None:
    defaults = (("127.0.0.1", 5432), ("127.0.0.1", 4222), ("127.0.0.1", 6379))
    if not all(port_open(host, port) for host, port in defaults):
        pytest.skip("PostgreSQL, NATS and Redis are not all running on their default ports")
    urls, servers = ensure_services(None, None, None, state_dir)
    assert servers == []
    assert urls == {
        "DATABASE_URL": embedded.DEFAULT_DATABASE_URL,
        "NATS_URL": embedded.DEFAULT_NATS_URL,
        "REDIS_URL": embedded.DEFAULT_REDIS_URL,
    }
    conn = await asyncpg.connect(urls["DATABASE_URL"])  # database `vitrine` exists now
    try:
        assert await conn.fetchval("select current_database()") == "vitrine"
    finally:
        await conn.close()


@pytest.fixture
def free_defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Point the local defaults at spare ports where nothing listens."""
    ports = {"postgres": spare_port(), "nats": spare_port(), "valkey": spare_port()}
    monkeypatch.setattr(
        embedded,
        "DEFAULT_DATABASE_URL",
        f"postgresql://postgres@127.0.0.1:{ports['postgres']}/vitrine",
    )
    monkeypatch.setattr(embedded, "DEFAULT_NATS_URL", f"nats://127.0.0.1:{ports['nats']}")
    monkeypatch.setattr(embedded, "DEFAULT_REDIS_URL", f"redis://127.0.0.1:{ports['valkey']}/0")
    yield ports


async def test_ensure_services_starts_embedded_servers_where_nothing_listens(
    state_dir: Path, free_defaults: dict[str, int]
) -> None:
    urls, servers = ensure_services(None, None, "redis://cache.internal:6380/2", state_dir)
    try:
        assert sorted(server.name for server in servers) == ["nats", "postgres"]
        assert urls["REDIS_URL"] == "redis://cache.internal:6380/2"  # remote: used as it is
        conn = await asyncpg.connect(urls["DATABASE_URL"])
        try:
            assert await conn.fetchval("select current_database()") == "vitrine"
        finally:
            await conn.close()
        client = await nats.connect(urls["NATS_URL"])
        try:
            assert client.is_connected
        finally:
            await client.close()
    finally:
        for server in servers:
            server.stop()
    assert not any(port_open("127.0.0.1", port) for port in free_defaults.values())
    assert (state_dir / "postgres" / "PG_VERSION").exists()


def test_a_local_url_where_nothing_listens_gets_an_embedded_server(state_dir: Path) -> None:
    port = spare_port()
    urls, servers = ensure_services(
        "postgresql://db.internal:5433/shop", "nats://bus.internal:4222",
        f"redis://127.0.0.1:{port}/0", state_dir,
    )  # fmt: skip
    try:
        assert [server.name for server in servers] == ["valkey"]
        assert port_open("127.0.0.1", port)
        assert urls["REDIS_URL"] == f"redis://127.0.0.1:{port}/0"
    finally:
        for server in servers:
            server.stop()
    assert not port_open("127.0.0.1", port)


def test_urls_without_a_port_use_their_schemes_default(state_dir: Path) -> None:
    if not port_open("127.0.0.1", 6379):
        pytest.skip("no Redis on the default port")
    urls, servers = ensure_services(
        "postgresql:///shop?host=/var/run/postgresql", "nats://bus.internal", "redis://localhost/3",
        state_dir,
    )  # fmt: skip
    assert servers == []
    assert urls["REDIS_URL"] == "redis://localhost/3"


def test_a_database_url_naming_a_missing_database_gets_it_created(postgres_url: str) -> None:
    from urllib.parse import urlsplit

    from vitrine.database import ensure_database

    server = urlsplit(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"vitrine_missing_{spare_port()}"
    url = server._replace(path=f"/{name}").geturl()
    try:
        assert ensure_database(url) is True
        assert ensure_database(url) is False  # there now: left as it is
    finally:
        embedded._run_coroutine(_drop(server._replace(path="/postgres").geturl(), name))


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_a_database_server_that_cannot_be_used_is_said_without_the_password() -> None:
    from vitrine.database import ensure_database

    url = f"postgresql://shop:s3cret@127.0.0.1:{spare_port()}/shop"
    with pytest.raises(RuntimeError, match="cannot be used") as raised:
        ensure_database(url)
    assert "s3cret" not in str(raised.value)
    assert "shop:***@" in str(raised.value)
