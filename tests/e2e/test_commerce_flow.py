"""A live ends in a sale, through the gateway only: a WooCommerce shop (the local stand-in)
goes live, a viewer adds two products from the live and lands in the shop's checkout with both
at the live price, the paid order comes back and is credited to the live, and the offer closes
by itself when its window ends."""

import ssl
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import orjson

from tests.conftest import auth, eventually
from tests.support.system import WOOCOMMERCE_WEBHOOK_SECRET
from tests.support.woocommerce import FakeShop
from tests.support.woocommerce_checkout import sign


async def _offer(gateway: httpx.AsyncClient, admin: dict, live_id: str) -> dict:
    answer = await gateway.get(f"/api/live/streams/{live_id}/offer", headers=admin)
    assert answer.status_code == 200, answer.text
    offer: dict = answer.json()
    return offer


async def test_a_viewer_pays_two_products_at_the_live_price_and_the_sale_is_the_live_s(
    gateway: httpx.AsyncClient, tokens: dict, woocommerce_shop: FakeShop
) -> None:
    admin, shop = auth(tokens["admin"]), woocommerce_shop
    connected = await gateway.put(
        "/api/catalog/settings",
        json={
            "source": "woocommerce",
            "woocommerce": {
                "url": shop.url,
                "consumer_key": shop.consumer_key,
                "consumer_secret": shop.consumer_secret,
            },
            "offer_window_h": 1,
        },
        headers=admin,
    )
    assert connected.status_code == 200, connected.text
    try:
        await _sell(gateway, admin, shop)
    finally:
        await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)


async def _sell(gateway: httpx.AsyncClient, admin: dict, shop: FakeShop) -> None:
    tag = uuid4().hex[:8]
    shop.add(f"Silk scarf {tag}", price="49.90", stock=20)
    shop.add(f"Leather belt {tag}", price="30.00", stock=20)
    found = await gateway.get("/api/catalog/products", params={"search": tag}, headers=admin)
    assert found.status_code == 200, found.text
    belt, scarf = found.json()["items"]  # by name
    live_id = (
        await gateway.post("/api/live/streams", json={"title": f"Show {tag}"}, headers=admin)
    ).json()["id"]
    for product, live_price in ((scarf, "39.90"), (belt, "25.00")):
        added = await gateway.post(
            f"/api/live/streams/{live_id}/products",
            json={"product_id": product["id"], "special_price": live_price},
            headers=admin,
        )
        assert added.status_code == 201, added.text
    started = await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
    assert started.status_code == 200, started.text

    async def offer_in_shop() -> dict | None:
        offer = await _offer(gateway, admin, live_id)
        ready = offer["status"] == "open" and offer["coupons"]
        return offer if ready and all(c["state"] == "synced" for c in offer["coupons"]) else None

    offer = await eventually(offer_in_shop, timeout=30)
    assert shop.store.coupon(offer["code"]) is not None

    # The viewer, anonymous, fills a cart from the live.
    session_id = "viewer-" + uuid4().hex
    cart: dict = {}
    for product in (scarf, belt):
        answer = await gateway.post(
            "/api/live/cart/items",
            json={"stream_id": live_id, "product_id": product["id"], "quantity": 1,
                  "session_id": session_id},
            headers={"Idempotency-Key": uuid4().hex},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        cart = answer.json()
    assert cart["total"] == "64.90"
    again = await gateway.get("/api/live/cart", params={"session_id": session_id})
    assert again.json()["checkout_url"] == cart["checkout_url"]
    code = parse_qs(urlsplit(cart["checkout_url"]).query)["coupon"][0]

    async def cart_coupon_in_shop() -> bool:
        coupon = shop.store.coupon(code)
        return coupon is not None and coupon["amount"] == "15.00"

    await eventually(cart_coupon_in_shop, timeout=30)

    # The shop's checkout: both lines, the live prices' total, no complaint about the coupon.
    trust = ssl.create_default_context(cafile=shop.ca_bundle)
    async with httpx.AsyncClient(verify=trust) as browser:
        redirect = await browser.get(cart["checkout_url"])
        assert redirect.status_code == 302
        checkout = (await browser.get(shop.url + redirect.headers["location"])).json()
    assert checkout["notices"] == [] and checkout["total"] == "64.90"
    assert sorted(line["name"] for line in checkout["lines"]) == sorted(
        [scarf["name"], belt["name"]]
    )

    # The viewer pays; the shop's webhook brings the order back, credited to the live.
    token = parse_qs(urlsplit(redirect.headers["location"]).query)["session"][0]
    order = shop.store.place_order(token)
    body = orjson.dumps(order)
    delivered = await gateway.post(
        "/webhooks/woocommerce",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Signature": sign(body, WOOCOMMERCE_WEBHOOK_SECRET),
            "X-WC-Webhook-Delivery-ID": uuid4().hex,
        },
    )
    assert delivered.status_code == 200, delivered.text

    async def credited() -> dict | None:
        figures = (
            await gateway.get(f"/api/live/streams/{live_id}/analytics", headers=admin)
        ).json()
        return figures if figures["sales"]["revenue"] == "64.90" else None

    figures = await eventually(credited, timeout=30)
    assert figures["sales"]["orders"] == 1
    orders = await gateway.get(f"/api/live/streams/{live_id}/orders", headers=admin)
    assert orders.status_code == 200, orders.text
    [credited_order] = orders.json()["items"]
    assert credited_order["via"] == "cart"

    # The live ends; with its window over (the admin shortens it) the offer closes by itself.
    assert (
        await gateway.post(f"/api/live/streams/{live_id}/end", headers=admin)
    ).status_code == 200

    async def closes_later() -> bool:
        return bool((await _offer(gateway, admin, live_id))["closes_at"])

    await eventually(closes_later, timeout=30)
    shortened = await gateway.put(
        f"/api/live/streams/{live_id}/offer", json={"window_h": 0}, headers=admin
    )
    assert shortened.status_code == 200, shortened.text

    async def closed() -> bool:
        offer = await _offer(gateway, admin, live_id)
        return offer["status"] == "closed" and shop.store.coupon(offer["code"]) is None

    await eventually(closed, timeout=30)
