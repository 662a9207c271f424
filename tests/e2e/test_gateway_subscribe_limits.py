"""Reminder subscriptions per client with the whole system running: a gateway of its own (small
limits, Redis keys of its own) in front of the run's services, reached through a trusted proxy
(loopback, uvicorn's default FORWARDED_ALLOW_IPS) that names each client in X-Forwarded-For. The
subscription past the limit is refused with 429 and the notifications service never hears of
it, while other clients still subscribe."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import auth, eventually
from tests.e2e.test_notifications_flow import scheduled, viewer_with
from vitrine.mailcatcher import MailCatcher
from vitrine.system import System, free_port


@pytest.fixture
async def limited(system: System, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway: 2 subscriptions at once, then 1 a minute, for anonymous clients."""
    own = System(
        env=system.env,
        ports={**system.ports, "gateway": free_port()},
        log_dir=tmp_path,
        per_service={
            "gateway": {
                "GATEWAY_ID": "gw-subscribe-limits",
                "REDIS_PREFIX": f"{system.env['REDIS_PREFIX']}limits-{secrets.token_hex(3)}:",
                "REMINDER_SUBSCRIBE_BURST": "2",
                "REMINDER_SUBSCRIBE_PER_HOUR": "60",
            }
        },
    )
    await asyncio.to_thread(own.start, "gateway")
    try:
        async with httpx.AsyncClient(base_url=own.url("gateway"), timeout=15) as client:
            yield client
    finally:
        await asyncio.to_thread(own.stop)


def behind_the_proxy(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def test_the_subscription_past_the_limit_is_429_and_never_reaches_the_service(
    gateway: httpx.AsyncClient, limited: httpx.AsyncClient, tokens: dict, mail: MailCatcher
) -> None:
    live_id = await scheduled(gateway, tokens, timedelta(hours=5))
    path = f"/api/live/streams/{live_id}/reminders"
    one, two, three, other = (f"limits-{secrets.token_hex(4)}@example.com" for _ in range(4))
    client = behind_the_proxy("198.51.100.20")
    for email in (one, two):
        accepted = await limited.post(path, json={"email": email}, headers=client)
        assert accepted.status_code == 202, accepted.text
    refused = await limited.post(path, json={"email": three}, headers=client)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.json() == {"detail": "too many reminder subscriptions: try again in 60 s"}
    shop = await limited.post("/api/live/reminders", json={"email": three}, headers=client)
    assert shop.status_code == 429  # following the shop spends the same budget

    # Another client behind the proxy, and a signed-in viewer behind the same address, subscribe.
    neighbour = await limited.post(
        path, json={"email": other}, headers=behind_the_proxy("198.51.100.21")
    )
    assert neighbour.status_code == 202, neighbour.text
    mine = f"limits-{secrets.token_hex(4)}@example.com"
    signed_in = await limited.post(path, json={}, headers={**viewer_with(mine), **client})
    assert signed_in.status_code == 201, signed_in.text

    async def confirmations_sent() -> dict:
        counts = (await gateway.get(path, headers=auth(tokens["admin"]))).json()
        return counts if counts["sent"].get("confirm") == 3 else {}

    counts = await eventually(confirmations_sent, timeout=30)
    assert counts["pending_confirmation"] == 3  # one, two and other: not three
    assert mail.to(one) and mail.to(two) and mail.to(other)
    assert mail.to(three) == []
