"""The arithmetic of analytics: signatures, orders, who gets the credit, the per-minute series."""

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.analytics.domain import (
    InvalidOrder,
    ShownProduct,
    attribute,
    minute_of,
    parse_order,
    per_minute,
    promo_live,
    ratio,
    series,
    signature_is_valid,
    viewer_key,
)

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
    credits = attribute(order, cart=cart, via="cart", promos=[])
    assert [(c.stream_id, c.product_id, c.amount, c.via) for c in credits] == [
        (LIVE_A, SCARF, Decimal("58.00"), "cart"),
        (LIVE_B, None, Decimal("9.50"), "cart"),  # unknown product: the live added from last
    ]


def test_a_line_naming_its_vitrine_product_is_matched_by_id():
    line = {"id": 9, "name": "Renamed", "quantity": 1, "total": "10.00",
            "meta_data": [{"key": "vitrine_product_id", "value": str(COAT)}]}  # fmt: skip
    order = parse_order(woo_order(line_items=[line]))
    credits = attribute(order, cart=[ShownProduct(LIVE_A, COAT, "Coat", T0)], via="cart", promos=[])
    assert credits[0].product_id == COAT


def test_a_promo_code_credits_the_whole_order_to_the_live_that_showed_it():
    order = parse_order(woo_order(coupon_lines=[{"code": "LIVE20"}]))
    promos = [ShownProduct(LIVE_A, SCARF, "Scarf", T0)]
    credits = attribute(order, cart=[], via="cart", promos=promos)
    assert {(c.stream_id, c.via) for c in credits} == {(LIVE_A, "promo_code")}
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
    assert attribute(parse_order(woo_order()), cart=[], via="cart", promos=[]) == []


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
