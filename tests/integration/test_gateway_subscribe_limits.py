"""Reminder subscriptions per client, through the gateway's app on the run's Redis (keys of each
test's own), with the notifications service stood in for by a small HTTP server that counts what
reaches it: past the limit a client gets 429 with Retry-After and nothing is forwarded, other
clients are not held back, the bucket refills, and with Redis away subscriptions go through."""

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import Request as StarletteRequest

from chassis.auth import Principal, issue_token
from chassis.settings import INSECURE_JWT_SECRET
from services.gateway.app import create_app
from services.gateway.limits import client_of
from services.gateway.settings import GatewaySettings
from tests.conftest import auth
from tests.support.services import on_a_port
from vitrine.system import free_port

LIVE = f"/api/live/streams/{uuid.uuid4()}/reminders"
SHOP = "/api/live/reminders"


class Notifications:
    """Stands in for the notifications service: answers `{"answer": status}` (202 by default)
    and keeps the path of every subscription that reached it."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.app = FastAPI()
        self.app.add_api_route(LIVE, self.subscribe, methods=["POST"])
        self.app.add_api_route(SHOP, self.subscribe, methods=["POST"])

    async def subscribe(self, request: Request) -> JSONResponse:
        status = int((await request.json()).get("answer", 202))
        self.received.append(request.url.path)
        return JSONResponse({"status": "check_your_inbox"}, status_code=status)


@pytest.fixture(scope="module")
def notifications() -> Iterator[Notifications]:
    stand_in = Notifications()
    config = uvicorn.Config(stand_in.app, port=0, log_level="critical")
    with on_a_port(config, name="notifications stand-in") as port:
        stand_in.app.state.url = f"http://127.0.0.1:{port}"
        yield stand_in


@pytest.fixture
def settings(env: dict, notifications: Notifications) -> dict[str, Any]:
    """The run's settings with keys of this test's own, and a burst of 3 then 1 a minute."""
    return {
        **env,
        "redis_prefix": f"{env['redis_prefix']}limits-{secrets.token_hex(3)}:",
        "notifications_url": notifications.app.state.url,
        "reminder_subscribe_burst": 3,
        "reminder_subscribe_per_hour": 60,
        "reminder_subscribe_user_burst": 4,
        "reminder_subscribe_user_per_hour": 60,
    }


@contextlib.asynccontextmanager
async def gateway(settings: dict[str, Any]) -> AsyncIterator[FastAPI]:
    async with LifespanManager(create_app(GatewaySettings(**settings))) as manager:
        yield manager.app  # type: ignore[misc]


@contextlib.asynccontextmanager
async def client(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway calling from `ip` (as uvicorn gives it, proxies resolved)."""
    transport = httpx.ASGITransport(app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def subscribe(http: httpx.AsyncClient, path: str = LIVE, **kwargs: Any) -> httpx.Response:
    email = f"limits-{secrets.token_hex(4)}@example.com"
    return await http.post(path, json={"email": email, **kwargs.pop("json", {})}, **kwargs)


def user(user_id: str, role: str | None = None) -> dict[str, str]:
    return auth(issue_token(secret=INSECURE_JWT_SECRET, user_id=user_id, role=role))


async def test_past_the_burst_an_anonymous_client_gets_429_and_nothing_is_forwarded(
    settings: dict, notifications: Notifications
) -> None:
    async with gateway(settings) as app, client(app, "203.0.113.7") as http:
        before = len(notifications.received)
        # Both routes spend the same budget: a live's reminders and following the shop.
        answers = [await subscribe(http), await subscribe(http, SHOP), await subscribe(http)]
        assert [a.status_code for a in answers] == [202, 202, 202]
        refused = await subscribe(http, SHOP)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "60"  # one a minute
        assert refused.json() == {"detail": "too many reminder subscriptions: try again in 60 s"}
        assert (await subscribe(http)).status_code == 429
    assert notifications.received[before:] == [LIVE, SHOP, LIVE]


async def test_a_client_over_its_limit_holds_back_no_other_client(settings: dict) -> None:
    async with gateway(settings) as app:
        async with client(app, "203.0.113.7") as flooder:
            for _ in range(3):
                assert (await subscribe(flooder)).status_code == 202
            assert (await subscribe(flooder)).status_code == 429
            # Behind the same address, a signed-in user counts by their id; admins are not limited.
            for _ in range(4):
                assert (await subscribe(flooder, headers=user("u-1"))).status_code == 202
            assert (await subscribe(flooder, headers=user("u-1"))).status_code == 429
            assert (await subscribe(flooder, headers=user("u-2"))).status_code == 202
            for _ in range(6):
                assert (await subscribe(flooder, headers=user("a-1", "admin"))).status_code == 202
        async with client(app, "203.0.113.8") as neighbour:
            assert (await subscribe(neighbour)).status_code == 202


async def test_an_ipv6_host_counts_by_its_64_block(settings: dict) -> None:
    async with gateway(settings) as app:
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:fffe"):
            async with client(app, host) as http:
                assert (await subscribe(http)).status_code == 202
        async with client(app, "2001:db8:1:2:abcd::9") as same_block:
            assert (await subscribe(same_block)).status_code == 429
        async with client(app, "2001:db8:1:3::1") as next_block:
            assert (await subscribe(next_block)).status_code == 202


@pytest.mark.parametrize(
    ("host", "counted_as"),
    [
        ("203.0.113.7", "ip:203.0.113.7"),
        ("::ffff:203.0.113.7", "ip:203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
        ("testclient", "host:testclient"),
    ],
)
def test_an_anonymous_client_counts_by_its_address(host: str, counted_as: str) -> None:
    scope = {"type": "http", "client": (host, 1), "headers": []}
    assert client_of(StarletteRequest(scope), None) == counted_as
    signed_in = Principal(user_id="u-9", role=None, display_name="", email=None, token="")
    assert client_of(StarletteRequest(scope), signed_in) == "user:u-9"


async def test_once_the_bucket_refills_the_client_may_subscribe_again(settings: dict) -> None:
    # 1 at once, then one every 0.2 s.
    quick = {**settings, "reminder_subscribe_burst": 1, "reminder_subscribe_per_hour": 18_000}
    async with gateway(quick) as app, client(app, "203.0.113.9") as http:
        assert (await subscribe(http)).status_code == 202
        refused = await subscribe(http)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        await asyncio.sleep(0.25)
        assert (await subscribe(http)).status_code == 202


async def test_an_attempt_the_service_refused_or_never_got_is_given_back(settings: dict) -> None:
    one = {**settings, "reminder_subscribe_burst": 1}
    async with gateway(one) as app, client(app, "203.0.113.10") as http:
        for _ in range(3):  # e.g. a live the service does not know yet
            assert (await subscribe(http, json={"answer": 404})).status_code == 404
        assert (await subscribe(http)).status_code == 202
        assert (await subscribe(http)).status_code == 429
    away = {**one, "notifications_url": f"http://127.0.0.1:{free_port()}"}
    async with gateway(away) as app, client(app, "203.0.113.11") as http:
        for _ in range(3):
            assert (await subscribe(http)).status_code == 503


async def test_with_redis_away_subscriptions_go_through_and_the_log_says_so_once(
    settings: dict, notifications: Notifications, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chassis.limits")
    away = {
        **settings,
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "reminder_subscribe_burst": 1,
    }
    async with gateway(away) as app, client(app, "203.0.113.12") as http:
        before = len(notifications.received)
        answers = [await subscribe(http) for _ in range(4)]
        assert [a.status_code for a in answers] == [202] * 4
    assert len(notifications.received) == before + 4
    lines = [r.getMessage() for r in caplog.records if r.name == "chassis.limits"]
    assert len(lines) == 1, lines  # not one per request
    assert lines[0].startswith("reminder subscription limits unavailable, letting a request")
