"""The Shopify catalog source against a local stand-in speaking Shopify's Admin GraphQL API (and
its cart permalinks), and the shops' product webhooks keeping stock and price true in the lives
showing them."""

import base64
import hashlib
import hmac
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
import pytest
from nats.js import JetStreamContext

from chassis.secrets import MASK, SecretBox
from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from services.products.shopify import ShopifyShop
from services.products.shops import (
    Attribution,
    CheckoutLine,
    CouponSpec,
    ShopRefused,
    ShopUnavailable,
)
from tests.integration.test_products_service import events_of, types_of
from tests.support.services import schema_connection, serving
from tests.support.shopify import Bucket, FakeShopify, closed_url, delivery, running_shopify
from tests.support.woocommerce import FakeShop, running_shop

APP_SECRET = "shpss_" + "d4" * 16
OLD_SECRET = "shpss_" + "e5" * 16  # the app's previous secret, still accepted while rotating
WC_SECRET = "wc-webhook-secret-" + "f6" * 8


@pytest.fixture(scope="module")
def shopify() -> Iterator[FakeShopify]:
    with running_shopify() as shop:
        yield shop


@pytest.fixture(scope="module")
def woo() -> Iterator[FakeShop]:
    with running_shop() as shop:
        yield shop


@pytest.fixture(scope="module")
def ca_bundle(shopify: FakeShopify, woo: FakeShop, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Both stand-ins' certificates: the service trusts one bundle for every shop."""
    path = tmp_path_factory.mktemp("shops") / "shops.pem"
    path.write_bytes(Path(shopify.ca_bundle).read_bytes() + Path(woo.ca_bundle).read_bytes())
    return str(path)


@pytest.fixture(scope="module")
async def settings(env: dict, ca_bundle: str) -> ProductsSettings:
    settings = ProductsSettings(
        **env,
        db_schema_prefix="shopify_",
        shop_ca_bundle=ca_bundle,
        shop_cache_ttl_s=60,
        shop_timeout_s=2,
        shopify_webhook_secret=f"{APP_SECRET}, {OLD_SECRET}",
        woocommerce_webhook_secret=WC_SECRET,
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
async def shop(
    client: httpx.AsyncClient, shopify: FakeShopify, admin: dict
) -> AsyncIterator[FakeShopify]:
    """Shopify is the active source for the test, the local catalog again afterwards."""
    response = await client.put(
        "/api/catalog/settings",
        json={
            "source": "shopify",
            "shopify": {"url": shopify.url, "access_token": shopify.access_token},
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    shopify.requests.clear()
    yield shopify
    shopify.reset()
    await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


@pytest.fixture
async def direct(shopify: FakeShopify, ca_bundle: str) -> AsyncIterator[ShopifyShop]:
    """The adapter itself, with a client of its own (a short timeout)."""
    verify = ssl.create_default_context(cafile=ca_bundle)
    async with httpx.AsyncClient(verify=verify, timeout=1.0) as http:
        yield ShopifyShop(client=http, url=shopify.url, access_token=shopify.access_token)
    shopify.reset()


async def search(client: httpx.AsyncClient, admin: dict, **params: Any) -> dict:
    response = await client.get("/api/catalog/products", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


async def cached(client: httpx.AsyncClient, admin: dict, tag: str) -> dict[str, dict]:
    """The catalog's products matching `tag`, by the shop's id."""
    return {p["external_id"]: p for p in (await search(client, admin, search=tag))["items"]}


async def post_webhook(
    client: httpx.AsyncClient,
    payload: dict[str, Any],
    *,
    topic: str,
    secret: str = APP_SECRET,
    webhook_id: str | None = None,
) -> httpx.Response:
    body, headers = delivery(payload, topic=topic, secret=secret, webhook_id=webhook_id)
    return await client.post("/webhooks/shopify", content=body, headers=headers)


# --- settings ----------------------------------------------------------------------------------


async def test_the_access_token_is_sealed_and_masked_and_a_wrong_one_answers_502(
    client: httpx.AsyncClient,
    shop: FakeShopify,
    db: asyncpg.Connection,
    settings: ProductsSettings,
    admin: dict,
) -> None:
    got = await client.get("/api/catalog/settings", headers=admin)
    assert got.json()["source"] == "shopify"
    assert got.json()["shopify"] == {
        "url": shop.url,
        "access_token": MASK + shop.access_token[-4:],
        "storefront_url": None,
    }
    assert shop.access_token not in got.text
    sealed = orjson.loads(await db.fetchval("SELECT secrets_sealed FROM catalog_settings"))
    assert shop.access_token not in sealed["shopify_access_token"]
    box = SecretBox(settings.vitrine_secret_key.get_secret_value())
    assert box.open(sealed["shopify_access_token"]) == shop.access_token

    wrong = await client.put(
        "/api/catalog/settings",
        json={"source": "shopify", "shopify": {"url": shop.url, "access_token": "shpat_wrong"}},
        headers=admin,
    )
    assert wrong.status_code == 200
    refused = await client.get("/api/catalog/products", params={"search": "x"}, headers=admin)
    assert refused.status_code == 502
    assert refused.json() == {"detail": "Shopify refused the access token"}
    assert shop.requests and not shop.requests[-1].authorized


# --- the catalog -------------------------------------------------------------------------------


async def test_a_search_imports_each_variant_as_a_product(
    client: httpx.AsyncClient, shop: FakeShopify, db: asyncpg.Connection, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    scarf = shop.add(
        f"Scarf {tag}",
        description="Pure   silk.",
        images=2,
        variants=[
            {"title": "Red", "price": "49.90", "stock": 3, "sku": f"{tag}-R"},
            {"title": "Blue", "price": "45", "stock": -2, "image": f"{shop.url}/blue.jpg"},
        ],
    )
    mug = shop.add(f"Mug {tag}", variants=[{"price": "12.00", "tracked": False}])
    shop.add(f"Draft {tag}", status="DRAFT")

    page = await search(client, admin, search=tag)
    assert page["total"] == 2  # products, each with its variants
    red, blue, plain = (next(p for p in page["items"] if p["external_id"] == str(v.id))
                        for v in (*scarf.variants, *mug.variants))  # fmt: skip
    assert len(page["items"]) == 3
    assert red["name"] == f"Scarf {tag} — Red" and blue["name"] == f"Scarf {tag} — Blue"
    assert plain["name"] == f"Mug {tag}"  # its only variant is "Default Title"
    assert (red["price"], blue["price"], plain["price"]) == ("49.90", "45.00", "12.00")
    assert (red["stock"], blue["stock"], plain["stock"]) == (3, 0, None)
    assert red["currency"] == "EUR" and red["source"] == "shopify"
    assert red["sku"] == f"{tag}-R" and blue["sku"] is None
    assert red["description"] == "Pure silk."
    assert red["product_url"] == f"{shop.url}/products/{scarf.handle}"
    assert red["images"] == scarf.images
    assert blue["images"] == [f"{shop.url}/blue.jpg", *scarf.images]  # its own image first

    stored = await db.fetchrow(
        "SELECT external_parent_id, inventory_item_id FROM products WHERE id = $1",
        UUID(red["id"]),
    )
    assert stored["external_parent_id"] == str(scarf.id)
    assert stored["inventory_item_id"] == str(scarf.variants[0].inventory_item_id)
    [listed] = shop.seen("VitrineProducts")
    assert (
        f"title:{tag}*" in listed.variables["query"]
        and "status:active" in listed.variables["query"]
    )
    assert all(r.authorized and r.cost <= 1000 for r in shop.requests)

    # Cached by the shop's id: searching again finds the same catalog rows.
    again = await cached(client, admin, tag)
    assert {p["id"] for p in again.values()} == {p["id"] for p in page["items"]}


async def test_pages_count_products_and_an_offset_walks_the_cursors(
    client: httpx.AsyncClient, shop: FakeShopify, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    for n in range(9):
        shop.add(
            f"Hat {tag} {n}", variants=[{"title": "S"}, {"title": "M"}] if n % 3 == 0 else None
        )
    many = shop.add(f"Hat {tag} 9 sizes", variants=[{"title": f"T{n:02}"} for n in range(20)])

    first = await search(client, admin, search=tag, limit=4)
    assert first["total"] == 10
    assert [p["name"] for p in first["items"]] == [
        f"Hat {tag} 0 — S", f"Hat {tag} 0 — M", f"Hat {tag} 1", f"Hat {tag} 2", f"Hat {tag} 3 — S",
        f"Hat {tag} 3 — M",
    ]  # fmt: skip

    shop.requests.clear()
    middle = await search(client, admin, search=tag, limit=4, offset=4)
    assert [p["name"] for p in middle["items"]] == [f"Hat {tag} {n}" for n in (4, 5)] + [
        f"Hat {tag} 6 — S", f"Hat {tag} 6 — M", f"Hat {tag} 7",
    ]  # fmt: skip
    [skip] = shop.seen("VitrineSkip")
    assert skip.variables["first"] == 4 and skip.variables["after"] is None
    [listed] = shop.seen("VitrineProducts")
    assert listed.variables["after"] is not None

    last = await search(client, admin, search=tag, limit=4, offset=8)
    assert last["total"] == 10
    names = [p["name"] for p in last["items"]]
    assert names[0] == f"Hat {tag} 8" and len(names) == 1 + 20  # every variant of the last one
    assert {p["external_id"] for p in last["items"][1:]} == {str(v.id) for v in many.variants}
    assert shop.seen("VitrineMoreVariants")  # 16 came with the product, the rest were asked

    beyond = await search(client, admin, search=tag, limit=4, offset=40)
    assert beyond == {"items": [], "total": 10, "next_cursor": None}


async def test_a_stale_variant_is_fetched_again_and_the_lives_hear_of_it(
    client: httpx.AsyncClient,
    shop: FakeShopify,
    db: asyncpg.Connection,
    js: JetStreamContext,
    env: dict,
    admin: dict,
) -> None:
    tag = uuid4().hex[:8]
    lamp = shop.add(f"Lamp {tag}", variants=[{"title": "Brass", "price": "80.00", "stock": 7}])
    [product] = (await cached(client, admin, tag)).values()
    stream_id = str(uuid4())
    added = await client.post(
        f"/api/live/streams/{stream_id}/products", json={"product_id": product["id"]}, headers=admin
    )
    assert added.status_code == 201

    url = f"/api/catalog/products/{product['id']}"
    shop.requests.clear()
    assert (await client.get(url, headers=admin)).json()["price"] == "80.00"
    assert shop.requests == []  # fresh: served from the cache

    shop.change_variant(lamp.variants[0], price="72.50", quantity=2)
    stale = "UPDATE products SET synced_at = now() - interval '1 hour' WHERE id = $1"
    await db.execute(stale, UUID(product["id"]))
    refreshed = (await client.get(url, headers=admin)).json()
    assert (refreshed["price"], refreshed["stock"]) == ("72.50", 2)
    [asked] = shop.seen("VitrineVariant")
    assert asked.variables == {"id": f"gid://shopify/ProductVariant/{lamp.variants[0].id}"}
    events = await events_of(js, env, stream_id, count=2)
    assert types_of(events) == ["product.added", "product.updated"]
    assert events[1]["data"]["product"]["price"] == "72.50"

    # Gone from the shop: the cache keeps the last known copy.
    lamp.variants.clear()
    await db.execute(stale, UUID(product["id"]))
    kept = await client.get(url, headers=admin)
    assert kept.status_code == 200 and kept.json()["price"] == "72.50"


# --- discount codes ----------------------------------------------------------------------------


def _spec(code: str, variants: list[int], **fields: Any) -> CouponSpec:
    return CouponSpec(
        code=code, title=f"Live {code}", product_ids=tuple(str(v) for v in variants), **fields
    )


async def test_a_discount_code_is_created_for_the_live_variants(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    dress = shopify.add(f"Dress {tag}", variants=[{"title": "S"}, {"title": "M"}])
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=26)
    node = await direct.put_coupon(
        _spec(
            f"LIVE{tag}",
            [v.id for v in dress.variants],
            amount_off=Decimal("10.00"),
            ends_at=ends,
            usage_limit=100,
            usage_limit_per_user=1,
        ),
        known_id=None,
    )
    discount = shopify.discount(f"live{tag}")  # codes are case-insensitive
    assert discount is not None and node == discount.gid
    assert discount.title == f"Live LIVE{tag}" and discount.status == "ACTIVE"
    assert discount.value == {"amount": "10.00", "appliesOnEachItem": True}
    assert discount.variant_ids == [v.id for v in dress.variants]
    assert discount.ends_at == ends and discount.all_customers
    assert discount.usage_limit == 100 and discount.once_per_customer
    assert discount.combines_with["productDiscounts"]  # a cart may carry several lives' codes


async def test_putting_a_code_again_updates_it_in_place_and_replaces_its_variants(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    coat = shopify.add(f"Coat {tag}", variants=[{"title": "S"}, {"title": "M"}, {"title": "L"}])
    small, medium, large = (v.id for v in coat.variants)
    code = f"COAT{tag}"
    node = await direct.put_coupon(
        _spec(code, [small, medium], percent_off=Decimal("20")), known_id=None
    )
    again = await direct.put_coupon(
        _spec(code, [medium, large], percent_off=Decimal("15")), known_id=node
    )
    assert again == node
    discount = shopify.discount(code)
    assert discount is not None
    assert sorted(discount.variant_ids) == sorted([medium, large])
    assert discount.value == {"percentage": 0.15}
    assert [d for d in shopify.discounts.values() if d.code == code] == [discount]

    # A withdrawn code comes back when put again (its end moves on).
    await direct.withdraw_coupon(code=code, known_id=node)
    assert discount.status == "EXPIRED"
    ends = datetime.now(UTC) + timedelta(hours=1)
    await direct.put_coupon(
        _spec(code, [large], percent_off=Decimal("15"), ends_at=ends), known_id=node
    )
    assert discount.status == "ACTIVE" and discount.variant_ids == [large]


async def test_a_lost_discount_id_finds_the_code_and_never_makes_a_second_one(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    bag = shopify.add(f"Bag {tag}")
    code = f"BAG{tag}"
    node = await direct.put_coupon(
        _spec(code, [bag.variants[0].id], amount_off=Decimal("5")), known_id=None
    )
    # A replica that died before noting the id, then one holding an id Shopify no longer has.
    assert (
        await direct.put_coupon(
            _spec(code, [bag.variants[0].id], amount_off=Decimal("6")), known_id=None
        )
        == node
    )
    stale = "gid://shopify/DiscountCodeNode/999999"
    assert (
        await direct.put_coupon(
            _spec(code, [bag.variants[0].id], amount_off=Decimal("7")), known_id=stale
        )
        == node
    )
    assert [d.value["amount"] for d in shopify.discounts.values() if d.code == code] == ["7.00"]


async def test_what_shopify_refuses_is_told_with_its_field(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    cap = shopify.add(f"Cap {tag}")
    variant = [cap.variants[0].id]
    mine = await direct.put_coupon(
        _spec(f"MINE{tag}", variant, amount_off=Decimal("2")), known_id=None
    )
    await direct.put_coupon(_spec(f"THEIRS{tag}", variant, amount_off=Decimal("2")), known_id=None)

    with pytest.raises(ShopRefused, match=r"code: Code must be unique"):
        await direct.put_coupon(
            _spec(f"THEIRS{tag}", variant, amount_off=Decimal("2")), known_id=mine
        )
    now = datetime.now(UTC)
    with pytest.raises(ShopRefused, match=r"endsAt: Ends at needs to be after starts_at"):
        await direct.put_coupon(
            _spec(
                f"LATE{tag}",
                variant,
                amount_off=Decimal("2"),
                starts_at=now,
                ends_at=now - timedelta(hours=1),
            ),
            known_id=None,
        )
    assert shopify.discount(f"LATE{tag}") is None
    shopify.requests.clear()
    with pytest.raises(ShopRefused, match="a whole cart"):
        await direct.put_coupon(
            _spec(f"CART{tag}", variant, cart_amount_off=Decimal("9")), known_id=None
        )
    assert shopify.requests == []  # refused before asking


async def test_a_throttled_call_waits_for_the_bucket_then_succeeds(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    shopify.add(f"Belt {tag}")
    shopify.requests.clear()
    shopify.throttle(times=2)
    assert await direct.currency() == "EUR"
    assert [r.operation for r in shopify.requests] == ["VitrineShop"] * 3
    shopify.too_many(times=1, retry_after="0.05")  # HTTP 429 with Retry-After, likewise
    assert await direct.currency() == "EUR"

    shopify.throttle(times=10)
    with pytest.raises(ShopUnavailable, match="rate limit"):
        await direct.currency()
    shopify.reset()

    # A bucket that would take too long to refill is not waited for.
    shopify.bucket = Bucket(maximum=2000, restore_rate=1, available=0)
    with pytest.raises(ShopUnavailable, match="rate limit"):
        await direct.search(search=tag, limit=5, offset=0)


async def test_a_shop_away_or_failing_is_unavailable_with_a_short_reason(
    direct: ShopifyShop, shopify: FakeShopify, ca_bundle: str
) -> None:
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_bundle)) as http:
        down = ShopifyShop(client=http, url=closed_url(), access_token=shopify.access_token)
        with pytest.raises(ShopUnavailable, match="Shopify did not answer: ConnectError"):
            await down.currency()
    shopify.fail(503)
    with pytest.raises(ShopUnavailable, match="Shopify answered 503") as failed:
        await direct.currency()
    shopify.garbage()
    with pytest.raises(ShopUnavailable, match="something else than JSON"):
        await direct.currency()
    shopify.delay_s = 1.5
    with pytest.raises(ShopUnavailable, match="Shopify did not answer: ReadTimeout"):
        await direct.currency()
    shopify.delay_s = 0.0
    assert shopify.access_token not in str(failed.value)
    wrong = ShopifyShop(client=direct.client, url=shopify.url + "/", access_token="shpat_nope")
    with pytest.raises(ShopUnavailable, match=r"^Shopify refused the access token$"):
        await wrong.product("1")


async def test_withdrawing_deactivates_the_code_and_again_is_no_error(
    direct: ShopifyShop, shopify: FakeShopify
) -> None:
    tag = uuid4().hex[:6].upper()
    ring = shopify.add(f"Ring {tag}")
    code = f"RING{tag}"
    node = await direct.put_coupon(
        _spec(code, [ring.variants[0].id], amount_off=Decimal("3")), known_id=None
    )
    await direct.withdraw_coupon(code=code, known_id=node)
    discount = shopify.discount(code)
    assert discount is not None and discount.status == "EXPIRED"
    shopify.requests.clear()
    await direct.withdraw_coupon(code=code, known_id=None)  # already inactive
    await direct.withdraw_coupon(code=f"NEVER{tag}", known_id=None)  # never made
    assert not [r for r in shopify.requests if r.operation == "VitrineDiscountDeactivate"]


@pytest.mark.parametrize("count", [1, 5])
async def test_the_cart_permalink_opens_the_shop_cart_with_every_variant_and_the_codes(
    direct: ShopifyShop, shopify: FakeShopify, count: int
) -> None:
    tag = uuid4().hex[:6]
    variants = [shopify.add(f"Sock {tag} {n}").variants[0] for n in range(count)]
    lines = [CheckoutLine(external_id=str(v.id), quantity=n + 1) for n, v in enumerate(variants)]
    stream_id, cart_id = str(uuid4()), str(uuid4())
    url = direct.checkout_url(
        lines=lines, codes=["LIVE-10", "CART 2"], attribution=Attribution(stream_id, cart_id)
    )
    assert url is not None and url.startswith(f"{shopify.url}/cart/{variants[0].id}:1")
    opened = await direct.client.get(url)
    assert opened.status_code == 302 and "/checkouts/cn/" in opened.headers["location"]
    visit = shopify.carts[-1]
    assert visit.lines == [(v.id, n + 1) for n, v in enumerate(variants)]
    assert visit.discounts == ["LIVE-10", "CART 2"]
    assert visit.attributes == {"vitrine_live": stream_id, "vitrine_cart": cart_id}
    assert visit.ref == "vitrine"


# --- the shops' webhooks -----------------------------------------------------------------------


async def _in_a_live(client: httpx.AsyncClient, admin: dict, product: dict) -> str:
    stream_id = str(uuid4())
    added = await client.post(
        f"/api/live/streams/{stream_id}/products", json={"product_id": product["id"]}, headers=admin
    )
    assert added.status_code == 201, added.text
    return stream_id


async def test_products_update_brings_the_cached_variants_up_to_date_for_the_viewers(
    client: httpx.AsyncClient,
    shop: FakeShopify,
    db: asyncpg.Connection,
    js: JetStreamContext,
    env: dict,
    admin: dict,
) -> None:
    tag = uuid4().hex[:8]
    tee = shop.add(f"Tee {tag}", variants=[{"title": "S", "price": "20.00"}, {"title": "M"}])
    products = await cached(client, admin, tag)
    small = products[str(tee.variants[0].id)]
    stream_id = await _in_a_live(client, admin, small)

    shop.change(tee, title=f"Organic tee {tag}")
    shop.change_variant(tee.variants[0], price="17.50", quantity=4)
    shop.add(f"Other {tag}")  # not in this product
    tee.variants.append(shop.add(f"x{tag}").variants[0])  # a variant the catalog never cached
    answer = await post_webhook(client, shop.products_update(tee), topic="products/update")
    assert answer.status_code == 200 and answer.json() == {"status": "applied"}

    now = (await client.get(f"/api/catalog/products/{small['id']}", headers=admin)).json()
    assert (now["name"], now["price"], now["stock"]) == (f"Organic tee {tag} — S", "17.50", 4)
    assert now["product_url"] == small["product_url"]  # what the payload does not tell stays
    medium = products[str(tee.variants[1].id)]
    assert (await client.get(f"/api/catalog/products/{medium['id']}", headers=admin)).json()[
        "name"
    ] == f"Organic tee {tag} — M"
    never = await db.fetchval(
        "SELECT count(*) FROM products WHERE external_id = $1", str(tee.variants[2].id)
    )
    assert never == 0  # webhooks never add products
    events = await events_of(js, env, stream_id, count=2)
    assert types_of(events) == ["product.added", "product.updated"]
    assert events[1]["data"]["product"]["price"] == "17.50"
    assert events[1]["data"]["product"]["name"] == f"Organic tee {tag} — S"


async def test_inventory_levels_update_makes_a_sold_out_variant_reach_the_viewers(
    client: httpx.AsyncClient, shop: FakeShopify, js: JetStreamContext, env: dict, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    vase = shop.add(f"Vase {tag}", variants=[{"title": "Tall", "stock": 2}])
    [product] = (await cached(client, admin, tag)).values()
    stream_id = await _in_a_live(client, admin, product)

    shop.change_variant(vase.variants[0], quantity=0)  # the last two sold
    shop.requests.clear()
    level = shop.inventory_levels_update(vase.variants[0])
    answer = await post_webhook(client, level, topic="inventory_levels/update")
    assert answer.status_code == 200 and answer.json() == {"status": "applied"}
    assert [r.operation for r in shop.requests] == ["VitrineVariant"]  # stock over all locations

    events = await events_of(js, env, stream_id, count=2)
    assert types_of(events) == ["product.added", "product.updated"]
    assert events[1]["data"]["product"]["stock"] == 0
    now = (await client.get(f"/api/catalog/products/{product['id']}", headers=admin)).json()
    assert now["stock"] == 0


async def test_a_forged_webhook_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, shop: FakeShopify, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    pen = shop.add(f"Pen {tag}", variants=[{"price": "5.00"}])
    [product] = (await cached(client, admin, tag)).values()
    shop.change_variant(pen.variants[0], price="0.01")
    payload = shop.products_update(pen)

    forged = await post_webhook(client, payload, topic="products/update", secret="guessed")
    assert forged.status_code == 401
    body, headers = delivery(payload, topic="products/update", secret=APP_SECRET)
    tampered = body.replace(b'"0.01"', b'"0.02"')
    assert (
        await client.post("/webhooks/shopify", content=tampered, headers=headers)
    ).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    assert (
        await client.post("/webhooks/shopify", content=body, headers=unsigned)
    ).status_code == 401
    now = (await client.get(f"/api/catalog/products/{product['id']}", headers=admin)).json()
    assert now["price"] == "5.00"

    # The app's previous secret still signs while it is being rotated.
    rotated = await post_webhook(client, payload, topic="products/update", secret=OLD_SECRET)
    assert rotated.status_code == 200 and rotated.json() == {"status": "applied"}


async def test_a_replayed_or_late_webhook_changes_nothing(
    client: httpx.AsyncClient, shop: FakeShopify, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    cup = shop.add(f"Cup {tag}", variants=[{"price": "9.00"}])
    [product] = (await cached(client, admin, tag)).values()
    url = f"/api/catalog/products/{product['id']}"

    shop.change_variant(cup.variants[0], price="8.00")
    older = shop.products_update(cup)
    webhook_id = str(uuid4())
    first = await post_webhook(client, older, topic="products/update", webhook_id=webhook_id)
    assert first.json() == {"status": "applied"}
    shop.change_variant(cup.variants[0], price="1.00")
    replay = await post_webhook(
        client, shop.products_update(cup), topic="products/update", webhook_id=webhook_id
    )
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert (await client.get(url, headers=admin)).json()["price"] == "8.00"

    # A later change applied, then an earlier one delivered late: the later one stays.
    newer = shop.products_update(cup) | {
        "updated_at": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    }
    newer["variants"][0]["price"] = "7.00"
    assert (await post_webhook(client, newer, topic="products/update")).json() == {
        "status": "applied"
    }
    late = await post_webhook(client, older, topic="products/update")
    assert late.json() == {"status": "late"}
    assert (await client.get(url, headers=admin)).json()["price"] == "7.00"


async def test_unknown_products_and_other_topics_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, shop: FakeShopify, db: asyncpg.Connection
) -> None:
    stranger = shop.add(f"Stranger {uuid4().hex[:8]}")
    before = await db.fetchval("SELECT count(*) FROM products")
    unknown = await post_webhook(client, shop.products_update(stranger), topic="products/update")
    assert unknown.json() == {"status": "unknown product"}
    level = shop.inventory_levels_update(stranger.variants[0])
    assert (await post_webhook(client, level, topic="inventory_levels/update")).json() == {
        "status": "unknown product"
    }
    other = await post_webhook(client, {"id": 1}, topic="orders/create")
    assert other.status_code == 200 and other.json()["status"] == "ignored"
    assert await db.fetchval("SELECT count(*) FROM products") == before
    broken = await post_webhook(client, {"title": "no id"}, topic="products/update")
    assert broken.status_code == 400


async def test_shopify_away_during_an_inventory_webhook_answers_503_and_its_redelivery_applies(
    client: httpx.AsyncClient, shop: FakeShopify, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    jar = shop.add(f"Jar {tag}", variants=[{"stock": 5}])
    [product] = (await cached(client, admin, tag)).values()
    shop.change_variant(jar.variants[0], quantity=1)
    level = shop.inventory_levels_update(jar.variants[0])
    webhook_id = str(uuid4())
    shop.fail(502)
    away = await post_webhook(client, level, topic="inventory_levels/update", webhook_id=webhook_id)
    assert away.status_code == 503 and "Shopify answered 502" in away.json()["detail"]
    again = await post_webhook(
        client, level, topic="inventory_levels/update", webhook_id=webhook_id
    )
    assert again.json() == {"status": "applied"}  # not counted as seen: Shopify delivers again
    assert (await client.get(f"/api/catalog/products/{product['id']}", headers=admin)).json()[
        "stock"
    ] == 1


# --- WooCommerce's product webhooks ------------------------------------------------------------


def _woocommerce_delivery(
    payload: dict[str, Any], *, topic: str, secret: str = WC_SECRET, delivery_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A WooCommerce webhook delivery: the body signed like WooCommerce signs it."""
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return body, {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "product",
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": signature.decode(),
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid4().hex,
    }


async def test_woocommerce_product_webhooks_update_the_cached_product_for_the_viewers(
    client: httpx.AsyncClient,
    woo: FakeShop,
    js: JetStreamContext,
    env: dict,
    admin: dict,
) -> None:
    configured = await client.put(
        "/api/catalog/settings",
        json={
            "source": "woocommerce",
            "woocommerce": {
                "url": woo.url,
                "consumer_key": woo.consumer_key,
                "consumer_secret": woo.consumer_secret,
            },
        },
        headers=admin,
    )
    assert configured.status_code == 200, configured.text
    try:
        tag = uuid4().hex[:8]
        added = woo.add(f"Woo {tag} bowl", price="30.00", stock=6)
        [product] = (await cached(client, admin, tag)).values()
        stream_id = await _in_a_live(client, admin, product)
        url = f"/api/catalog/products/{product['id']}"

        woo.update(added["id"], price="24.00", stock_quantity=0)
        payload = woo.products[added["id"]] | {"date_modified_gmt": "2030-01-01T10:00:00"}
        body, headers = _woocommerce_delivery(payload, topic="product.updated")
        answer = await client.post("/webhooks/woocommerce", content=body, headers=headers)
        assert answer.status_code == 200 and answer.json() == {"status": "applied"}
        assert (await client.get(url, headers=admin)).json()["stock"] == 0
        events = await events_of(js, env, stream_id, count=2)
        assert types_of(events) == ["product.added", "product.updated"]
        assert events[1]["data"]["product"]["stock"] == 0
        assert events[1]["data"]["product"]["price"] == "24.00"

        replayed = await client.post("/webhooks/woocommerce", content=body, headers=headers)
        assert replayed.json() == {"status": "duplicate"}
        forged_body, forged = _woocommerce_delivery(
            payload | {"price": "1.00"}, topic="product.updated", secret="guessed"
        )
        refused = await client.post("/webhooks/woocommerce", content=forged_body, headers=forged)
        assert refused.status_code == 401
        assert (await client.get(url, headers=admin)).json()["price"] == "24.00"

        woo.update(added["id"], stock_quantity=3)
        restocked = woo.products[added["id"]] | {"date_modified_gmt": "2030-01-01T11:00:00"}
        body, headers = _woocommerce_delivery(restocked, topic="product.updated")
        assert (
            await client.post("/webhooks/woocommerce", content=body, headers=headers)
        ).json() == {"status": "applied"}
        body, headers = _woocommerce_delivery({"id": added["id"]}, topic="product.deleted")
        deleted = await client.post("/webhooks/woocommerce", content=body, headers=headers)
        assert deleted.json() == {"status": "applied"}
        assert (await client.get(url, headers=admin)).json()["stock"] == 0  # sold out from now

        ping = await client.post(
            "/webhooks/woocommerce",
            content=b"webhook_id=7",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert ping.json() == {"status": "pong"}
    finally:
        await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)
