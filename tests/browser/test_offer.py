"""The control room's offer panel, in a real browser: a live goes on air while the WooCommerce
shop (the local stand-in) is away; the host sees why the offer is not in the shop yet, then sees
it arrive, with the live's code."""

import re
from uuid import uuid4

from playwright.async_api import expect

from tests.browser.conftest import PHONE
from tests.conftest import auth
from tests.support.woocommerce import FakeShop


async def test_the_host_sees_the_offer_wait_for_the_shop_then_hold_there(
    gateway, tokens, new_page, screenshot, woocommerce_shop: FakeShop
) -> None:
    admin, shop = auth(tokens["admin"]), woocommerce_shop
    connected = await gateway.put(
        "/api/catalog/settings",
        json={"source": "woocommerce", "woocommerce": {
            "url": shop.url, "consumer_key": shop.consumer_key,
            "consumer_secret": shop.consumer_secret}},
        headers=admin,
    )  # fmt: skip
    assert connected.status_code == 200, connected.text
    shop.store.coupon_failure = "down"
    try:
        tag = uuid4().hex[:8]
        shop.add(f"Cashmere {tag}", price="120.00")
        [product] = (
            await gateway.get("/api/catalog/products", params={"search": tag}, headers=admin)
        ).json()["items"]
        live_id = (
            await gateway.post("/api/live/streams", json={"title": f"Offer {tag}"}, headers=admin)
        ).json()["id"]
        await gateway.post(
            f"/api/live/streams/{live_id}/products",
            json={"product_id": product["id"], "special_price": "95.00"},
            headers=admin,
        )
        code = f"CASH{tag[:4].upper()}"
        await gateway.put(f"/api/live/streams/{live_id}/offer", json={"code": code}, headers=admin)
        assert (
            await gateway.post(f"/api/live/streams/{live_id}/start", headers=admin)
        ).status_code == 200

        page = await new_page(token=tokens["admin"], locale="fr-FR")
        await page.goto(f"/admin#/live/{live_id}")
        panel = page.locator("#offer")
        # Open once the products service has the live's stream.started (a busy run: seconds).
        await expect(panel.locator("#offer-status")).to_have_text(
            "Active en boutique", timeout=15_000
        )
        await expect(panel.get_by_label("Code")).to_have_value(code)
        await expect(panel.locator("#offer-problem")).to_have_text(
            re.compile(r"^Offre pas encore créée en boutique .*: the shop answered 503$"),
            timeout=15_000,
        )
        await screenshot(page, "offer-shop-away")

        shop.store.coupon_failure = None  # the shop is back: within a retry and a refresh
        await expect(panel.locator("#offer-problem")).to_have_count(0, timeout=20_000)
        await expect(panel.locator("#offer-coupons")).to_contain_text(code)
        await expect(panel.locator("#offer-coupons")).to_contain_text("en boutique")
        assert shop.store.coupon(code) is not None
        await screenshot(page, "offer-in-shop")
        await page.set_viewport_size(PHONE)
        await screenshot(page, "offer-in-shop-phone")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        shop.store.coupon_failure = None
        await gateway.put("/api/catalog/settings", json={"source": "local"}, headers=admin)
