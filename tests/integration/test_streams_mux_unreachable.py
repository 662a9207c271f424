"""Mux out of reach when a live is created: 502 naming Mux, soon enough for the gateway to pass
it on, and the streams service serves on as before."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.streams.app import create_app, migrate
from services.streams.providers.base import ProviderUnavailable
from services.streams.providers.mux import MuxProvider
from services.streams.settings import StreamsSettings
from vitrine.system import free_port

SECRETS = {"token_id": "mux-token-id", "token_secret": "mux-token-secret"}
GATEWAY_PATIENCE_S = 10  # GatewaySettings.upstream_timeout_s


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers, like a host behind a dead load balancer."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def create(api_url: str) -> None:
    provider = MuxProvider(config={"api_url": api_url}, secrets=SECRETS)
    await provider.create(stream_id=uuid4(), stream_key="key", playback_id="playback")


async def test_mux_refusing_connections_is_said_unreachable() -> None:
    with pytest.raises(ProviderUnavailable, match=r"^Mux is unreachable"):
        await create(f"http://127.0.0.1:{free_port()}")


async def test_mux_not_answering_is_said_unreachable_before_the_gateway_gives_up() -> None:
    async with silent_server() as url:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match=r"^Mux is unreachable"):
            await create(url)
    assert time.monotonic() - started < GATEWAY_PATIENCE_S


async def test_creating_a_live_while_mux_is_away_is_502_and_the_service_serves_on(
    env, admin, caplog
) -> None:
    settings = StreamsSettings(**{**env, "db_schema_prefix": "mux_away_"})
    await migrate(settings)
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app, raise_app_exceptions=False),
            base_url="http://streams",
        ) as client,
    ):
        closed = f"http://127.0.0.1:{free_port()}"
        chosen = await client.put(
            "/api/live/settings",
            json={"platform": "mux", "config": {"api_url": closed}, "secrets": SECRETS},
            headers=admin,
        )
        assert chosen.status_code == 200, chosen.text
        for _ in range(3):
            answer = await client.post("/api/live/streams", json={"title": "x"}, headers=admin)
            assert answer.status_code == 502
            assert answer.json()["detail"].startswith("Mux is unreachable")
        assert (await client.get("/api/live/streams", headers=admin)).status_code == 200
    assert not [record for record in caplog.records if record.exc_info]
