"""The gateway routes the shops' webhooks by topic — orders to analytics, the catalog's changes to
products — and a live's credited orders only for admins (services/gateway/webhooks.py, api.py),
driven through its real routes with a stand-in for the services behind it."""

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from chassis.auth import TokenVerifier
from chassis.settings import ServiceSettings
from services.gateway import api
from services.gateway.webhooks import webhook_owner
from tests.conftest import auth


class RecordingUpstream:
    """Stands in for `services.gateway.upstream.Upstream`: notes where each request went."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool, dict[str, str]]] = []

    async def forward(
        self, request: Request, service: str, path: str | None = None, *, signed: bool = False
    ) -> Response:
        self.calls.append((service, request.url.path, signed, dict(request.query_params)))
        return Response(b"{}", media_type="application/json")


@pytest.fixture
async def gateway() -> tuple[httpx.AsyncClient, RecordingUpstream]:
    app = FastAPI()
    app.include_router(api.router)
    upstream = RecordingUpstream()
    app.dependency_overrides[api.upstream] = lambda: upstream
    app.state.token_verifier = TokenVerifier(ServiceSettings())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway")
    async with client:
        yield client, upstream


@pytest.mark.parametrize(
    ("source", "headers", "owner"),
    [
        ("shopify", {"X-Shopify-Topic": "orders/create"}, "analytics"),
        ("shopify", {"X-Shopify-Topic": "orders/paid"}, "analytics"),
        ("shopify", {"X-Shopify-Topic": "refunds/create"}, "analytics"),
        ("shopify", {"X-Shopify-Topic": "products/update"}, "products"),
        ("shopify", {"X-Shopify-Topic": "inventory_levels/update"}, "products"),
        ("shopify", {"X-Shopify-Topic": "app/uninstalled"}, "analytics"),  # acknowledged there
        ("woocommerce", {"X-WC-Webhook-Topic": "order.updated"}, "analytics"),
        ("woocommerce", {"X-WC-Webhook-Topic": "product.updated"}, "products"),
        ("woocommerce", {}, "analytics"),  # the unsigned ping `webhook_id=N`
        ("mux", {"X-Shopify-Topic": "products/update"}, "streams"),  # topics are the shops' only
        ("ivs", {}, "streams"),
    ],
)
async def test_each_webhook_reaches_the_service_that_owns_its_topic(
    gateway, source, headers, owner
):
    client, upstream = gateway
    answer = await client.post(f"/webhooks/{source}", content=b"webhook_id=3", headers=headers)
    assert answer.status_code == 200
    assert upstream.calls == [(owner, f"/webhooks/{source}", True, {})]
    assert webhook_owner(source, {k.lower(): v for k, v in headers.items()}) == owner


async def test_an_unknown_webhook_source_is_404_and_reaches_nobody(gateway):
    client, upstream = gateway
    answer = await client.post("/webhooks/nowhere", headers={"X-Shopify-Topic": "orders/paid"})
    assert answer.status_code == 404 and upstream.calls == []


@pytest.mark.parametrize(
    ("caller", "expected"), [(None, 401), ("user", 403), ("moderator", 403), ("admin", 200)]
)
async def test_a_lives_credited_orders_are_for_admins_and_go_to_analytics(
    gateway, tokens, caller, expected
):
    client, upstream = gateway
    path = "/api/live/streams/7d1e6c3a-8f0e-4d7e-9d5a-0b7b8f1f2c3d/orders"
    headers = auth(tokens[caller]) if caller else {}
    answer = await client.get(path, params={"limit": "2", "cursor": "abc"}, headers=headers)
    assert answer.status_code == expected
    forwarded = [("analytics", path, False, {"limit": "2", "cursor": "abc"})]
    assert upstream.calls == (forwarded if caller == "admin" else [])
