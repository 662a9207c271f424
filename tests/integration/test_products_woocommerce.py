"""The WooCommerce catalog source against a local stand-in shop speaking WooCommerce's REST API."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from uuid import UUID, uuid4

import asyncpg
import httpx
import nats
import orjson
import pytest
from nats.js import JetStreamContext

from chassis.secrets import MASK, SecretBox
from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from tests.support.services import schema_connection, serving
from tests.support.woocommerce import FakeShop, running_shop


@pytest.fixture(scope="module")
def shop() -> Iterator[FakeShop]:
    with running_shop() as shop:
        yield shop


@pytest.fixture(scope="module")
async def settings(env: dict, shop: FakeShop) -> ProductsSettings:
    settings = ProductsSettings(
        **env,
        db_schema_prefix="woo_",
        woocommerce_ca_bundle=shop.ca_bundle,
        woocommerce_cache_ttl_s=60,
    )
    await migrate(settings)
    return settings


@pytest.fixture(scope="module")
async def client(settings: ProductsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings), "products") as client:
        yield client


@pytest.fixture(scope="module")
async def db(settings: ProductsSettings) -> AsyncIterator[asyncpg.Connection]:
    async with schema_connection(settings, "products") as conn:
        yield conn


@pytest.fixture
async def woocommerce(
    client: httpx.AsyncClient, shop: FakeShop, admin: dict
) -> AsyncIterator[FakeShop]:
    """The shop is the active source for the test, the local catalog again afterwards."""
    response = await client.put(
        "/api/catalog/settings",
        json={
            "source": "woocommerce",
            "woocommerce": {
                "url": shop.url,
                "consumer_key": shop.consumer_key,
                "consumer_secret": shop.consumer_secret,
            },
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    shop.requests.clear()
    yield shop
    await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def search(client: httpx.AsyncClient, admin: dict, **params: object) -> dict:
    response = await client.get("/api/catalog/products", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


async def test_search_asks_the_shop_with_its_keys_and_pages_by_its_headers(
    client: httpx.AsyncClient, woocommerce: FakeShop, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    added = [
        woocommerce.add(f"Woo {tag} {n:02}", price=f"{10 + n}.50", sku=f"{tag}-{n}")
        for n in range(25)
    ]

    first = await search(client, admin, search=tag, limit=10)
    assert first["total"] == 25
    assert [p["name"] for p in first["items"]] == [f"Woo {tag} {n:02}" for n in range(10)]
    item = first["items"][0]
    assert item["source"] == "woocommerce"
    assert item["external_id"] == str(added[0]["id"])
    assert item["price"] == "10.50" and item["currency"] == "EUR"
    assert item["product_url"] == added[0]["permalink"]
    assert item["images"] == [added[0]["images"][0]["src"]]
    assert item["sku"] == f"{tag}-0"

    last = await search(client, admin, search=tag, limit=10, offset=20)
    assert last["total"] == 25 and len(last["items"]) == 5
    shifted = await search(client, admin, search=tag, limit=10, offset=5)
    assert shifted["items"][0]["name"] == f"Woo {tag} 05"

    listed = woocommerce.seen("/products")
    assert [(r.query.get("page"), r.query.get("offset")) for r in listed] == [
        ("1", None),
        ("3", None),
        (None, "5"),
    ]
    assert all(r.query["per_page"] == "10" and r.query["search"] == tag for r in listed)
    # The keys travel as Basic credentials, never in the URL.
    assert all(r.authorized for r in woocommerce.requests)
    assert not any("consumer_secret" in r.query for r in woocommerce.requests)

    # Cached with the shop's id: searching again finds the same catalog rows.
    again = await search(client, admin, search=tag, limit=10)
    assert [p["id"] for p in again["items"]] == [p["id"] for p in first["items"]]


async def test_a_cached_product_is_fetched_again_once_stale_and_lives_hear_of_the_change(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    db: asyncpg.Connection,
    env: dict,
    admin: dict,
) -> None:
    tag = uuid4().hex[:8]
    shop_product = woocommerce.add(f"Woo {tag} lamp", price="40.00", stock=7)
    [cached] = (await search(client, admin, search=tag))["items"]
    assert cached["stock"] == 7
    stream_id = str(uuid4())
    added = await client.post(
        f"/api/live/streams/{stream_id}/products", json={"product_id": cached["id"]}, headers=admin
    )
    assert added.status_code == 201

    woocommerce.requests.clear()
    url = f"/api/catalog/products/{cached['id']}"
    assert (await client.get(url, headers=admin)).json()["price"] == "40.00"
    assert woocommerce.requests == []  # fresh: served from the cache

    woocommerce.update(shop_product["id"], price="35.00", stock_quantity=2)
    await db.execute(
        "UPDATE products SET synced_at = now() - interval '1 hour' WHERE id = $1",
        UUID(cached["id"]),
    )
    refreshed = (await client.get(url, headers=admin)).json()
    assert refreshed["price"] == "35.00" and refreshed["stock"] == 2
    assert [r.path for r in woocommerce.requests] == [
        f"/wp-json/wc/v3/products/{shop_product['id']}"
    ]
    assert refreshed["id"] == cached["id"] and refreshed["external_id"] == str(shop_product["id"])

    live = (await client.get(f"/api/live/streams/{stream_id}/products")).json()
    assert live[0]["price"] == "35.00" and live[0]["stock"] == 2
    events = await _events(env, stream_id, count=2)
    assert [e["type"] for e in events] == ["product.added", "product.updated"]
    assert events[1]["data"]["product"]["stock"] == 2

    # A search refreshes too.
    woocommerce.update(shop_product["id"], stock_quantity=1)
    [found] = (await search(client, admin, search=tag))["items"]
    assert found["stock"] == 1
    assert (await client.get(url, headers=admin)).json()["stock"] == 1


async def test_the_shop_products_are_changed_in_the_shop_not_here(
    client: httpx.AsyncClient, woocommerce: FakeShop, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    woocommerce.add(f"Woo {tag} mug")
    [cached] = (await search(client, admin, search=tag))["items"]
    url = f"/api/catalog/products/{cached['id']}"
    assert (await client.put(url, json={"stock": 1}, headers=admin)).status_code == 409
    assert (await client.delete(url, headers=admin)).status_code == 409


async def test_a_woocommerce_cart_goes_to_the_shop_s_checkout_link(
    client: httpx.AsyncClient, woocommerce: FakeShop, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    shop_product = woocommerce.add(f"Woo {tag} bag", price="80.00")
    [cached] = (await search(client, admin, search=tag))["items"]
    stream_id = str(uuid4())
    await client.post(
        f"/api/live/streams/{stream_id}/products",
        json={"product_id": cached["id"], "special_price": "60.00"},
        headers=admin,
    )
    cart = await client.post(
        "/api/live/cart/items",
        json={
            "stream_id": stream_id,
            "product_id": cached["id"],
            "quantity": 2,
            "session_id": "s-" + uuid4().hex,
        },
    )
    assert cart.status_code == 201
    # The live has not started: no offer holds in the shop yet, so no code goes with the link,
    # and the cart says the catalog price the shop will charge.
    assert cart.json()["total"] == "160.00"
    assert cart.json()["checkout_url"] == (
        f"{woocommerce.url}/checkout-link/?products={shop_product['id']}:2&utm_source=vitrine"
        f"&utm_medium=live&utm_campaign={stream_id}&utm_content={cart.json()['id']}"
    )


async def test_the_shop_keys_are_sealed_at_rest_and_masked_in_every_answer(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    db: asyncpg.Connection,
    settings: ProductsSettings,
    admin: dict,
) -> None:
    got = await client.get("/api/catalog/settings", headers=admin)
    assert woocommerce.consumer_secret not in got.text
    assert woocommerce.consumer_key not in got.text
    assert got.json()["woocommerce"] == {
        "url": woocommerce.url,
        "consumer_key": MASK + woocommerce.consumer_key[-4:],
        "consumer_secret": MASK + woocommerce.consumer_secret[-4:],
    }
    sealed = orjson.loads(await db.fetchval("SELECT secrets_sealed FROM catalog_settings"))
    assert woocommerce.consumer_secret not in sealed["consumer_secret"]
    box = SecretBox(settings.vitrine_secret_key.get_secret_value())
    assert box.open(sealed["consumer_secret"]) == woocommerce.consumer_secret

    # Sending the masks back keeps the keys.
    kept = await client.put(
        "/api/catalog/settings",
        json={"source": "woocommerce", "woocommerce": got.json()["woocommerce"]},
        headers=admin,
    )
    assert kept.status_code == 200
    assert (await search(client, admin, search="anything"))["total"] >= 0


async def test_a_shop_refusing_the_keys_or_away_answers_502_and_the_cache_still_serves(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    db: asyncpg.Connection,
    admin: dict,
) -> None:
    tag = uuid4().hex[:8]
    woocommerce.add(f"Woo {tag} hat")
    [cached] = (await search(client, admin, search=tag))["items"]
    wrong = await client.put(
        "/api/catalog/settings",
        json={
            "source": "woocommerce",
            "woocommerce": {
                "url": woocommerce.url,
                "consumer_key": "ck_wrong",
                "consumer_secret": "cs_wrong",
            },
        },
        headers=admin,
    )
    assert wrong.status_code == 200
    refused = await client.get("/api/catalog/products", params={"search": tag}, headers=admin)
    assert refused.status_code == 502
    assert refused.json() == {"detail": "the shop refused the consumer key and secret"}
    assert not woocommerce.requests[-1].authorized

    await db.execute(
        "UPDATE products SET synced_at = now() - interval '1 hour' WHERE id = $1",
        UUID(cached["id"]),
    )
    stale = await client.get(f"/api/catalog/products/{cached['id']}", headers=admin)
    assert stale.status_code == 200 and stale.json()["name"] == f"Woo {tag} hat"


async def _events(env: dict, stream_id: str, *, count: int) -> list[dict]:
    nc = await nats.connect(env["nats_url"])
    js: JetStreamContext = nc.jetstream()
    sub = await js.subscribe(
        f"{env['subject_root']}.{stream_id}.product.>",
        stream=env["jetstream_stream"],
        ordered_consumer=True,
    )
    received: list[dict] = []
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while len(received) < count and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                received.append(orjson.loads((await sub.next_msg(timeout=0.5)).data))
    finally:
        await nc.close()
    return received
