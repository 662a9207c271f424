"""The products service through HTTP, over real PostgreSQL and NATS JetStream."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import nats
import orjson
import pytest
from nats.js import JetStreamContext
from pydantic import BaseModel

from contracts import new_envelope, subject_for
from contracts.streams import Platform, StreamDeleted, StreamStarted, StreamStatus, StreamView
from services.products.app import create_app, migrate
from services.products.settings import ProductsSettings
from tests.conftest import auth, eventually
from tests.support.services import schema_connection, serving


@pytest.fixture(scope="module")
async def settings(env: dict) -> ProductsSettings:
    settings = ProductsSettings(**env)
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


async def new_product(client: httpx.AsyncClient, admin: dict, **fields: Any) -> dict:
    body = {"name": f"Scarf {uuid4().hex[:6]}", "price": "19.90", "currency": "EUR", **fields}
    response = await client.post("/api/catalog/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def add_to_live(
    client: httpx.AsyncClient, admin: dict, stream_id: str, product_id: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"/api/live/streams/{stream_id}/products",
        json={"product_id": product_id, **fields},
        headers=admin,
    )


async def live_with_products(
    client: httpx.AsyncClient, admin: dict, count: int
) -> tuple[str, list[dict]]:
    stream_id = str(uuid4())
    products = [await new_product(client, admin) for _ in range(count)]
    for product in products:
        assert (await add_to_live(client, admin, stream_id, product["id"])).status_code == 201
    return stream_id, products


async def events_of(
    js: JetStreamContext, env: dict, stream_id: str, *, count: int, kind: str = ">"
) -> list[dict]:
    """The first `count` events of a live (of `kind`), waiting for them, then making sure no
    more arrive."""
    sub = await js.subscribe(
        f"{env['subject_root']}.{stream_id}.{kind}",
        stream=env["jetstream_stream"],
        ordered_consumer=True,
    )
    received: list[dict] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(received) < count and loop.time() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                received.append(orjson.loads((await sub.next_msg(timeout=0.5)).data))
        with contextlib.suppress(nats.errors.TimeoutError):
            received.append(orjson.loads((await sub.next_msg(timeout=0.5)).data))
    finally:
        await sub.unsubscribe()
    return received


def types_of(events: list[dict]) -> list[str]:
    return [event["type"] for event in events]


async def publish_stream_event(
    js: JetStreamContext, env: dict, stream_id: str, payload: BaseModel
) -> None:
    """What the streams service would publish."""
    envelope = new_envelope(payload, stream_id=UUID(stream_id), producer="streams")
    await js.publish(
        subject_for(stream_id, envelope.type, root=env["subject_root"]),
        envelope.model_dump_json().encode(),
        stream=env["jetstream_stream"],
        headers={"Nats-Msg-Id": str(envelope.id)},
    )


async def on_air(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict, stream_id: str
) -> None:
    """The live starts, as streams would say, and the products service has heard it (its offer
    is open): carts are priced at the live price from then on."""
    started = StreamStarted(stream=stream_view(stream_id, StreamStatus.LIVE, datetime.now(UTC)))
    await publish_stream_event(js, env, stream_id, started)

    async def heard() -> bool:
        offer = await client.get(f"/api/live/streams/{stream_id}/offer", headers=admin)
        return bool(offer.json()["status"] == "open")

    await eventually(heard)


def stream_view(stream_id: str, status: StreamStatus, started_at: datetime | None) -> StreamView:
    now = datetime.now(UTC)
    return StreamView(
        id=UUID(stream_id),
        title="Spring collection",
        status=status,
        platform=Platform.NGINX_RTMP,
        started_at=started_at,
        created_at=now,
        updated_at=now,
    )


# --- catalog -------------------------------------------------------------------------------------


async def test_the_local_catalog_is_created_searched_paged_changed_and_deleted(
    client: httpx.AsyncClient, admin: dict
) -> None:
    tag = uuid4().hex[:8]
    created = [
        await new_product(
            client,
            admin,
            name=f"{tag} {name}",
            sku=f"{tag}-{n}",
            description="Soft wool",
            images=["https://cdn.example/a.jpg", "https://cdn.example/b.jpg"],
            stock=5,
            product_url="https://shop.example/p/1",
        )
        for n, name in enumerate(("Cap", "Boots", "Apron"))
    ]
    assert created[0]["source"] == "local"
    assert created[0]["price"] == "19.90"
    assert created[0]["images"] == ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg"]
    assert created[0]["external_id"] is None

    found = (
        await client.get("/api/catalog/products", params={"search": tag}, headers=admin)
    ).json()
    assert found["total"] == 3
    assert [p["name"] for p in found["items"]] == [f"{tag} Apron", f"{tag} Boots", f"{tag} Cap"]
    by_sku = await client.get("/api/catalog/products", params={"search": f"{tag}-1"}, headers=admin)
    assert [p["name"] for p in by_sku.json()["items"]] == [f"{tag} Boots"]
    first = await client.get(
        "/api/catalog/products", params={"search": tag, "limit": 2}, headers=admin
    )
    following = {"search": tag, "limit": 2, "cursor": first.json()["next_cursor"]}
    page = await client.get("/api/catalog/products", params=following, headers=admin)
    assert page.json()["total"] == 3 and page.json()["next_cursor"] is None
    assert [p["name"] for p in page.json()["items"]] == [f"{tag} Cap"]
    old_way = {"search": tag, "limit": 2, "offset": 2}  # kept for one release
    assert (await client.get("/api/catalog/products", params=old_way, headers=admin)).json() == (
        page.json()
    )
    for forged in ("nope", "Wy0xXQ", "WzEwMDAwMDAwXQ"):  # garbage, [-1], [10000000]
        refused = await client.get(
            "/api/catalog/products", params={"search": tag, "cursor": forged}, headers=admin
        )
        assert refused.status_code == 400, forged
    wildcard = await client.get("/api/catalog/products", params={"search": "%"}, headers=admin)
    assert wildcard.json()["total"] == 0

    url = f"/api/catalog/products/{created[0]['id']}"
    assert (await client.get(url, headers=admin)).json()["name"] == f"{tag} Cap"
    changed = await client.put(url, json={"price": "25", "stock": None}, headers=admin)
    assert changed.status_code == 200
    assert changed.json()["price"] == "25.00"
    assert changed.json()["stock"] is None
    assert changed.json()["name"] == f"{tag} Cap"

    taken = await client.post(
        "/api/catalog/products",
        json={"name": "Twin", "price": "1", "currency": "EUR", "sku": f"{tag}-1"},
        headers=admin,
    )
    assert taken.status_code == 409
    assert (await client.put(url, json={"sku": f"{tag}-2"}, headers=admin)).status_code == 409

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404


# --- a live's showcase ---------------------------------------------------------------------------


async def test_admin_adds_three_products_and_features_one_then_another_events_in_order(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, db: asyncpg.Connection, admin: dict
) -> None:
    stream_id, (a, b, c) = await live_with_products(client, admin, 3)
    url = f"/api/live/streams/{stream_id}"
    updated = await add_to_live(client, admin, stream_id, c["id"], special_price="9.90")
    assert updated.status_code == 200
    assert updated.json()["live_price"] == "9.90"

    first = await client.post(f"{url}/products/{a['id']}/feature", headers=admin)
    assert first.status_code == 200
    assert first.json()["is_featured"] is True
    second = await client.post(f"{url}/products/{b['id']}/feature", headers=admin)
    assert second.status_code == 200
    # Featuring the featured product again changes nothing.
    assert (
        await client.post(f"{url}/products/{b['id']}/feature", headers=admin)
    ).status_code == 200

    listed = (await client.get(f"{url}/products")).json()
    assert [p["product_id"] for p in listed] == [a["id"], b["id"], c["id"]]
    assert [p["position"] for p in listed] == [0, 1, 2]
    assert [p["is_featured"] for p in listed] == [False, True, False]
    assert listed[0]["name"] == a["name"] and listed[0]["price"] == "19.90"
    featured = await client.get(f"{url}/featured")
    assert featured.status_code == 200 and featured.json()["product_id"] == b["id"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM live_stream_products WHERE stream_id = $1 AND is_featured",
            UUID(stream_id),
        )
        == 1
    )

    events = await events_of(js, env, stream_id, count=6)
    assert types_of(events) == [
        "product.added",
        "product.added",
        "product.added",
        "product.updated",
        "product.featured",
        "product.featured",
    ]
    assert all(e["producer"] == "products" and e["stream_id"] == stream_id for e in events)
    assert [e["data"]["product"]["product_id"] for e in events[:3]] == [a["id"], b["id"], c["id"]]
    assert events[4]["data"]["product"]["product_id"] == a["id"]
    assert events[4]["data"]["previous_product_id"] is None
    assert events[5]["data"]["product"]["product_id"] == b["id"]
    assert events[5]["data"]["previous_product_id"] == a["id"]
    card = events[5]["data"]["product"]
    assert card["is_featured"] is True and card["currency"] == "EUR" and card["price"] == "19.90"

    history = await client.get(f"{url}/featured-history", headers=admin)
    assert history.status_code == 200
    periods = history.json()
    assert [p["product_id"] for p in periods] == [a["id"], b["id"]]
    assert periods[0]["unfeatured_at"] is not None and periods[1]["unfeatured_at"] is None
    assert periods[0]["from_offset_s"] is None  # the live has not started

    assert (await client.delete(f"{url}/featured", headers=admin)).status_code == 204
    assert (await client.get(f"{url}/featured")).status_code == 404
    assert (await client.delete(f"{url}/featured", headers=admin)).status_code == 204
    events = await events_of(js, env, stream_id, count=7)
    assert events[-1]["type"] == "product.unfeatured"
    assert events[-1]["data"]["product_id"] == b["id"]


async def test_twenty_admins_featuring_at_once_leave_exactly_one_featured_product(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, db: asyncpg.Connection, admin: dict
) -> None:
    stream_id, products = await live_with_products(client, admin, 20)
    responses = await asyncio.gather(
        *(
            client.post(f"/api/live/streams/{stream_id}/products/{p['id']}/feature", headers=admin)
            for p in products
        )
    )
    assert [r.status_code for r in responses] == [200] * 20
    rows = await db.fetch(
        "SELECT product_id FROM live_stream_products WHERE stream_id = $1 AND is_featured",
        UUID(stream_id),
    )
    assert len(rows) == 1
    listed = (await client.get(f"/api/live/streams/{stream_id}/products")).json()
    assert sum(p["is_featured"] for p in listed) == 1

    events = await events_of(js, env, stream_id, count=40)
    featured = [e["data"] for e in events if e["type"] == "product.featured"]
    assert len(featured) == 20
    # Each one took over from the one before: a single, unbroken chain.
    previous = None
    for data in featured:
        assert data["previous_product_id"] == previous
        previous = data["product"]["product_id"]
    assert previous == str(rows[0]["product_id"])
    open_periods = await db.fetchval(
        "SELECT count(*) FROM featured_history WHERE stream_id = $1 AND unfeatured_at IS NULL",
        UUID(stream_id),
    )
    assert open_periods == 1
    # The database itself refuses a second featured product, whoever writes.
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "UPDATE live_stream_products SET is_featured = true WHERE stream_id = $1",
            UUID(stream_id),
        )


async def test_promo_codes_stay_hidden_from_viewers_until_the_live_starts(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, tokens: dict, admin: dict
) -> None:
    stream_id = str(uuid4())
    product = await new_product(client, admin)
    added = await add_to_live(client, admin, stream_id, product["id"], promo_code="LIVE10")
    assert added.status_code == 201
    assert added.json()["promo_code"] == "LIVE10"  # the admin's own answer
    url = f"/api/live/streams/{stream_id}/products"
    for headers in ({}, auth(tokens["user"]), auth(tokens["moderator"])):
        assert [p["promo_code"] for p in (await client.get(url, headers=headers)).json()] == [None]
    assert (await client.get(url, headers=admin)).json()[0]["promo_code"] == "LIVE10"
    [event] = await events_of(js, env, stream_id, count=1, kind="product.>")
    assert event["data"]["product"]["promo_code"] is None

    started_at = datetime.now(UTC) - timedelta(seconds=60)
    await publish_stream_event(
        js,
        env,
        stream_id,
        StreamStarted(stream=stream_view(stream_id, StreamStatus.LIVE, started_at)),
    )

    async def revealed() -> bool:
        listed = (await client.get(url)).json()
        return listed[0]["promo_code"] == "LIVE10"

    await eventually(revealed)
    events = await events_of(js, env, stream_id, count=2, kind="product.>")
    assert types_of(events) == ["product.added", "product.updated"]
    assert events[1]["data"]["product"]["promo_code"] == "LIVE10"

    # The featured history counts from the live's start.
    feature = await client.post(f"{url}/{product['id']}/feature", headers=admin)
    assert feature.status_code == 200
    [period] = (
        await client.get(f"/api/live/streams/{stream_id}/featured-history", headers=admin)
    ).json()
    assert 59 <= period["from_offset_s"] <= 75


async def test_a_deleted_live_loses_its_products(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, [product] = await live_with_products(client, admin, 1)
    await publish_stream_event(js, env, stream_id, StreamDeleted(stream_id=UUID(stream_id)))

    async def gone() -> bool:
        return (await client.get(f"/api/live/streams/{stream_id}/products")).status_code == 404

    await eventually(gone)
    again = await add_to_live(client, admin, stream_id, product["id"])
    assert again.status_code == 404


async def test_hidden_products_are_for_admins_only(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id = str(uuid4())
    product = await new_product(client, admin)
    hidden = await add_to_live(client, admin, stream_id, product["id"], visible=False)
    assert hidden.status_code == 201 and hidden.json()["visible"] is False
    url = f"/api/live/streams/{stream_id}"
    assert (await client.get(f"{url}/products")).json() == []
    assert [p["visible"] for p in (await client.get(f"{url}/products", headers=admin)).json()] == [
        False
    ]
    refused = await client.post(f"{url}/products/{product['id']}/feature", headers=admin)
    assert refused.status_code == 409
    click = await client.post(
        f"{url}/products/{product['id']}/click", json={"session_id": "session-0000000001"}
    )
    assert click.status_code == 404

    shown = await add_to_live(
        client, admin, stream_id, product["id"], visible=True, is_featured=True
    )
    assert shown.status_code == 200 and shown.json()["is_featured"] is True
    hid_again = await add_to_live(client, admin, stream_id, product["id"], visible=False)
    assert hid_again.json()["is_featured"] is False
    events = await events_of(js, env, stream_id, count=4)
    assert types_of(events) == [
        "product.added",
        "product.featured",
        "product.unfeatured",
        "product.removed",
    ]


async def test_reordering_removing_and_stock_changes_reach_the_viewers(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, (a, b, c) = await live_with_products(client, admin, 3)
    other_live = str(uuid4())
    assert (await add_to_live(client, admin, other_live, a["id"])).status_code == 201
    url = f"/api/live/streams/{stream_id}/products"

    order = await client.put(
        f"{url}/order", json={"product_ids": [c["id"], a["id"], b["id"]]}, headers=admin
    )
    assert order.status_code == 200
    assert [p["product_id"] for p in order.json()] == [c["id"], a["id"], b["id"]]
    assert [p["product_id"] for p in (await client.get(url)).json()] == [c["id"], a["id"], b["id"]]
    for wrong in ([c["id"], a["id"]], [c["id"], a["id"], b["id"], b["id"]], [str(uuid4())]):
        response = await client.put(f"{url}/order", json={"product_ids": wrong}, headers=admin)
        assert response.status_code == 422

    stock = await client.put(f"/api/catalog/products/{a['id']}", json={"stock": 3}, headers=admin)
    assert stock.status_code == 200
    assert (await client.get(url)).json()[1]["stock"] == 3

    await client.post(f"{url}/{c['id']}/feature", headers=admin)
    assert (await client.delete(f"{url}/{c['id']}", headers=admin)).status_code == 204
    assert (await client.delete(f"{url}/{c['id']}", headers=admin)).status_code == 404
    assert [p["product_id"] for p in (await client.get(url)).json()] == [a["id"], b["id"]]

    events = await events_of(js, env, stream_id, count=10)
    assert types_of(events)[3:] == [
        "product.updated",  # c moves to 0
        "product.updated",  # a moves to 1
        "product.updated",  # b moves to 2
        "product.updated",  # a's stock
        "product.featured",
        "product.unfeatured",
        "product.removed",
    ]
    assert events[6]["data"]["product"]["stock"] == 3
    elsewhere = await events_of(js, env, other_live, count=2)
    assert types_of(elsewhere) == ["product.added", "product.updated"]
    assert elsewhere[1]["data"]["product"]["stock"] == 3

    # A product deleted from the catalog leaves every live.
    assert (
        await client.delete(f"/api/catalog/products/{a['id']}", headers=admin)
    ).status_code == 204
    assert [p["product_id"] for p in (await client.get(url)).json()] == [b["id"]]
    assert (await client.get(f"/api/live/streams/{other_live}/products")).json() == []


# --- viewers -------------------------------------------------------------------------------------


async def test_a_click_is_recorded_for_a_product_of_the_live_only(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, tokens: dict, admin: dict
) -> None:
    stream_id, [product] = await live_with_products(client, admin, 1)
    _, [elsewhere] = await live_with_products(client, admin, 1)
    url = f"/api/live/streams/{stream_id}/products"
    anonymous = await client.post(
        f"{url}/{product['id']}/click", json={"session_id": "session-000000000a"}
    )
    assert anonymous.status_code == 202
    signed_in = await client.post(
        f"{url}/{product['id']}/click",
        json={"session_id": "session-000000000b"},
        headers=auth(tokens["user"]),
    )
    assert signed_in.status_code == 202
    for product_id in (elsewhere["id"], str(uuid4())):
        response = await client.post(
            f"{url}/{product_id}/click", json={"session_id": "session-000000000a"}
        )
        assert response.status_code == 404
    clicks = await events_of(js, env, stream_id, count=2, kind="product.clicked")
    assert [e["data"] for e in clicks] == [
        {"product_id": product["id"], "session_id": "session-000000000a", "user_id": None},
        {"product_id": product["id"], "session_id": "session-000000000b", "user_id": "user-1"},
    ]


async def test_a_retried_add_to_cart_adds_once_and_answers_the_same(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, tokens: dict, admin: dict
) -> None:
    stream_id, [product] = await live_with_products(client, admin, 1)
    await add_to_live(client, admin, stream_id, product["id"], special_price="15.00")
    await on_air(client, js, env, admin, stream_id)
    session_id = "sess-" + uuid4().hex
    body = {
        "stream_id": stream_id,
        "product_id": product["id"],
        "quantity": 2,
        "session_id": session_id,
    }

    first = await client.post("/api/live/cart/items", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    retry = await client.post("/api/live/cart/items", json=body, headers={"Idempotency-Key": "k1"})
    assert retry.status_code == 201
    assert retry.json() == first.json()
    cart = first.json()
    assert cart["lines"] == [
        {
            "product_id": product["id"],
            "name": product["name"],
            "quantity": 2,
            "unit_price": "15.00",
            "currency": "EUR",
            "stream_id": stream_id,
            "image_url": None,
            "regular_price": "19.90",
            "stock": None,
        }
    ]
    assert cart["total"] == "30.00" and cart["currency"] == "EUR" and cart["items"] == 2

    more = await client.post("/api/live/cart/items", json=body, headers={"Idempotency-Key": "k2"})
    assert more.json()["lines"][0]["quantity"] == 4
    assert more.json()["id"] == cart["id"]
    reused = await client.post(
        "/api/live/cart/items", json={**body, "quantity": 1}, headers={"Idempotency-Key": "k1"}
    )
    assert reused.status_code == 422
    got = await client.get("/api/live/cart", params={"session_id": session_id})
    assert got.json() == more.json()

    # Concurrent retries of one request still add once.
    racing = await asyncio.gather(
        *(
            client.post("/api/live/cart/items", json=body, headers={"Idempotency-Key": "k3"})
            for _ in range(5)
        )
    )
    assert len({r.text for r in racing}) == 1
    assert racing[0].json()["lines"][0]["quantity"] == 6

    # A signed-in user's cart is theirs, whatever the session.
    user = auth(tokens["user"])
    mine = await client.post("/api/live/cart/items", json={**body, "quantity": 1}, headers=user)
    assert mine.status_code == 201 and mine.json()["id"] != cart["id"]
    got = await client.get("/api/live/cart", headers=user)
    assert got.json()["id"] == mine.json()["id"]
    assert (await client.get("/api/live/cart")).status_code == 422
    empty = await client.get("/api/live/cart", params={"session_id": "nobody-" + uuid4().hex})
    assert empty.json() == {
        "id": None,
        "lines": [],
        "items": 0,
        "total": "0.00",
        "currency": None,
        "checkout_url": None,
    }

    events = await events_of(js, env, stream_id, count=4, kind="cart.added")
    assert [e["data"]["quantity"] for e in events] == [2, 2, 2, 1]
    assert events[0]["data"]["session_id"] == session_id and events[0]["data"]["user_id"] is None
    assert events[0]["data"]["unit_price"] == "15.00"
    assert events[3]["data"]["user_id"] == "user-1"


async def test_the_cart_refuses_what_it_cannot_hold(client: httpx.AsyncClient, admin: dict) -> None:
    stream_id, [scarce, dollars] = await live_with_products(client, admin, 2)
    await client.put(f"/api/catalog/products/{scarce['id']}", json={"stock": 2}, headers=admin)
    await client.put(
        f"/api/catalog/products/{dollars['id']}", json={"currency": "USD"}, headers=admin
    )
    session_id = "sess-" + uuid4().hex
    line = {"stream_id": stream_id, "session_id": session_id}
    add = lambda **f: client.post("/api/live/cart/items", json={**line, **f})  # noqa: E731

    assert (await add(product_id=scarce["id"], quantity=3)).status_code == 409
    assert (await add(product_id=scarce["id"], quantity=2)).status_code == 201
    assert (await add(product_id=scarce["id"], quantity=1)).status_code == 409
    assert (await add(product_id=dollars["id"], quantity=1)).status_code == 409
    _, [elsewhere] = await live_with_products(client, admin, 1)
    assert (await add(product_id=elsewhere["id"], quantity=1)).status_code == 404
    cart = (await client.get("/api/live/cart", params={"session_id": session_id})).json()
    assert [ln["quantity"] for ln in cart["lines"]] == [2]


async def test_the_checkout_link_follows_the_configured_template(
    client: httpx.AsyncClient, admin: dict
) -> None:
    stream_id, [product] = await live_with_products(client, admin, 1)
    put = await client.put(
        "/api/catalog/settings",
        json={
            "source": "local",
            "checkout_url_template": "https://shop.example/checkout?items={items}",
        },
        headers=admin,
    )
    assert put.status_code == 200, put.text
    try:
        cart = await client.post(
            "/api/live/cart/items",
            json={
                "stream_id": stream_id,
                "product_id": product["id"],
                "quantity": 3,
                "session_id": "s-" + uuid4().hex,
            },
        )
        assert (
            cart.json()["checkout_url"] == f"https://shop.example/checkout?items={product['id']}:3"
        )
    finally:
        await client.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


# --- who may do what -----------------------------------------------------------------------------


async def test_only_admins_change_a_live_products_or_read_the_catalog(
    client: httpx.AsyncClient, tokens: dict
) -> None:
    admin = auth(tokens["admin"])
    stream_id, [product] = await live_with_products(client, admin, 1)
    live = f"/api/live/streams/{stream_id}"
    pid = product["id"]
    # In an order an admin may run them all one after the other.
    admin_only: list[tuple[str, str, Any]] = [
        ("GET", "/api/catalog/products", None),
        ("POST", "/api/catalog/products", {"name": "x", "price": "1", "currency": "EUR"}),
        ("GET", f"/api/catalog/products/{pid}", None),
        ("PUT", f"/api/catalog/products/{pid}", {"stock": 1}),
        ("GET", "/api/catalog/settings", None),
        ("PUT", "/api/catalog/settings", {"source": "local"}),
        ("POST", f"{live}/products", {"product_id": pid, "is_featured": True}),
        ("PUT", f"{live}/products/order", {"product_ids": [pid]}),
        ("POST", f"{live}/products/{pid}/feature", None),
        ("DELETE", f"{live}/featured", None),
        ("GET", f"{live}/featured-history", None),
        ("DELETE", f"{live}/products/{pid}", None),
        ("DELETE", f"/api/catalog/products/{pid}", None),
    ]
    callers = {
        "anonymous": ({}, 401),
        "user": (auth(tokens["user"]), 403),
        "moderator": (auth(tokens["moderator"]), 403),
        "bad token": (auth("not.a.jwt"), 401),
    }
    for method, url, body in admin_only:
        for who, (headers, expected) in callers.items():
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == expected, (who, method, url, response.text)
    assert (await client.get(f"{live}/products", headers=admin)).json()[0]["is_featured"] is False

    anyone = [
        ("GET", f"{live}/products", None, 200),
        ("GET", f"{live}/featured", None, 404),
        ("POST", f"{live}/products/{pid}/click", {"session_id": "session-0000000001"}, 202),
        ("GET", "/api/live/cart", None, 200),
    ]
    for method, url, body, expected in anyone:
        for headers in ({}, auth(tokens["user"]), admin):
            params = {"session_id": "session-0000000001"} if url.endswith("/cart") else None
            response = await client.request(method, url, json=body, headers=headers, params=params)
            assert response.status_code == expected, (method, url, response.text)

    # And an admin may do every one of them.
    for method, url, body in admin_only:
        response = await client.request(method, url, json=body, headers=admin)
        assert response.status_code < 300, (method, url, response.text)


async def test_bad_input_is_refused_with_4xx_and_changes_nothing(
    client: httpx.AsyncClient, js: JetStreamContext, env: dict, admin: dict
) -> None:
    stream_id, [product, other] = await live_with_products(client, admin, 2)
    _, [elsewhere] = await live_with_products(client, admin, 1)
    live = f"/api/live/streams/{stream_id}"
    pid = product["id"]
    cart = {
        "stream_id": stream_id,
        "product_id": pid,
        "quantity": 1,
        "session_id": "session-bad-000000",
    }
    good = {"name": "Scarf", "price": "1.00", "currency": "EUR"}
    cases: list[tuple[str, str, Any, dict, int]] = [
        ("POST", f"{live}/products", {"product_id": str(uuid4())}, admin, 404),
        ("POST", f"{live}/products", {"product_id": "nope"}, admin, 422),
        ("POST", f"{live}/products", {"product_id": pid, "special_price": "-1"}, admin, 422),
        ("POST", f"{live}/products", {"product_id": pid, "promo_code": "p" * 65}, admin, 422),
        ("POST", f"{live}/products", {"product_id": pid, "position": -1}, admin, 422),
        ("POST", f"{live}/products", {"product_id": pid, "extra": 1}, admin, 422),
        ("POST", "/api/live/streams/not-a-uuid/products", {"product_id": pid}, admin, 422),
        ("DELETE", f"{live}/products/{elsewhere['id']}", None, admin, 404),
        ("DELETE", f"{live}/products/123", None, admin, 422),
        ("POST", f"{live}/products/{elsewhere['id']}/feature", None, admin, 404),
        ("POST", f"{live}/products/{uuid4()}/feature", None, admin, 404),
        ("POST", f"{live}/products/{pid}/click", {"session_id": ""}, {}, 422),
        ("POST", f"{live}/products/{pid}/click", {}, {}, 422),
        (
            "POST",
            f"{live}/products/{elsewhere['id']}/click",
            {"session_id": "session-0000000002"},
            {},
            404,
        ),
        ("POST", "/api/live/cart/items", {**cart, "quantity": 0}, {}, 422),
        ("POST", "/api/live/cart/items", {**cart, "quantity": -3}, {}, 422),
        ("POST", "/api/live/cart/items", {**cart, "quantity": 100}, {}, 422),
        ("POST", "/api/live/cart/items", {**cart, "product_id": elsewhere["id"]}, {}, 404),
        ("POST", "/api/live/cart/items", {**cart, "product_id": str(uuid4())}, {}, 404),
        ("POST", "/api/live/cart/items", {**cart, "stream_id": "x"}, {}, 422),
        ("POST", "/api/live/cart/items", cart, {"Idempotency-Key": "k" * 129}, 422),
        ("POST", "/api/catalog/products", {**good, "price": "-0.01"}, admin, 422),
        ("POST", "/api/catalog/products", {**good, "name": "n" * 201}, admin, 422),
        ("POST", "/api/catalog/products", {**good, "description": "d" * 5001}, admin, 422),
        (
            "POST",
            "/api/catalog/products",
            {**good, "images": ["https://a.b/c.jpg"] * 21},
            admin,
            422,
        ),
        ("POST", "/api/catalog/products", {**good, "currency": "euro"}, admin, 422),
        ("POST", "/api/catalog/products", {**good, "stock": -1}, admin, 422),
        ("PUT", f"/api/catalog/products/{uuid4()}", {"stock": 1}, admin, 404),
        ("PUT", f"/api/catalog/products/{pid}", {"price": "-5"}, admin, 422),
        ("GET", "/api/catalog/products?limit=1000", None, admin, 422),
        ("GET", "/api/catalog/products?offset=-1", None, admin, 422),
        ("PUT", "/api/catalog/settings", {"source": "woocommerce"}, admin, 422),
        ("PUT", "/api/catalog/settings", {"source": "shopify"}, admin, 422),
        (
            "PUT",
            "/api/catalog/settings",
            {"source": "local", "checkout_url_template": "https://shop.example/checkout"},
            admin,
            422,
        ),
        (
            "PUT",
            "/api/catalog/settings",
            {
                "source": "woocommerce",
                "woocommerce": {
                    "url": "http://shop.example",
                    "consumer_key": "ck",
                    "consumer_secret": "cs",
                },
            },
            admin,
            422,
        ),
    ]
    before_live = (await client.get(f"{live}/products", headers=admin)).json()
    before_product = (await client.get(f"/api/catalog/products/{pid}", headers=admin)).json()
    before_settings = (await client.get("/api/catalog/settings", headers=admin)).json()
    for method, url, body, headers, expected in cases:
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == expected, (method, url, body, response.text)
        assert "detail" in response.json()
    assert (await client.get(f"{live}/products", headers=admin)).json() == before_live
    assert (
        await client.get(f"/api/catalog/products/{pid}", headers=admin)
    ).json() == before_product
    assert (await client.get("/api/catalog/settings", headers=admin)).json() == before_settings
    empty = await client.get("/api/live/cart", params={"session_id": "session-bad-000000"})
    assert empty.json()["lines"] == []
    assert types_of(await events_of(js, env, stream_id, count=2)) == ["product.added"] * 2
    assert other["id"] in [p["product_id"] for p in before_live]


async def test_the_service_is_ready_when_database_and_nats_answer(
    client: httpx.AsyncClient,
) -> None:
    ready = await eventually(lambda: client.get("/readyz"))
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "nats": True}
