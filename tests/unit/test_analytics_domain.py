"""The arithmetic of analytics: signatures, the shops' orders and refunds, who gets the credit and
how much of it stays, the per-minute series."""

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.presence import viewer_key
from services.analytics import shopify_orders
from services.analytics.attribution import (
    OfferShown,
    ShownProduct,
    attribute,
    promo_live,
    refunded_by_line,
    same_shop_id,
)
from services.analytics.domain import (
    InvalidOrder,
    counts,
    minute_of,
    per_minute,
    ratio,
    series,
    signature_is_valid,
)
from services.analytics.woocommerce_orders import parse_order
from tests.support import shopify_orders as shopify

T0 = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
LIVE_A, LIVE_B = uuid.uuid4(), uuid.uuid4()
SCARF, COAT = uuid.uuid4(), uuid.uuid4()


def woo_order(**fields) -> dict:
    order = {
        "id": 501, "status": "processing", "currency": "EUR",
        "date_created_gmt": "2025-03-01T18:30:00", "date_modified_gmt": "2025-03-01T18:30:05",
        "coupon_lines": [], "meta_data": [],
        "line_items": [
            {"id": 1, "name": "Scarf", "quantity": 2, "total": "58.00", "meta_data": []},
            {"id": 2, "name": "Socks", "quantity": 1, "total": "9.50", "meta_data": []},
        ],
    }  # fmt: skip
    return order | fields


def test_a_signature_is_base64_hmac_sha256_of_the_raw_body():
    body = b'{"id": 1}'
    good = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    assert signature_is_valid(body=body, signature=good, secret="s3cret")
    assert not signature_is_valid(body=body + b" ", signature=good, secret="s3cret")
    assert not signature_is_valid(body=body, signature=good, secret="other")
    assert not signature_is_valid(body=body, signature=None, secret="s3cret")
    assert not signature_is_valid(body=body, signature=good, secret="")


def test_an_order_keeps_its_cart_session_coupons_and_lines():
    order = parse_order(
        woo_order(
            meta_data=[{"key": "_vitrine_cart_id", "value": "c-1"},
                       {"key": "vitrine_session_id", "value": "sess-12345"}],
            coupon_lines=[{"code": " LIVE20 "}, {"code": "live20"}],
        )
    )  # fmt: skip
    assert (order.order_id, order.cart_id, order.session_id) == ("501", "c-1", "sess-12345")
    assert order.coupons == ("live20",)
    assert order.placed_at == T0 + timedelta(minutes=30)
    assert [(ln.name, ln.quantity, ln.total) for ln in order.lines] == [
        ("Scarf", 2, Decimal("58.00")), ("Socks", 1, Decimal("9.50"))
    ]  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [[], {"status": "processing"}, woo_order(date_created_gmt="yesterday"),
     woo_order(line_items=[{"id": 1, "total": "a lot"}]), woo_order(date_created_gmt=None)],
)  # fmt: skip
def test_what_is_not_an_order_is_refused(payload):
    with pytest.raises(InvalidOrder):
        parse_order(payload)


def test_a_cart_credits_each_line_to_the_live_its_product_came_from():
    order = parse_order(woo_order())
    cart = [
        ShownProduct(LIVE_A, SCARF, "scarf", T0),
        ShownProduct(LIVE_B, COAT, "Coat", T0 + timedelta(minutes=1)),
    ]
    credits = attribute(order, cart=cart)
    assert [(c.stream_id, c.product_id, c.amount, c.via) for c in credits] == [
        (LIVE_A, SCARF, Decimal("58.00"), "cart"),
        (LIVE_B, None, Decimal("9.50"), "cart"),  # unknown product: the live added from last
    ]


def test_a_line_naming_its_vitrine_product_is_matched_by_id():
    line = {"id": 9, "name": "Renamed", "quantity": 1, "total": "10.00",
            "meta_data": [{"key": "vitrine_product_id", "value": str(COAT)}]}  # fmt: skip
    order = parse_order(woo_order(line_items=[line]))
    credits = attribute(order, cart=[ShownProduct(LIVE_A, COAT, "Coat", T0)])
    assert credits[0].product_id == COAT


def test_a_promo_code_credits_the_whole_order_to_the_live_that_showed_it():
    order = parse_order(woo_order(coupon_lines=[{"code": "LIVE20"}]))
    promos = [ShownProduct(LIVE_A, SCARF, "Scarf", T0, code="live20")]
    credits = attribute(order, promos=promos)
    assert {(c.stream_id, c.via, c.reason) for c in credits} == {(LIVE_A, "promo_code", "live20")}
    assert [c.product_id for c in credits] == [SCARF, None]


def test_a_reused_promo_code_goes_to_the_last_live_that_showed_it_before_the_order():
    order = parse_order(woo_order())  # placed at T0 + 30 min
    early = ShownProduct(LIVE_A, SCARF, "Scarf", T0 - timedelta(days=7))
    recent = ShownProduct(LIVE_B, SCARF, "Scarf", T0)
    later = ShownProduct(uuid.uuid4(), SCARF, "Scarf", T0 + timedelta(hours=2))
    assert promo_live(order, [early, recent, later]) == LIVE_B
    assert promo_live(order, [later]) == later.stream_id
    assert promo_live(order, []) is None


def test_an_order_without_cart_or_known_code_is_nobodys():
    assert attribute(parse_order(woo_order())) == []


def test_woocommerce_order_attribution_utm_names_the_cart_and_refunds_are_kept():
    meta = [{"key": "_wc_order_attribution_source_type", "value": "utm"},
            {"key": "_wc_order_attribution_utm_source", "value": "Vitrine"},
            {"key": "_wc_order_attribution_utm_campaign", "value": str(LIVE_A)},
            {"key": "_wc_order_attribution_utm_content", "value": "cart-42"}]  # fmt: skip
    line = {"id": 7, "name": "Scarf - Red", "product_id": 31, "variation_id": 35, "quantity": 1,
            "total": "29.00", "meta_data": []}  # fmt: skip
    refunds = [{"id": 9, "reason": "", "total": "-10.00"}]
    order = parse_order(
        woo_order(meta_data=meta, line_items=[line], number="W-501", total="29.00", refunds=refunds)
    )
    assert (order.source, order.cart_id, order.name) == ("woocommerce", "cart-42", "W-501")
    assert order.lines[0].shop_ids == ("35", "31")  # the variation before its product
    assert [(r.refund_id, r.amount) for r in order.refunds] == [("9", Decimal("10.00"))]
    campaign = [{"key": "_wc_order_attribution_utm_source", "value": "google"},
                {"key": "_wc_order_attribution_utm_content", "value": "x"}]  # fmt: skip
    assert parse_order(woo_order(meta_data=campaign)).cart_id is None  # someone else's campaign


def test_a_shopify_order_reads_its_cart_codes_lines_and_refunds():
    lines = [
        shopify.line_item(11, title="Scarf", variant_title="Red", price="29.00", quantity=2,
                          variant_id=501, product_id=50, discount="5.80"),
        shopify.line_item(12, title="Socks", price="9.50", product_id=60),
    ]  # fmt: skip
    payload = shopify.order(
        450789469, lines=lines, discount_codes=["LIVE-ABC"], shipping="4.90",
        note_attributes={"vitrine_live": str(LIVE_A), "vitrine_cart": "cart-7"},
        refunds=[shopify.refund(900, order_id=450789469, lines=[(12, 1, "9.50")])],
        created_at=T0, financial_status="partially_refunded",
    )  # fmt: skip
    order = shopify_orders.parse_order(payload)
    assert (order.source, order.order_id, order.status) == (
        "shopify",
        "450789469",
        "partially_refunded",
    )
    assert (order.cart_id, order.coupons, order.placed_at) == ("cart-7", ("live-abc",), T0)
    assert order.name.startswith("#") and order.total == Decimal("66.60")
    scarf, socks = order.lines
    # The discount is allocated once, though Shopify states it twice (allocations, total_discount).
    assert (scarf.name, scarf.total, scarf.shop_ids, scarf.aliases) == (
        "Scarf - Red", Decimal("52.20"), ("501", "50"), ("Scarf",)
    )  # fmt: skip
    assert (socks.total, socks.shop_ids) == (Decimal("9.50"), ("60",))
    assert refunded_by_line(order) == {"11": Decimal("0.00"), "12": Decimal("9.50")}
    cancelled = shopify_orders.parse_order({**payload, "cancelled_at": "2025-03-02T10:00:00-05:00"})
    assert cancelled.status == "cancelled" and not counts("shopify", cancelled.status)


def test_a_shopify_cart_is_also_found_in_the_landing_sites_utm():
    payload = shopify.order(1, lines=[], landing_site="/products/scarf?utm_source=vitrine"
                            "&utm_medium=live&utm_campaign=x&utm_content=cart-9")  # fmt: skip
    assert shopify_orders.parse_order(payload).cart_id == "cart-9"
    assert shopify_orders.parse_order(shopify.order(2, lines=[])).cart_id is None


def test_a_shopify_refund_gives_back_its_lines_or_its_money():
    order_id, by_line = shopify_orders.parse_refund(
        shopify.refund(5, order_id=77, lines=[(11, 1, "26.10")])
    )
    assert order_id == "77" and by_line.amount == Decimal("0.00")
    assert [(ln.line_id, ln.quantity, ln.amount) for ln in by_line.lines] == [
        ("11", 1, Decimal("26.10"))
    ]
    _, money_only = shopify_orders.parse_refund(shopify.refund(6, order_id=77, amount="12.00"))
    assert (money_only.lines, money_only.amount) == ((), Decimal("12.00"))
    restock = shopify.refund(7, order_id=77, lines=[(11, 1, "26.10")]) | {"transactions": []}
    _, kept = shopify_orders.parse_refund(restock)  # items back, no money back
    assert kept.lines[0].amount == Decimal("0.00")
    for bad in ({"id": 1}, {"order_id": 77}, {"id": 1, "order_id": 7, "refund_line_items": [{}]}):
        with pytest.raises(InvalidOrder):
            shopify_orders.parse_refund(bad)


def test_order_wide_refunds_are_shared_over_the_lines_by_their_part_of_the_total():
    order = parse_order(woo_order(total="77.50", refunds=[{"id": 1, "total": "-15.50"}]))
    # 58.00 + 9.50 of lines and 10.00 of shipping: a fifth of everything went back.
    assert refunded_by_line(order) == {"1": Decimal("11.60"), "2": Decimal("1.90")}
    whole = parse_order(woo_order(refunds=[{"id": 1, "total": "-500.00"}]))
    assert refunded_by_line(whole) == {"1": Decimal("58.00"), "2": Decimal("9.50")}  # capped
    credits = attribute(order, cart=[ShownProduct(LIVE_A, SCARF, "Scarf", T0)])
    assert [(c.amount, c.refunded) for c in credits] == [
        (Decimal("58.00"), Decimal("11.60")), (Decimal("9.50"), Decimal("1.90"))
    ]  # fmt: skip


def test_revenue_statuses_are_each_shops_own():
    assert counts("woocommerce", "processing") and counts("woocommerce", "on-hold")
    assert counts("shopify", "paid") and counts("shopify", "partially_refunded")
    for source, status in (("woocommerce", "cancelled"), ("woocommerce", "refunded"),
                           ("shopify", "refunded"), ("shopify", "voided"), ("shopify", "pending"),
                           ("shopify", "processing"), ("elsewhere", "paid")):  # fmt: skip
        assert not counts(source, status), (source, status)


def offer(stream_id, code, opened, ends=None, products=()) -> OfferShown:
    return OfferShown(stream_id, code, opened, ends, tuple(products))


def test_the_paths_of_credit_go_cart_then_coupon_then_promo_code_then_session():
    meta = [{"key": "vitrine_cart_id", "value": "c-1"},
            {"key": "vitrine_session_id", "value": "s-1"}]  # fmt: skip
    coupons = [{"code": "OFFER"}, {"code": "PROMO"}]
    order = parse_order(woo_order(coupon_lines=coupons, meta_data=meta))
    cart = [ShownProduct(LIVE_A, SCARF, "Scarf", T0)]
    offers = [offer(LIVE_B, "offer", T0, products=[ShownProduct(LIVE_B, SCARF, "Scarf", T0)])]
    promos = [ShownProduct(uuid.uuid4(), COAT, "Coat", T0, code="promo")]
    session = [ShownProduct(uuid.uuid4(), SCARF, "Scarf", T0)]
    paths = []
    for facts in (
        {"cart": cart, "offers": offers, "promos": promos, "session": session},
        {"offers": offers, "promos": promos, "session": session},
        {"promos": promos, "session": session},
        {"session": session},
    ):
        credits = attribute(order, **facts)
        paths.append((credits[0].via, credits[0].reason, credits[0].stream_id))
    assert paths == [
        ("cart", "c-1", LIVE_A), ("coupon", "offer", LIVE_B),
        ("promo_code", "promo", promos[0].stream_id), ("session", "s-1", session[0].stream_id),
    ]  # fmt: skip
    # Through an offer, the lines are matched among its live's products.
    credits = attribute(order, offers=offers)
    assert [(c.product_id, c.stream_id) for c in credits] == [(SCARF, LIVE_B), (None, LIVE_B)]


def test_a_reused_offer_code_goes_to_the_offer_that_held_when_the_order_was_placed():
    order = parse_order(woo_order())  # placed at T0 + 30 min
    last_week = offer(LIVE_A, "x", T0 - timedelta(days=7), ends=T0 - timedelta(days=6))
    tonight = offer(LIVE_B, "x", T0, ends=T0 + timedelta(hours=1))
    still_open = offer(uuid.uuid4(), "x", T0 - timedelta(days=30))
    later = offer(uuid.uuid4(), "x", T0 + timedelta(hours=2))
    assert attribute(order, offers=[last_week, tonight, later])[0].stream_id == LIVE_B
    # One that never closed held too, but the most recent opening wins.
    assert attribute(order, offers=[still_open, tonight])[0].stream_id == LIVE_B
    assert attribute(order, offers=[last_week, later])[0].stream_id == LIVE_A  # as promo codes


def test_a_line_is_matched_by_the_shops_variant_then_product_id_before_its_name():
    line = {"id": 3, "name": "Renamed in the shop", "product_id": 31, "variation_id": 35,
            "quantity": 1, "total": "10.00", "meta_data": []}  # fmt: skip
    order = parse_order(woo_order(line_items=[line]))
    parent = ShownProduct(LIVE_A, COAT, "Coat", T0, external_id="31")
    variant = ShownProduct(LIVE_A, SCARF, "Scarf", T0, external_id="35")
    assert attribute(order, cart=[parent, variant])[0].product_id == SCARF
    assert attribute(order, cart=[parent])[0].product_id == COAT
    assert same_shop_id("gid://shopify/ProductVariant/808950810", "808950810")
    assert not same_shop_id("gid://shopify/ProductVariant/1", "11")


def test_rates_and_viewer_keys():
    assert ratio(1, 3) == 0.3333 and ratio(5, 0) is None
    assert per_minute(30, T0, T0 + timedelta(minutes=10)) == 3.0
    assert per_minute(30, None, T0) is None
    assert viewer_key(user_id="u1", session_id="s") == "user:u1"
    assert viewer_key(user_id=None, session_id="s") == "session:s"


def test_the_series_has_every_minute_and_carries_the_audience_over_quiet_minutes():
    m = [minute_of(T0 + timedelta(minutes=i)) for i in range(5)]
    rows = series(
        start=T0, end=T0 + timedelta(minutes=4, seconds=10),
        samples=[(T0 + timedelta(seconds=5), 3), (T0 + timedelta(seconds=40), 7),
                 (T0 + timedelta(seconds=50), 5), (T0 + timedelta(minutes=3, seconds=1), 2)],
        messages={m[1]: 4}, clicks={m[2]: 1}, add_to_cart={m[2]: 1},
        revenue={m[4]: Decimal("19.90")},
    )  # fmt: skip
    assert [r.minute for r in rows] == m
    assert [r.viewers for r in rows] == [7, 5, 5, 5, 2]
    assert [r.messages for r in rows] == [0, 4, 0, 0, 0]
    assert rows[4].revenue == Decimal("19.90")


def test_an_empty_live_has_no_series():
    assert series(start=None, end=None, samples=[], messages={}, clicks={},
                  add_to_cart={}, revenue={}) == []  # fmt: skip
