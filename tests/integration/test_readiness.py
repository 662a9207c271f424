"""`/readyz` means "this process can serve its requests": a NATS or Redis outage the process
rides out keeps it ready (degraded, and said so) until its bound; a missing database does not.

NATS and Redis here are servers of the test's own on spare ports, stopped and started again;
the shared ones are never touched.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from chassis.auth import issue_token
from chassis.settings import INSECURE_JWT_SECRET
from services.chat.app import create_app as chat_app
from services.chat.app import migrate as migrate_chat
from services.chat.settings import ChatSettings
from services.gateway.app import create_app as gateway_app
from services.gateway.settings import GatewaySettings
from services.streams.app import create_app as streams_app
from services.streams.app import migrate as migrate_streams
from services.streams.settings import StreamsSettings
from tests.conftest import eventually
from vitrine.embedded import EmbeddedServer, start_nats, start_valkey
from vitrine.system import free_port


class Servers:
    """A NATS and a Redis (Valkey) of this test's own, which it may stop and start again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nats_port, self.redis_port = free_port(), free_port()
        self.nats: EmbeddedServer | None = None
        self.redis: EmbeddedServer | None = None

    def start_nats(self) -> None:
        self.nats = start_nats(self.nats_port, self.root / "nats")

    def start_redis(self) -> None:
        self.redis = start_valkey(self.redis_port, self.root / "valkey")

    def stop_nats(self) -> None:
        assert self.nats is not None
        self.nats.stop()

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    def settings(self, env: dict) -> dict[str, Any]:
        return {
            **env,
            "nats_url": f"nats://127.0.0.1:{self.nats_port}",
            "redis_url": f"redis://127.0.0.1:{self.redis_port}/0",
        }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    own = Servers(tmp_path)
    own.start_nats()
    own.start_redis()
    yield own
    for server in (own.nats, own.redis):
        if server is not None:
            server.stop()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(manager.app), base_url="http://process"
        ) as client,
    ):
        yield client


async def readyz(client: httpx.AsyncClient) -> tuple[int, dict]:
    answer = await client.get("/readyz", params={"verbose": ""})
    return answer.status_code, answer.json()


async def test_a_service_stays_ready_and_keeps_writing_while_nats_is_away(env, servers) -> None:
    settings = StreamsSettings(**servers.settings(env))
    await migrate_streams(settings)
    admin = {"Authorization": "Bearer " + issue_token(
        secret=INSECURE_JWT_SECRET, user_id="admin-1", role="admin")}  # fmt: skip
    async with serving(streams_app(settings)) as client:
        assert await eventually(lambda: _status(client, "ready"))
        servers.stop_nats()
        assert await eventually(lambda: _status(client, "degraded"))  # once the client noticed
        for _ in range(3):  # probes come and go; the outage lasts
            status, body = await readyz(client)
            assert status == 200, body
            assert body["status"] == "degraded" and body["failing"] == ["nats"]
            assert body["details"]["database"] == {"ok": True, "required": True, "down_for_s": 0}
            assert body["details"]["nats"]["outage_bound_s"] is None  # never, by default
            created = await client.post(
                "/api/live/streams", json={"title": "Soldes"}, headers=admin
            )
            assert created.status_code == 201, created.text  # into the outbox
        assert _gauge("vitrine_dependency_up", "streams", "nats") == 0
        servers.start_nats()
        assert await eventually(lambda: _status(client, "ready"), timeout=20)
        assert _gauge("vitrine_dependency_up", "streams", "nats") == 1


async def test_a_gateway_without_nats_is_ready_within_the_bound_and_drained_past_it(
    env, servers
) -> None:
    settings = GatewaySettings(**servers.settings(env), readiness_nats_outage_bound_s=3)
    async with serving(gateway_app(settings)) as client:
        assert await eventually(lambda: _status(client, "ready"))
        servers.stop_nats()
        assert await eventually(lambda: _status(client, "degraded"))  # once the client noticed
        status, body = await readyz(client)
        assert (status, body["failing"]) == (200, ["nats"])
        assert body["details"]["nats"]["outage_bound_s"] == 3

        async def drained() -> bool:
            status, body = await readyz(client)
            return status == 503 and body["status"] == "not ready"

        assert await eventually(drained, timeout=10)
        _, body = await readyz(client)
        assert body["details"]["nats"]["down_for_s"] >= 3
        servers.start_nats()
        assert await eventually(lambda: _status(client, "ready"), timeout=20)


async def test_chat_stays_ready_while_redis_is_away(env, servers) -> None:
    settings = ChatSettings(**servers.settings(env))
    await migrate_chat(settings)
    async with serving(chat_app(settings)) as client:
        assert await eventually(lambda: _status(client, "ready"))
        servers.stop_redis()
        assert await eventually(lambda: _status(client, "degraded"))
        status, body = await readyz(client)
        assert (status, body["status"], body["failing"]) == (200, "degraded", ["redis"])
        servers.start_redis()
        assert await eventually(lambda: _status(client, "ready"), timeout=20)


async def test_a_gateway_without_redis_stays_ready_past_the_nats_bound(env, servers) -> None:
    """Presence fails open: viewers are served while Redis is away, so by default it never
    drains the gateway, whatever NATS's bound."""
    settings = GatewaySettings(**servers.settings(env), readiness_nats_outage_bound_s=0)
    async with serving(gateway_app(settings)) as client:
        assert await eventually(lambda: _status(client, "ready"))
        servers.stop_redis()
        assert await eventually(lambda: _status(client, "degraded"))
        await asyncio.sleep(1.5)  # well past NATS's bound (0)
        status, body = await readyz(client)
        assert (status, body["status"], body["failing"]) == (200, "degraded", ["redis"])
        assert body["details"]["redis"]["outage_bound_s"] is None  # never, by default
        assert body["details"]["redis"]["down_for_s"] >= 1
        servers.start_redis()
        assert await eventually(lambda: _status(client, "ready"), timeout=20)


async def test_liveness_ignores_every_dependency(env, servers) -> None:
    settings = GatewaySettings(
        **servers.settings(env), readiness_nats_outage_bound_s=0, readiness_redis_outage_bound_s=0
    )
    async with serving(gateway_app(settings)) as client:
        servers.stop_nats()
        servers.stop_redis()
        # Readiness has failed on both (and so an orchestrator would drain it) ...
        assert await eventually(lambda: _status(client, "not ready"), timeout=20)
        _, body = await readyz(client)
        assert body["failing"] == ["nats", "redis"]
        # ... while liveness still answers: nobody restarts a process for its dependencies.
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def _status(client: httpx.AsyncClient, wanted: str) -> bool:
    _, body = await readyz(client)
    return bool(body["status"] == wanted)


def _gauge(name: str, service: str, dependency: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service, "dependency": dependency})
