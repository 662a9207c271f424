"""A live's offer made real in a Shopify shop (the local stand-in speaking its Admin GraphQL API):
discount codes from the live's start to its window's end, and the whole cart in a cart permalink
with every code its lines need."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from nats.js import JetStreamContext

from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from tests.conftest import eventually
from tests.integration.test_products_offers import add, end, live_selling, start, synced
from tests.integration.test_products_service import events_of, types_of
from tests.support.services import serving
from tests.support.shopify import FakeShopify, running_shopify


@pytest.fixture(scope="module")
def shopify() -> Iterator[FakeShopify]:
    with running_shopify() as shop:
        yield shop


@pytest.fixture(scope="module")
async def settings(env: dict, shopify: FakeShopify) -> ProductsSettings:
    settings = ProductsSettings(
        **env,
        db_schema_prefix="shopify_offers_",
        shop_ca_bundle=shopify.ca_bundle,
        offer_tick_s=0.1,
        coupon_retry_base_s=0.2,
    )
    await migrate(settings)
    return settings


@pytest.fixture(scope="module")
async def client(settings: ProductsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "products") as client:
        yield client


@pytest.fixture
async def shop(
    client: httpx.AsyncClient, shopify: FakeShopify, admin: dict
) -> AsyncIterator[FakeShopify]:
    response = await client.put(
        "/api/catalog/settings",
        json={
            "source": "shopify",
            "shopify": {"url": shopify.url, "access_token": shopify.access_token},
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    yield shopify
    shopify.reset()
    await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def test_a_live_s_discount_codes_hold_in_shopify_and_the_cart_permalink_carries_them(
    client: httpx.AsyncClient, shop: FakeShopify, js: JetStreamContext, env: dict, admin: dict
) -> None:
    tag = uuid4().hex[:6]
    shop.add(
        f"Trench {tag}",
        variants=[{"title": "S", "price": "120.00"}, {"title": "M", "price": "120.00"}],
    )
    shop.add(f"Beret {tag}", variants=[{"price": "30.00"}])
    found = await client.get("/api/catalog/products", params={"search": tag}, headers=admin)
    assert found.status_code == 200, found.text
    by_name = {p["name"]: p for p in found.json()["items"]}
    beret, small, medium = (
        by_name[f"Beret {tag}"],
        by_name[f"Trench {tag} — S"],
        by_name[f"Trench {tag} — M"],
    )
    stream_id = await live_selling(
        client, admin, [small, medium, beret], ["90.00", "90.00", "25.00"]
    )
    started_at = await start(js, env, stream_id)
    offer = await synced(client, admin, stream_id)
    code = offer["code"]
    trench, second = shop.discount(code), shop.discount(f"{code}-2")
    assert trench is not None and second is not None
    assert sorted(trench.variant_ids) == sorted(int(p["external_id"]) for p in (small, medium))
    assert trench.value["amount"] == "30.00" and trench.value["appliesOnEachItem"] is True
    assert second.variant_ids == [int(beret["external_id"])] and second.value["amount"] == "5.00"
    assert trench.combines_with["productDiscounts"] is True
    assert trench.ends_at is not None
    # Computed when the start is heard of, which a busy run may delay.
    assert abs(trench.ends_at - (started_at + timedelta(hours=36))) < timedelta(minutes=1)

    # A cart of a trench and a beret: the permalink carries both codes and the attribution.
    session_id = "s-" + uuid4().hex
    await add(client, stream_id, small, 1, session_id)
    cart = await add(client, stream_id, beret, 2, session_id)
    link = urlsplit(cart["checkout_url"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == (
        f"{shop.url}/cart/{small['external_id']}:1,{beret['external_id']}:2"
    )
    query = parse_qs(link.query)
    assert query["discount"] == [f"{code},{code}-2"]
    assert query["attributes[vitrine_live]"] == [stream_id]
    assert query["attributes[vitrine_cart]"] == [cart["id"]]
    assert cart["total"] == "140.00"

    # The live ends and its window runs out: the codes are deactivated, cards back to the price.
    await end(js, env, stream_id, started_at)
    closed = await client.put(
        f"/api/live/streams/{stream_id}/offer", json={"window_h": 0}, headers=admin
    )
    assert closed.status_code == 200

    async def deactivated() -> bool:
        now = datetime.now(UTC)
        return all(
            d is not None and d.ends_at is not None and d.ends_at <= now
            for d in (shop.discount(code), shop.discount(f"{code}-2"))
        )

    await eventually(deactivated)

    async def at_shop_prices() -> dict | None:
        cart = (await client.get("/api/live/cart", params={"session_id": session_id})).json()
        return cart if cart["total"] == "180.00" else None

    # 120 + 2 x 30: the live prices no longer hold (the offer closes as its codes end in the
    # shop, which may be seen a moment before).
    again = await eventually(at_shop_prices)
    assert "discount" not in parse_qs(urlsplit(again["checkout_url"]).query)
    events = await events_of(js, env, stream_id, count=3, kind="offer.>")
    assert types_of(events)[0] == "offer.opened" and types_of(events)[-1] == "offer.closed"
