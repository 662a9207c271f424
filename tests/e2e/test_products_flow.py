"""The live showcase through the gateway: an admin presents products, viewers follow and buy."""

import asyncio
import secrets

from tests.conftest import auth, on_air
from tests.support.viewer import WsViewer


async def catalog_product(gateway, tokens, name: str, price: str) -> dict:
    created = await gateway.post(
        "/api/catalog/products",
        json={"name": name, "price": price, "currency": "EUR", "stock": 10,
              "images": [f"https://cdn.example/{name}.jpg"]},
        headers=auth(tokens["admin"]),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return created.json()


async def test_featuring_reaches_every_viewer_in_order_and_late_joiners_see_the_right_card(
    gateway, tokens, system
):
    admin = auth(tokens["admin"])
    live_id = (
        await gateway.post("/api/live/streams", json={"title": "Showcase"}, headers=admin)
    ).json()["id"]
    products = [await catalog_product(gateway, tokens, n, p) for n, p in
                (("Scarf", "29.00"), ("Coat", "189.00"), ("Boots", "99.00"))]  # fmt: skip
    viewer = await WsViewer.open(system.url("gateway"), live_id)
    await viewer.next_of("snapshot")

    for product in products:
        added = await gateway.post(
            f"/api/live/streams/{live_id}/products",
            json={"product_id": product["id"]},
            headers=admin,
        )
        assert added.status_code == 201, added.text
    first = await gateway.post(
        f"/api/live/streams/{live_id}/products",
        json={"product_id": products[1]["id"], "is_featured": True, "special_price": "149.00"},
        headers=admin,
    )
    assert first.status_code == 200, first.text
    second = await gateway.post(
        f"/api/live/streams/{live_id}/products/{products[2]['id']}/feature", headers=admin
    )
    assert second.status_code == 200, second.text

    added = [await viewer.next_of("product.added") for _ in products]
    assert [f["data"]["product"]["name"] for f in added] == ["Scarf", "Coat", "Boots"]
    featured = await viewer.next_of("product.featured")
    card = featured["data"]["product"]
    assert (card["name"], card["live_price"], card["image_url"]) == (
        "Coat", "149.00", "https://cdn.example/Coat.jpg"
    )  # fmt: skip
    then = await viewer.next_of("product.featured")
    assert then["data"]["product"]["name"] == "Boots"
    assert then["data"]["previous_product_id"] == products[1]["id"]
    assert then["seq"] > featured["seq"] > added[-1]["seq"]

    late = await WsViewer.open(system.url("gateway"), live_id)
    snapshot = (await late.next_of("snapshot"))["data"]
    assert snapshot["featured_product"]["name"] == "Boots"
    assert [p["name"] for p in snapshot["products"]] == ["Scarf", "Coat", "Boots"]
    assert [p["is_featured"] for p in snapshot["products"]] == [False, False, True]
    aggregated = (await gateway.get(f"/api/live/streams/{live_id}")).json()
    assert aggregated["featured_product"]["product_id"] == products[2]["id"]
    for socket in (viewer, late):
        await socket.close()


async def test_a_viewer_clicks_and_adds_to_cart_once_per_idempotency_key(gateway, tokens, system):
    admin = auth(tokens["admin"])
    live_id = (
        await gateway.post("/api/live/streams", json={"title": "Cart"}, headers=admin)
    ).json()["id"]
    product = await catalog_product(gateway, tokens, "Bag", "59.90")
    await gateway.post(
        f"/api/live/streams/{live_id}/products",
        json={"product_id": product["id"], "special_price": "49.90"},
        headers=admin,
    )
    await on_air(gateway, admin, live_id)
    session = f"viewer-{secrets.token_hex(6)}"
    clicked = await gateway.post(
        f"/api/live/streams/{live_id}/products/{product['id']}/click", json={"session_id": session}
    )
    assert clicked.status_code == 202, clicked.text
    body = {"stream_id": live_id, "product_id": product["id"], "quantity": 2, "session_id": session}
    key = {"Idempotency-Key": secrets.token_hex(8)}
    answers = await asyncio.gather(
        *(gateway.post("/api/live/cart/items", json=body, headers=key) for _ in range(3))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    cart = (await gateway.get(f"/api/live/cart?session_id={session}")).json()
    assert [(line["quantity"], line["unit_price"]) for line in cart["lines"]] == [(2, "49.90")]
    assert cart["total"] == "99.80"


async def test_only_admins_change_a_lives_products_and_unknown_lives_are_404(gateway, tokens):
    admin = auth(tokens["admin"])
    live_id = (
        await gateway.post("/api/live/streams", json={"title": "Guarded"}, headers=admin)
    ).json()["id"]
    product = await catalog_product(gateway, tokens, "Hat", "19.00")
    path = f"/api/live/streams/{live_id}/products"
    for headers, expected in (
        ({}, 401),
        (auth(tokens["user"]), 403),
        (auth(tokens["moderator"]), 403),
    ):
        answer = await gateway.post(path, json={"product_id": product["id"]}, headers=headers)
        assert answer.status_code == expected
    assert (
        await gateway.get("/api/catalog/products", headers=auth(tokens["user"]))
    ).status_code == 403
    unknown = "/api/live/streams/00000000-0000-0000-0000-000000000000/products"
    assert (
        await gateway.post(unknown, json={"product_id": product["id"]}, headers=admin)
    ).status_code == 404
    assert (await gateway.get(unknown)).status_code == 404
    assert (await gateway.get(path)).json() == []
