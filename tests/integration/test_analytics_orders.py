"""Orders come back from the shops and are credited to lives, over real PostgreSQL and NATS:
Shopify's signed webhooks (forged, replayed, late), refunds and cancellations taking revenue
back, credit by cart, offer code and promo code, WooCommerce's UTM attribution and refunds, and
the admins' list of a live's orders with why each counts."""

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa

from chassis.db import create_engine
from contracts.products import CartAdded, LiveOffer, LiveProduct, OfferOpened, ProductAdded
from services.analytics.models import orders, webhook_deliveries
from tests.conftest import auth, eventually
from tests.integration.test_analytics_service import (
    SHOPIFY_OLD_SECRET,
    SHOPIFY_SECRET,
    emit,
    figures,
    live_on_air,
    running_analytics,
    signed,
    woo_order,
)
from tests.support import shopify_orders as shopify

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def analytics(env) -> AsyncIterator[httpx.AsyncClient]:
    async with running_analytics(env) as client:
        yield client


def shop_id() -> int:
    return 10**11 + secrets.randbelow(10**11)


def product(name: str, *, external_id: str | None = None, promo_code: str | None = None):
    return LiveProduct(
        product_id=uuid4(), name=name, price=Decimal("29.00"), currency="EUR",
        external_id=external_id, promo_code=promo_code,
    )  # fmt: skip


async def deliver(
    analytics: httpx.AsyncClient, payload: dict, topic: str, *, secret: str = SHOPIFY_SECRET,
    webhook_id: str | None = None,
) -> dict:  # fmt: skip
    body, headers = shopify.delivery(payload, topic=topic, secret=secret, webhook_id=webhook_id)
    answer = await analytics.post("/webhooks/shopify", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def listed(analytics, tokens, stream_id: UUID, **params) -> dict:
    answer = await analytics.get(
        f"/api/live/streams/{stream_id}/orders", params=params, headers=auth(tokens["admin"])
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def revenue_becomes(analytics, tokens, stream_id: UUID, expected: str) -> dict:
    async def settled():
        data = await figures(analytics, tokens, stream_id)
        return data if data["sales"]["revenue"] == expected else None

    return await eventually(settled)


async def cart_of(js, env, stream_id: UUID, card: LiveProduct, quantity: int = 1) -> UUID:
    """A viewer's cart holding `card`, from the live."""
    cart = uuid4()
    await emit(js, env, stream_id, CartAdded(
        product_id=card.product_id, quantity=quantity, cart_id=cart, session_id="shopper-01",
        unit_price=card.price, currency="EUR"))  # fmt: skip
    return cart


# --- Shopify -------------------------------------------------------------------------------------


async def test_a_shopify_order_is_credited_through_its_cart_attribute_and_variant_id(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    variant = shop_id()
    scarf = product("Silk scarf", external_id=f"gid://shopify/ProductVariant/{variant}")
    await emit(js, env, stream_id, ProductAdded(product=scarf))
    cart = await cart_of(js, env, stream_id, scarf, quantity=2)
    lines = [
        shopify.line_item(shop_id(), title="Scarf (shop's name)", variant_title="Red",
                          price="29.00", quantity=2, variant_id=variant, product_id=shop_id()),
        shopify.line_item(shop_id(), title="Gift wrap", price="2.00", product_id=shop_id()),
    ]  # fmt: skip
    order = shopify.order(
        shop_id(), lines=lines, shipping="4.90", landing_site="/cart/1:2?ref=vitrine",
        note_attributes={"vitrine_live": str(stream_id), "vitrine_cart": str(cart)},
    )  # fmt: skip
    await deliver(analytics, order, "orders/create")

    async def credited():
        data = await figures(analytics, tokens, stream_id)
        rows = [p for p in data["products"]["items"] if p["product_id"] == str(scarf.product_id)]
        return data if data["sales"]["orders"] == 1 and rows and rows[0]["orders"] else None

    data = await eventually(credited)
    assert (data["sales"]["revenue"], data["sales"]["currency"]) == ("60.00", "EUR")
    page = await listed(analytics, tokens, stream_id)
    assert page["next_cursor"] is None
    (item,) = page["items"]
    assert (item["source"], item["order_id"], item["name"]) == (
        "shopify", str(order["id"]), order["name"]
    )  # fmt: skip
    assert (item["via"], item["via_value"], item["status"]) == ("cart", str(cart), "paid")
    lines = [(ln["name"], ln["product_id"], ln["quantity"], ln["amount"]) for ln in item["lines"]]
    assert lines == [
        ("Scarf (shop's name) - Red", str(scarf.product_id), 2, "58.00"),
        ("Gift wrap", None, 1, "2.00"),
    ]
    assert (item["credited_total"], item["refunded"]) == ("60.00", "0.00")


async def test_a_forged_shopify_webhook_is_refused_and_changes_nothing(analytics, env):
    order = shopify.order(shop_id(), lines=[shopify.line_item(1, title="Coat", price="149.00")])
    body, good = shopify.delivery(order, topic="orders/create", secret=SHOPIFY_SECRET)
    engine = create_engine(env["database_url"], schema="analytics")
    counts = [sa.select(sa.func.count()).select_from(t) for t in (orders, webhook_deliveries)]

    async def stored() -> list[int]:
        async with engine.connect() as conn:
            return [await conn.scalar(count) for count in counts]

    before = await stored()
    try:
        for headers, content in (
            ({**good, "X-Shopify-Hmac-Sha256": shopify.signature(body, "not-the-secret")}, body),
            ({**good, "X-Shopify-Hmac-Sha256": "garbage"}, body),
            ({k: v for k, v in good.items() if k != "X-Shopify-Hmac-Sha256"}, body),
            (good, body + b" "),  # signed another body
        ):
            answer = await analytics.post("/webhooks/shopify", content=content, headers=headers)
            assert answer.status_code == 401, answer.text
        assert await stored() == before
        # Signed, but not about orders: acknowledged and left alone.
        ignored = await deliver(analytics, {"id": 1}, "products/update")
        assert ignored == {"status": "ignored", "topic": "products/update"}
        junk, headers = shopify.delivery({"not": "an order"}, topic="orders/paid",
                                         secret=SHOPIFY_SECRET)  # fmt: skip
        refused = await analytics.post("/webhooks/shopify", content=junk, headers=headers)
        assert refused.status_code == 400
        assert await stored() == before
        # While the secret is rotated, the old one still verifies.
        recorded = await deliver(analytics, order, "orders/create", secret=SHOPIFY_OLD_SECRET)
        assert recorded["status"] == "recorded"
    finally:
        await engine.dispose()


async def test_create_paid_then_refund_leaves_the_live_the_revenue_net_of_the_refund(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    code = f"Promo{secrets.token_hex(3)}"
    coat = product("Coat", promo_code=code)
    await emit(js, env, stream_id, ProductAdded(product=coat))
    coat_line = shopify.line_item(shop_id(), title="Coat", price="149.00", discount="14.90")
    hat_line = shopify.line_item(shop_id(), title="Hat", price="25.00", quantity=2)
    order_id = shop_id()

    def version(status: str, at: datetime, refunds=()) -> dict:
        return shopify.order(order_id, lines=[coat_line, hat_line], discount_codes=[code],
                             financial_status=status, created_at=NOW, updated_at=at,
                             refunds=refunds)  # fmt: skip

    created = await deliver(analytics, version("pending", NOW), "orders/create")
    assert created["status"] == "recorded"
    # Credited at once through the promo code, but not paid yet: it brings nothing so far.
    page = await eventually(lambda: _listed_with(analytics, tokens, stream_id, order_id))
    assert (page["via"], page["via_value"], page["credited_total"]) == (
        "promo_code", code.casefold(), "0.00"
    )  # fmt: skip
    await deliver(analytics, version("paid", NOW + timedelta(seconds=1)), "orders/paid")
    await revenue_becomes(analytics, tokens, stream_id, "184.10")  # 134.10 + 2 x 25.00

    refund = shopify.refund(shop_id(), order_id=order_id, lines=[(hat_line["id"], 1, "25.00")])
    webhook_id = str(uuid4())
    for _ in range(2):  # Shopify delivers it again: it counts once
        answer = await deliver(analytics, refund, "refunds/create", webhook_id=webhook_id)
    assert answer == {"status": "duplicate", "webhook_id": webhook_id}
    data = await revenue_becomes(analytics, tokens, stream_id, "159.10")
    assert sum(Decimal(r["revenue"]) for r in data["series"]) == Decimal("159.10")
    # The same refund, sent again as a new delivery and listed in the order's next version,
    # is still taken back once; a late older version changes nothing.
    await deliver(analytics, refund, "refunds/create")
    later = version("partially_refunded", NOW + timedelta(seconds=2), refunds=[refund])
    await deliver(analytics, later, "orders/updated")
    await deliver(analytics, version("pending", NOW), "orders/create")
    item = await _listed_with(analytics, tokens, stream_id, order_id)
    assert (item["status"], item["credited_total"], item["refunded"]) == (
        "partially_refunded", "159.10", "25.00"
    )  # fmt: skip
    assert [(ln["amount"], ln["refunded"]) for ln in item["lines"]] == [
        ("134.10", "0.00"), ("50.00", "25.00")
    ]  # fmt: skip
    assert (await figures(analytics, tokens, stream_id))["sales"]["revenue"] == "159.10"


async def _listed_with(analytics, tokens, stream_id: UUID, order_id: int) -> dict | None:
    items = (await listed(analytics, tokens, stream_id))["items"]
    return next((i for i in items if i["order_id"] == str(order_id)), None)


async def test_a_cancelled_shopify_order_counts_nothing(analytics, js, env, tokens):
    stream_id = await live_on_air(js, env, analytics, tokens)
    lamp = product("Lamp")
    await emit(js, env, stream_id, ProductAdded(product=lamp))
    cart = await cart_of(js, env, stream_id, lamp)
    line = shopify.line_item(shop_id(), title="Lamp", price="80.00")
    order_id = shop_id()
    paid = shopify.order(order_id, lines=[line], note_attributes={"vitrine_cart": str(cart)},
                         created_at=NOW)  # fmt: skip
    await deliver(analytics, paid, "orders/paid")
    await revenue_becomes(analytics, tokens, stream_id, "80.00")
    cancelled = paid | {
        "cancelled_at": (NOW + timedelta(minutes=5)).isoformat(),
        "updated_at": (NOW + timedelta(minutes=5)).isoformat(),
        "financial_status": "voided",
    }
    await deliver(analytics, cancelled, "orders/cancelled")
    data = await revenue_becomes(analytics, tokens, stream_id, "0.00")
    assert data["sales"]["orders"] == 0
    item = await _listed_with(analytics, tokens, stream_id, order_id)
    assert item is not None
    assert (item["status"], item["via"], item["credited_total"]) == ("cancelled", "cart", "0.00")


async def test_an_order_using_a_lives_offer_code_is_credited_to_that_live(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    other_live = await live_on_air(js, env, analytics, tokens)
    code = f"LIVE-{secrets.token_hex(3).upper()}"
    boots = product("Boots", external_id="5501")
    await emit(js, env, stream_id, ProductAdded(product=boots))
    line = shopify.line_item(shop_id(), title="Boots", price="90.00", product_id=5501,
                             discount="9.00")  # fmt: skip
    order_id = shop_id()
    # The order comes before the offer is known: it is credited when the offer arrives.
    shopify_order = shopify.order(order_id, lines=[line], discount_codes=[code])
    assert (await deliver(analytics, shopify_order, "orders/create"))["streams"] == []
    offer = LiveOffer(code=code, percent_off=Decimal("10"), product_ids=[boots.product_id],
                      starts_at=NOW - timedelta(minutes=1))  # fmt: skip
    await emit(js, env, stream_id, OfferOpened(offer=offer))
    # WooCommerce lowercases coupon codes: the same offer credits its orders too.
    body = woo_order(shop_id(), lines=[("Boots", "81.00")], coupons=[code.lower()])
    answer = await analytics.post("/webhooks/woocommerce", content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text

    async def both():
        # The product's card and the offer come by consumers of their own, in either order (in a
        # busy run the card may come long after): an order is credited again when its card does.
        items = (await listed(analytics, tokens, stream_id))["items"]
        matched = all(line["product_id"] for item in items for line in item["lines"])
        return items if len(items) == 2 and matched else None

    woo, shop = await eventually(both, timeout=30)  # newest first
    assert (shop["source"], woo["source"]) == ("shopify", "woocommerce")
    for item in (shop, woo):
        assert (item["via"], item["via_value"]) == ("coupon", code.casefold())
        assert item["lines"][0]["product_id"] == str(boots.product_id)  # by id, then by name
    await revenue_becomes(analytics, tokens, stream_id, "162.00")
    assert (await listed(analytics, tokens, other_live))["items"] == []


# --- WooCommerce ---------------------------------------------------------------------------------


async def test_woocommerce_utm_attribution_credits_the_cart_and_refunds_take_revenue_back(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    bag = product("Bag", external_id="77")
    await emit(js, env, stream_id, ProductAdded(product=bag))
    cart = await cart_of(js, env, stream_id, bag)
    number = shop_id()
    meta = [("_wc_order_attribution_source_type", "utm"),
            ("_wc_order_attribution_utm_source", "vitrine"),
            ("_wc_order_attribution_utm_medium", "live"),
            ("_wc_order_attribution_utm_campaign", str(stream_id)),
            ("_wc_order_attribution_utm_content", str(cart))]  # fmt: skip

    def version(status: str, minutes: int, refunds=()) -> bytes:
        modified = (NOW + timedelta(minutes=minutes)).replace(tzinfo=None).isoformat()
        return woo_order(number, lines=[("Bag", "60.00"), ("Wallet", "40.00")], meta=meta,
                         status=status, total="100.00", date_modified_gmt=modified,
                         refunds=list(refunds))  # fmt: skip

    first = version("processing", 0)
    await analytics.post("/webhooks/woocommerce", content=first, headers=signed(first))
    await revenue_becomes(analytics, tokens, stream_id, "100.00")
    partly = version("processing", 1, refunds=[{"id": 31, "reason": "", "total": "-20.00"}])
    await analytics.post("/webhooks/woocommerce", content=partly, headers=signed(partly))
    await revenue_becomes(analytics, tokens, stream_id, "80.00")
    item = await _listed_with(analytics, tokens, stream_id, number)
    assert (item["via"], item["via_value"]) == ("cart", str(cart))
    assert [(ln["amount"], ln["refunded"]) for ln in item["lines"]] == [
        ("60.00", "12.00"), ("40.00", "8.00")
    ]  # fmt: skip
    refunded = version("refunded", 2, refunds=[{"id": 31, "total": "-20.00"},
                                               {"id": 32, "total": "-80.00"}])  # fmt: skip
    await analytics.post("/webhooks/woocommerce", content=refunded, headers=signed(refunded))
    await revenue_becomes(analytics, tokens, stream_id, "0.00")
    item = await _listed_with(analytics, tokens, stream_id, number)
    assert (item["status"], item["credited_total"], item["refunded"]) == (
        "refunded", "0.00", "100.00"
    )  # fmt: skip


# --- the admins' list ----------------------------------------------------------------------------


async def test_only_admins_list_a_lives_orders_newest_first_a_page_at_a_time(
    analytics, js, env, tokens
):
    stream_id = await live_on_air(js, env, analytics, tokens)
    vase = product("Vase")
    await emit(js, env, stream_id, ProductAdded(product=vase))
    cart = await cart_of(js, env, stream_id, vase)
    placed = [NOW - timedelta(minutes=m) for m in (5, 1, 3, 4, 2)]
    ids = []
    for at in placed:
        ids.append(shop_id())
        line = shopify.line_item(shop_id(), title="Vase", price="30.00")
        order = shopify.order(ids[-1], lines=[line], created_at=at,
                              note_attributes={"vitrine_cart": str(cart)})  # fmt: skip
        await deliver(analytics, order, "orders/create")

    async def all_credited():
        return len((await listed(analytics, tokens, stream_id, limit=100))["items"]) == 5

    await eventually(all_credited)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await listed(analytics, tokens, stream_id, **params)
        seen += [item["order_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    newest_first = [str(i) for _, i in sorted(zip(placed, ids, strict=True), reverse=True)]
    assert (pages, seen) == (3, newest_first)
    assert {i["via"] for i in (await listed(analytics, tokens, stream_id))["items"]} == {"cart"}

    path = f"/api/live/streams/{stream_id}/orders"
    for headers, expected in (
        ({}, 401),
        (auth(tokens["user"]), 403),
        (auth(tokens["moderator"]), 403),
        ({"Authorization": "Bearer forged"}, 401),
        (auth(tokens["admin"]), 200),
    ):
        assert (await analytics.get(path, headers=headers)).status_code == expected
    admin = auth(tokens["admin"])
    for params, expected in (
        ({"limit": 0}, 422), ({"limit": 101}, 422), ({"cursor": "not-ours"}, 400),
        ({"cursor": "WzEsMiwzXQ"}, 400),  # base64 JSON, but not a position
    ):  # fmt: skip
        answer = await analytics.get(path, params=params, headers=admin)
        assert answer.status_code == expected, (params, answer.text)
        assert "detail" in answer.json()
    unknown = await analytics.get(f"/api/live/streams/{uuid4()}/orders", headers=admin)
    assert unknown.status_code == 404
