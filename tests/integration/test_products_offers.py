"""A live's offer made real in a WooCommerce shop (the local stand-in speaking its REST API):
coupons from the live's start to its window's end, the whole cart in the shop's checkout link at
the live prices, a shop away, replicas, and the admin's view."""

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext

from contracts.streams import StreamEnded, StreamStarted, StreamStatus
from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from tests.conftest import auth, eventually
from tests.integration.test_products_service import (
    events_of,
    publish_stream_event,
    stream_view,
    types_of,
)
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
        db_schema_prefix="offers_",
        woocommerce_ca_bundle=shop.ca_bundle,
        offer_tick_s=0.1,
        coupon_retry_base_s=0.2,
        coupon_retry_max_s=0.5,
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
    shop.store.coupon_failure = None
    yield shop
    shop.store.coupon_failure = None
    await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def shop_products(
    client: httpx.AsyncClient, shop: FakeShop, admin: dict, prices: list[str]
) -> list[dict]:
    """Products of the shop, cached in the catalog by a search."""
    tag = uuid4().hex[:8]
    for n, price in enumerate(prices):
        shop.add(f"Woo {tag} {n}", price=price)
    found = await client.get("/api/catalog/products", params={"search": tag}, headers=admin)
    assert found.status_code == 200, found.text
    return found.json()["items"]


async def live_selling(
    client: httpx.AsyncClient, admin: dict, products: list[dict], live_prices: list[str | None]
) -> str:
    stream_id = str(uuid4())
    for product, live_price in zip(products, live_prices, strict=True):
        body: dict[str, Any] = {"product_id": product["id"]}
        if live_price is not None:
            body["special_price"] = live_price
        added = await client.post(
            f"/api/live/streams/{stream_id}/products", json=body, headers=admin
        )
        assert added.status_code == 201, added.text
    return stream_id


async def start(js: JetStreamContext, env: dict, stream_id: str) -> datetime:
    started_at = datetime.now(UTC).replace(microsecond=0)
    view = stream_view(stream_id, StreamStatus.LIVE, started_at)
    await publish_stream_event(js, env, stream_id, StreamStarted(stream=view))
    return started_at


async def end(js: JetStreamContext, env: dict, stream_id: str, started_at: datetime) -> datetime:
    ended_at = datetime.now(UTC).replace(microsecond=0)
    view = stream_view(stream_id, StreamStatus.ENDED, started_at).model_copy(
        update={"ended_at": ended_at}
    )
    await publish_stream_event(js, env, stream_id, StreamEnded(stream=view))
    return ended_at


async def synced(client: httpx.AsyncClient, admin: dict, stream_id: str) -> dict:
    """The offer once the shop holds every coupon of it as recorded."""

    async def check() -> dict | None:
        offer = (await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)).json()
        done = offer["coupons"] and all(c["state"] == "synced" for c in offer["coupons"])
        return offer if done else None

    result: dict = await eventually(check)
    return result


def coupons_of(shop: FakeShop, code: str) -> dict[str, dict]:
    code = code.lower()
    return {
        c["code"]: c
        for c in shop.store.coupons.values()
        if c["code"] == code or c["code"].startswith(code + "-")
    }


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_a_live_offer_is_coupons_in_the_shop_from_the_start_to_the_window_s_end(
    client: httpx.AsyncClient, woocommerce: FakeShop, js: JetStreamContext, env: dict, admin: dict
) -> None:
    scarf, belt, cap = await shop_products(client, woocommerce, admin, ["49.90", "30.00", "20.00"])
    stream_id = await live_selling(client, admin, [scarf, belt, cap], ["39.90", "25.00", "10.00"])
    code = "SHOW" + uuid4().hex[:6].upper()
    put = await client.put(
        f"/api/live/streams/{stream_id}/offer", json={"code": code, "window_h": 2}, headers=admin
    )
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "pending" and put.json()["coupons"] == []
    await asyncio.sleep(0.3)
    assert coupons_of(woocommerce, code) == {}  # nothing in the shop before the live

    started_at = await start(js, env, stream_id)
    offer = await synced(client, admin, stream_id)
    assert offer["status"] == "open" and offer["problem"] is None
    coupons = coupons_of(woocommerce, code)
    main, second = coupons[code.lower()], coupons[f"{code.lower()}-2"]
    # Products sharing a discount share a coupon: 10 off the scarf and the cap, 5 off the belt.
    assert (main["discount_type"], main["amount"]) == ("fixed_product", "10.00")
    assert sorted(main["product_ids"]) == sorted(int(p["external_id"]) for p in (scarf, cap))
    assert (second["amount"], second["product_ids"]) == ("5.00", [int(belt["external_id"])])
    # While on air the coupon ends after a provisional 12 h plus the window.
    expires = when(main["date_expires_gmt"])
    # The shop computes it when it hears of the start, which a busy run may delay.
    assert abs(expires - (started_at + timedelta(hours=14))) < timedelta(minutes=1)
    opened = await events_of(js, env, stream_id, count=1, kind="offer.>")
    assert types_of(opened) == ["offer.opened"] and opened[0]["data"]["offer"]["code"] == code

    # The belt's live price now takes 10 off too: one coupon covers the three.
    repriced = await client.post(
        f"/api/live/streams/{stream_id}/products",
        json={"product_id": belt["id"], "special_price": "20.00"},
        headers=admin,
    )
    assert repriced.status_code == 200
    await synced(client, admin, stream_id)
    coupons = coupons_of(woocommerce, code)
    assert list(coupons) == [code.lower()]
    assert len(coupons[code.lower()]["product_ids"]) == 3

    ended_at = await end(js, env, stream_id, started_at)

    async def moved() -> bool:
        found = coupons_of(woocommerce, code).get(code.lower())
        return found is not None and when(found["date_expires_gmt"]) == ended_at + timedelta(
            hours=2
        )

    await eventually(moved)

    # The window ends (the admin shortens it): the codes give nothing, cards lose the live price.
    assert (
        await client.put(
            f"/api/live/streams/{stream_id}/offer", json={"window_h": 0}, headers=admin
        )
    ).status_code == 200

    async def closed() -> bool:
        offer = (await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)).json()
        return offer["status"] == "closed" and coupons_of(woocommerce, code) == {}

    await eventually(closed)
    cards = (await client.get(f"/api/live/streams/{stream_id}/products")).json()
    assert [c["live_price"] for c in cards] == [None, None, None]
    events = await events_of(js, env, stream_id, count=4, kind="offer.>")
    # Opened, the belt repriced, the live's end, the shorter window, closed.
    assert types_of(events) == ["offer.opened"] + ["offer.updated"] * 3 + ["offer.closed"]
    late = await client.put(
        f"/api/live/streams/{stream_id}/offer", json={"window_h": 5}, headers=admin
    )
    assert late.status_code == 409


async def checkout_of(shop: FakeShop, url: str) -> dict:
    """Follow a checkout link as the viewer's browser would, to the checkout's cart."""
    trust = ssl.create_default_context(cafile=shop.ca_bundle)
    async with httpx.AsyncClient(verify=trust, follow_redirects=True) as browser:
        page = await browser.get(url)
    assert page.status_code == 200, page.text
    return page.json()


async def add(
    client: httpx.AsyncClient, stream_id: str, product: dict, quantity: int, session_id: str
) -> dict:
    added = await client.post(
        "/api/live/cart/items",
        json={
            "stream_id": stream_id,
            "product_id": product["id"],
            "quantity": quantity,
            "session_id": session_id,
        },
    )
    assert added.status_code == 201, added.text
    return added.json()


async def test_the_whole_cart_lands_in_the_shop_checkout_at_the_live_prices(
    client: httpx.AsyncClient, woocommerce: FakeShop, js: JetStreamContext, env: dict, admin: dict
) -> None:
    scarf, belt = await shop_products(client, woocommerce, admin, ["49.90", "30.00"])
    stream_id = await live_selling(client, admin, [scarf, belt], ["39.90", "25.00"])
    await start(js, env, stream_id)
    offer = await synced(client, admin, stream_id)
    session_id = "s-" + uuid4().hex

    one = await add(client, stream_id, scarf, 1, session_id)
    link = urlsplit(one["checkout_url"])
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{woocommerce.url}/checkout-link/"
    assert query["products"] == f"{scarf['external_id']}:1"
    assert query["coupon"] == offer["code"]
    assert query["utm_source"] == "vitrine" and query["utm_campaign"] == stream_id
    assert query["utm_content"] == one["id"]
    paid = await checkout_of(woocommerce, one["checkout_url"])
    assert paid["notices"] == [] and paid["total"] == "39.90"

    # Two products with different discounts: one coupon of the cart's own gives both.
    two = await add(client, stream_id, belt, 2, session_id)
    code = parse_qs(urlsplit(two["checkout_url"]).query)["coupon"][0]
    assert code.startswith("CART-") and two["total"] == "89.90"

    async def cart_coupon() -> bool:
        found = woocommerce.store.coupon(code)
        return found is not None and found["amount"] == "20.00"

    await eventually(cart_coupon)
    coupon = woocommerce.store.coupon(code)
    assert coupon is not None
    assert (coupon["discount_type"], coupon["usage_limit"]) == ("fixed_cart", 1)
    # Worth the cart's whole discount only for the whole cart (not for one item of it).
    assert coupon["minimum_amount"] == "109.90"
    paid = await checkout_of(woocommerce, two["checkout_url"])
    assert paid["notices"] == [] and paid["total"] == "89.90"
    assert sorted((ln["product_id"], ln["quantity"]) for ln in paid["lines"]) == sorted(
        [(int(scarf["external_id"]), 1), (int(belt["external_id"]), 2)]
    )

    # The order it makes is credited back to the live and the cart.
    order = woocommerce.store.place_order(await checkout_token(woocommerce, two["checkout_url"]))
    meta = {m["key"]: m["value"] for m in order["meta_data"]}
    assert meta["_wc_order_attribution_utm_content"] == two["id"]
    assert meta["_wc_order_attribution_utm_campaign"] == stream_id
    assert woocommerce.store.coupon(code)["usage_count"] == 1  # type: ignore[index]


async def test_a_cart_s_own_coupon_follows_its_live_s_offer_to_its_close(
    client: httpx.AsyncClient, woocommerce: FakeShop, js: JetStreamContext, env: dict, admin: dict
) -> None:
    scarf, belt = await shop_products(client, woocommerce, admin, ["49.90", "30.00"])
    stream_id = await live_selling(client, admin, [scarf, belt], ["39.90", "25.00"])
    session_id = "s-" + uuid4().hex
    # Before the live the shop holds no code yet: the cart says the price the shop will charge.
    early = await add(client, stream_id, scarf, 1, session_id)
    assert early["total"] == "49.90" and "coupon" not in early["checkout_url"]

    started_at = await start(js, env, stream_id)
    await synced(client, admin, stream_id)
    cart = await add(client, stream_id, belt, 2, session_id)
    code = parse_qs(urlsplit(cart["checkout_url"]).query)["coupon"][0]
    assert code.startswith("CART-") and cart["total"] == "89.90"
    await eventually(lambda: woocommerce.store.coupon(code) is not None)
    await end(js, env, stream_id, started_at)
    shortened = await client.put(
        f"/api/live/streams/{stream_id}/offer", json={"window_h": 1}, headers=admin
    )
    assert shortened.status_code == 200

    # The window moved: the cart's coupon ends with it, though the cart was not shown again.
    async def ends_with_the_offer() -> bool:
        offer = (await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)).json()
        found = woocommerce.store.coupon(code)
        return (
            found is not None
            and offer["closes_at"] is not None
            and when(found["date_expires_gmt"]) == when(offer["closes_at"][:19])
        )

    await eventually(ends_with_the_offer)

    # The offer closes: no code of it, the cart's own included, gives the live price any more.
    closed = await client.put(
        f"/api/live/streams/{stream_id}/offer", json={"window_h": 0}, headers=admin
    )
    assert closed.status_code == 200
    await eventually(lambda: woocommerce.store.coupon(code) is None)
    after = (await client.get(f"/api/live/cart?session_id={session_id}")).json()
    assert after["total"] == "109.90" and "coupon" not in after["checkout_url"]


async def test_a_claimed_cart_s_own_coupon_is_withdrawn_with_it(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    js: JetStreamContext,
    env: dict,
    admin: dict,
    tokens: dict,
) -> None:
    scarf, belt = await shop_products(client, woocommerce, admin, ["49.90", "30.00"])
    stream_id = await live_selling(client, admin, [scarf, belt], ["39.90", "25.00"])
    await start(js, env, stream_id)
    await synced(client, admin, stream_id)
    session_id = "s-" + uuid4().hex
    await add(client, stream_id, scarf, 1, session_id)
    cart = await add(client, stream_id, belt, 1, session_id)
    code = parse_qs(urlsplit(cart["checkout_url"]).query)["coupon"][0]
    assert code.startswith("CART-")
    await eventually(lambda: woocommerce.store.coupon(code) is not None)

    user = auth(tokens["user"])
    body = {"stream_id": stream_id, "product_id": scarf["id"], "quantity": 1}
    had = await client.post(
        "/api/live/cart/items", json={**body, "session_id": session_id + "u"}, headers=user
    )
    assert had.status_code == 201, had.text  # the user's own cart, which the session's joins
    claimed = await client.post(
        "/api/live/cart/claim", json={"session_id": session_id}, headers=user
    )
    assert claimed.status_code == 200, claimed.text
    mine = parse_qs(urlsplit(claimed.json()["checkout_url"]).query)["coupon"][0]
    assert mine.startswith("CART-") and mine != code  # the user's cart has a coupon of its own
    await eventually(lambda: woocommerce.store.coupon(code) is None)


async def checkout_token(shop: FakeShop, url: str) -> str:
    """The checkout session the link opens (what the viewer then pays)."""
    trust = ssl.create_default_context(cafile=shop.ca_bundle)
    async with httpx.AsyncClient(verify=trust) as browser:
        redirect = await browser.get(url)
    token: str = parse_qs(urlsplit(redirect.headers["location"]).query)["session"][0]
    return token


async def test_five_products_and_variations_go_to_the_checkout_link_by_the_shop_s_ids(
    client: httpx.AsyncClient, woocommerce: FakeShop, js: JetStreamContext, env: dict, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    _, variations = woocommerce.add_variable(
        f"Woo {tag} dress", variations=[("S", "60.00"), ("M", "62.00")]
    )
    found = await client.get("/api/catalog/products", params={"search": tag}, headers=admin)
    dresses = found.json()["items"]
    assert sorted(p["external_id"] for p in dresses) == sorted(str(v["id"]) for v in variations)
    assert {p["name"] for p in dresses} == {f"Woo {tag} dress — S", f"Woo {tag} dress — M"}
    others = await shop_products(client, woocommerce, admin, ["10.00", "11.00", "12.00"])
    products = dresses + others
    stream_id = await live_selling(client, admin, products, ["50.00", "52.00", None, None, None])
    await start(js, env, stream_id)
    offer = await synced(client, admin, stream_id)
    [coupon] = coupons_of(woocommerce, offer["code"]).values()
    assert sorted(coupon["product_ids"]) == sorted(v["id"] for v in variations)
    session_id = "s-" + uuid4().hex
    cart: dict = {}
    for n, product in enumerate(products, start=1):
        cart = await add(client, stream_id, product, n, session_id)
    listed = parse_qs(urlsplit(cart["checkout_url"]).query)["products"][0]
    assert listed == ",".join(f"{p['external_id']}:{n}" for n, p in enumerate(products, start=1))
    paid = await checkout_of(woocommerce, cart["checkout_url"])
    expected = Decimal("50.00") + 2 * Decimal("52.00") + 3 * 10 + 4 * 11 + 5 * 12
    assert Decimal(paid["total"]) == Decimal(cart["total"]) == expected


async def test_a_shop_away_lets_the_live_start_tells_the_admin_and_catches_up(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    js: JetStreamContext,
    env: dict,
    admin: dict,
    db: asyncpg.Connection,
) -> None:
    [scarf] = await shop_products(client, woocommerce, admin, ["49.90"])
    stream_id = await live_selling(client, admin, [scarf], ["39.90"])
    woocommerce.store.coupon_failure = "down"
    await start(js, env, stream_id)

    async def failing() -> dict | None:
        offer = (await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)).json()
        return offer if offer["problem"] else None

    offer = await eventually(failing)
    assert offer["status"] == "open"
    assert offer["problem"] == "offer not created in the shop: the shop answered 503"
    assert offer["coupons"][0]["state"] == "failing"

    async def retried() -> bool:
        attempts = await db.fetchval(
            "SELECT attempts FROM shop_coupons WHERE stream_id = $1", UUID(stream_id)
        )
        return bool(attempts >= 3)

    await eventually(retried)
    woocommerce.store.coupon_failure = "refuse"

    async def refused() -> bool:
        offer = (await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)).json()
        return bool(offer["problem"] and "Coupons are disabled" in offer["problem"])

    await eventually(refused)
    woocommerce.store.coupon_failure = None
    offer = await synced(client, admin, stream_id)
    assert offer["problem"] is None
    assert len(coupons_of(woocommerce, offer["code"])) == 1


async def test_replicas_and_a_lost_coupon_id_never_make_a_coupon_twice(
    settings: ProductsSettings,
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    js: JetStreamContext,
    env: dict,
    admin: dict,
    db: asyncpg.Connection,
) -> None:
    products = await shop_products(client, woocommerce, admin, ["10.00", "20.00", "30.00"])
    stream_id = await live_selling(client, admin, products, ["9.00", "18.00", "27.00"])
    woocommerce.requests.clear()
    async with serving(create_app(settings), "products-2"):
        await start(js, env, stream_id)
        offer = await synced(client, admin, stream_id)
    made = [r for r in woocommerce.requests if r.method == "POST" and r.path.endswith("/coupons")]
    assert len(made) == 3 == len(coupons_of(woocommerce, offer["code"]))

    # A run that died after the shop made the coupon but before noting its id: found by code.
    await db.execute(
        "UPDATE shop_coupons SET external_id = NULL, version = version + 1,"
        " next_attempt_at = now() WHERE stream_id = $1",
        UUID(stream_id),
    )
    woocommerce.requests.clear()
    await synced(client, admin, stream_id)
    assert not [r for r in woocommerce.requests if r.method == "POST"]
    assert len(coupons_of(woocommerce, offer["code"])) == 3


async def test_only_admins_see_and_change_an_offer_and_bad_input_changes_nothing(
    client: httpx.AsyncClient, woocommerce: FakeShop, admin: dict, tokens: dict
) -> None:
    [scarf] = await shop_products(client, woocommerce, admin, ["49.90"])
    stream_id = await live_selling(client, admin, [scarf], ["39.90"])
    url = f"/api/live/streams/{stream_id}/offer"
    for headers, status in (
        ({}, 401),
        (auth(tokens["user"]), 403),
        (auth(tokens["moderator"]), 403),
    ):
        assert (await client.get(url, headers=headers)).status_code == status
        assert (await client.put(url, json={"window_h": 1}, headers=headers)).status_code == status
    before = (await client.get(url, headers=admin)).json()
    assert before["status"] == "pending" and before["window_h"] == 24
    for body in (
        {},
        {"code": "two words"},
        {"code": "x"},
        {"code": "SPRING-2"},  # the name of another live's second code
        {"code": None},
        {"percent_off": 0},
        {"percent_off": 101},
        {"percent_off": "NaN"},
        {"window_h": -1},
        {"window_h": 10_000},
        {"usage_limit": 0},
        {"surprise": True},
        b'{"code": "LIVE\\ud800"}',  # a lone surrogate, as JSON may carry it
    ):
        sent = {"content": body} if isinstance(body, bytes) else {"json": body}
        refused = await client.put(
            url, **sent, headers={**admin, "Content-Type": "application/json"}
        )
        assert refused.status_code == 422, (body, refused.text)
    assert (await client.get(url, headers=admin)).json() == before

    taken = "TAKEN" + uuid4().hex[:6].upper()
    other = await live_selling(client, admin, [scarf], [None])
    assert (
        await client.put(f"/api/live/streams/{other}/offer", json={"code": taken}, headers=admin)
    ).status_code == 200
    clash = await client.put(url, json={"code": taken.lower()}, headers=admin)
    assert clash.status_code == 409
    assert clash.json() == {"detail": "another live's offer has this code"}

    chosen = await client.put(
        url, json={"code": "mine" + uuid4().hex[:4], "percent_off": "15", "usage_limit": 100},
        headers=admin,
    )  # fmt: skip
    assert chosen.status_code == 200
    assert chosen.json()["code"].startswith("MINE") and chosen.json()["percent_off"] == "15.00"
    cards = (await client.get(f"/api/live/streams/{stream_id}/products")).json()
    assert cards[0]["live_price"] == "42.42"  # 15 % off 49.90, the percentage wins


async def test_an_ended_live_takes_no_new_product_and_presents_none(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    created = [
        (
            await client.post(
                "/api/catalog/products",
                json={"name": f"Mug {n}", "price": "9.00", "currency": "EUR"},
                headers=admin,
            )
        ).json()
        for n in range(2)
    ]
    mug, other = created
    stream_id = await live_selling(client, admin, [mug], [None])
    await end(js, env, stream_id, await start(js, env, stream_id))
    url = f"/api/live/streams/{stream_id}/products"

    async def ended() -> bool:
        return bool(
            (await client.post(f"{url}/{mug['id']}/feature", headers=admin)).status_code == 409
        )

    await eventually(ended)
    refused = await client.post(url, json={"product_id": other["id"]}, headers=admin)
    assert refused.status_code == 409
    featured = await client.post(f"{url}/{mug['id']}/feature", headers=admin)
    assert featured.json() == {"detail": "the live has ended: products cannot be added or featured"}
    assert (
        await client.post(url, json={"product_id": mug["id"], "is_featured": True}, headers=admin)
    ).status_code == 409
    # What the replay shows can still change: a product hidden from it.
    hidden = await client.post(url, json={"product_id": mug["id"], "visible": False}, headers=admin)
    assert hidden.status_code == 200
    assert [p["product_id"] for p in (await client.get(url, headers=admin)).json()] == [mug["id"]]


async def test_the_shop_s_new_price_moves_the_coupon_so_the_live_price_still_holds(
    client: httpx.AsyncClient,
    woocommerce: FakeShop,
    js: JetStreamContext,
    env: dict,
    admin: dict,
    db: asyncpg.Connection,
) -> None:
    [scarf] = await shop_products(client, woocommerce, admin, ["49.90"])
    stream_id = await live_selling(client, admin, [scarf], ["39.90"])
    await start(js, env, stream_id)
    offer = await synced(client, admin, stream_id)
    assert woocommerce.store.coupon(offer["code"])["amount"] == "10.00"  # type: ignore[index]

    woocommerce.update(int(scarf["external_id"]), price="54.90")
    await db.execute(
        "UPDATE products SET synced_at = now() - interval '1 hour' WHERE id = $1",
        UUID(scarf["id"]),
    )
    refreshed = await client.get(f"/api/catalog/products/{scarf['id']}", headers=admin)
    assert refreshed.json()["price"] == "54.90"

    async def moved() -> bool:
        coupon = woocommerce.store.coupon(offer["code"])
        return coupon is not None and coupon["amount"] == "15.00"

    await eventually(moved)
    [card] = (await client.get(f"/api/live/streams/{stream_id}/products")).json()
    assert (card["price"], card["live_price"]) == ("54.90", "39.90")


async def test_a_code_comes_back_and_a_later_live_takes_it_once_the_first_is_over(
    client: httpx.AsyncClient, woocommerce: FakeShop, js: JetStreamContext, env: dict, admin: dict
) -> None:
    scarf, belt = await shop_products(client, woocommerce, admin, ["49.90", "30.00"])
    code = "WEEKLY" + uuid4().hex[:4].upper()
    first = await live_selling(client, admin, [scarf, belt], ["39.90", "25.00"])
    url = f"/api/live/streams/{first}/offer"
    assert (await client.put(url, json={"code": code}, headers=admin)).status_code == 200
    await start(js, env, first)
    await synced(client, admin, first)
    assert set(coupons_of(woocommerce, code)) == {code.lower(), f"{code.lower()}-2"}

    # The belt's live price goes, then comes back: its coupon is withdrawn, then made again.
    item = f"/api/live/streams/{first}/products"
    await client.post(item, json={"product_id": belt["id"], "special_price": None}, headers=admin)
    await synced(client, admin, first)
    assert set(coupons_of(woocommerce, code)) == {code.lower()}
    await client.post(
        item, json={"product_id": belt["id"], "special_price": "25.00"}, headers=admin
    )
    await synced(client, admin, first)
    assert set(coupons_of(woocommerce, code)) == {code.lower(), f"{code.lower()}-2"}

    second = await live_selling(client, admin, [scarf], ["44.90"])
    taken = await client.put(
        f"/api/live/streams/{second}/offer", json={"code": code}, headers=admin
    )
    assert taken.status_code == 409  # the first live's offer still holds
    await end(js, env, first, datetime.now(UTC))
    assert (await client.put(url, json={"window_h": 0}, headers=admin)).status_code == 200

    async def over() -> bool:
        offer = (await client.get(url, headers=admin)).json()
        return offer["status"] == "closed" and coupons_of(woocommerce, code) == {}

    await eventually(over)
    again = await client.put(
        f"/api/live/streams/{second}/offer", json={"code": code}, headers=admin
    )
    assert again.status_code == 200, again.text
    await start(js, env, second)
    await synced(client, admin, second)
    [coupon] = coupons_of(woocommerce, code).values()
    assert (coupon["amount"], coupon["product_ids"]) == ("5.00", [int(scarf["external_id"])])
