"""Pure rules of the products service: promo codes, a live's status, checkout links, the shop's
JSON, and what the API refuses."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from pydantic import ValidationError

from contracts.streams import StreamStatus
from services.products.domain import (
    OfferItem,
    cart_coupon_code,
    coupon_groups,
    fill_template,
    fingerprint,
    generated_code,
    live_price,
    offer_ends_at,
    offset_s,
    promo_code_readable,
    unit_price,
)
from services.products.schemas import CartItemAdd, LiveProductWrite, ProductCreate, ProductUpdate
from services.products.woocommerce import page_query, shop_product

SCHEDULED, LIVE, ENDED = StreamStatus.SCHEDULED, StreamStatus.LIVE, StreamStatus.ENDED


def test_promo_codes_are_for_admins_only_until_the_live_starts() -> None:
    assert not promo_code_readable(SCHEDULED, admin=False)
    assert promo_code_readable(SCHEDULED, admin=True)
    assert promo_code_readable(LIVE, admin=False)
    assert promo_code_readable(ENDED, admin=False)


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        (SCHEDULED, LIVE, LIVE),
        (SCHEDULED, ENDED, ENDED),
        (LIVE, SCHEDULED, LIVE),  # a late stream.updated cannot take a live back
        (ENDED, LIVE, ENDED),
        (LIVE, LIVE, LIVE),
    ],
)
def test_a_live_status_only_moves_forward(
    current: StreamStatus, reported: StreamStatus, expected: StreamStatus
) -> None:
    assert current.furthest(reported) is expected


def test_offsets_count_seconds_from_the_live_start() -> None:
    start = datetime(2030, 1, 1, 18, tzinfo=UTC)
    assert offset_s(start, start + timedelta(minutes=2, seconds=3.5)) == 123.5
    assert offset_s(None, start) is None
    assert offset_s(start, None) is None


def test_the_live_price_wins_over_the_catalog_price() -> None:
    assert unit_price(Decimal("20.00"), Decimal("15.00")) == Decimal("15.00")
    assert unit_price(Decimal("20.00"), None) == Decimal("20.00")
    assert unit_price(Decimal("20.00"), Decimal("0.00")) == Decimal("0.00")


def test_the_live_price_holds_until_the_offer_closes_and_a_percentage_wins() -> None:
    price, special = Decimal("49.90"), Decimal("39.90")
    assert live_price(price, special) == special
    assert live_price(price, special, offer_closed=True) is None
    assert live_price(price, special, percent_off=Decimal("20")) == Decimal("39.92")
    assert unit_price(price, special, offer_closed=True) == price


def _item(external_id: str, price: str, live: str | None) -> OfferItem:
    return OfferItem(
        external_id=external_id,
        parent_id=None,
        price=Decimal(price),
        live_price=Decimal(live) if live is not None else None,
    )


def test_products_sharing_a_discount_share_a_coupon_and_the_biggest_group_takes_the_code() -> None:
    groups = coupon_groups(
        code="LIVE10",
        percent_off=None,
        items=[
            _item("11", "49.90", "39.90"),  # 10 off
            _item("12", "30.00", "25.00"),  # 5 off
            _item("13", "20.00", "10.00"),  # 10 off
            _item("14", "20.00", None),  # no live price: no coupon
            _item("15", "20.00", "25.00"),  # dearer in the live: no coupon
        ],
    )
    assert [(g.code, g.amount_off, [i.external_id for i in g.items]) for g in groups] == [
        ("LIVE10", Decimal("10.00"), ["11", "13"]),
        ("LIVE10-2", Decimal("5.00"), ["12"]),
    ]
    [percent] = coupon_groups(
        code="LIVE10",
        percent_off=Decimal("15"),
        items=[_item("12", "30", None), _item("11", "9", None)],
    )
    assert (percent.percent_off, [i.external_id for i in percent.items]) == (
        Decimal("15"),
        ["11", "12"],
    )
    assert coupon_groups(code="X", percent_off=None, items=[]) == []


def test_an_offer_ends_its_window_after_the_live_or_after_a_provisional_end_while_on_air() -> None:
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)
    assert offer_ends_at(started_at=start, ended_at=end, window_s=3600, now=end) == end + timedelta(
        hours=1
    )
    on_air = offer_ends_at(started_at=start, ended_at=None, window_s=0, now=start)
    assert on_air == start + timedelta(hours=12)


def test_a_cart_coupon_code_cannot_be_guessed_from_the_cart_id_and_is_stable() -> None:
    cart = uuid4()
    first = cart_coupon_code(key=b"secret", cart_id=cart)
    assert first == cart_coupon_code(key=b"secret", cart_id=cart)
    assert first != cart_coupon_code(key=b"other", cart_id=cart)
    assert first.startswith("CART-") and len(first) == 17
    assert generated_code().startswith("LIVE-")


def test_a_checkout_template_gets_the_items_code_live_and_cart_url_encoded() -> None:
    url = fill_template(
        "https://shop.example/pay?items={items}&c={coupon}&l={live}&k={cart}",
        items="42:1,p2:2",
        coupon="LIVE 10",
        live="l1",
        cart=None,
    )
    assert url == "https://shop.example/pay?items=42:1,p2:2&c=LIVE%2010&l=l1&k="


def test_a_retry_has_the_fingerprint_of_its_original_whatever_the_key_order() -> None:
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_woocommerce_pages_by_page_number_or_by_offset() -> None:
    assert page_query(limit=20, offset=0) == {"per_page": 20, "page": 1}
    assert page_query(limit=20, offset=40) == {"per_page": 20, "page": 3}
    assert page_query(limit=20, offset=5) == {"per_page": 20, "offset": 5}


def test_a_woocommerce_product_is_read_into_the_catalog_shape() -> None:
    product = shop_product(
        {
            "id": 794,
            "name": "Premium Quality &amp; Style",
            "permalink": "https://shop.example/product/premium-quality/",
            "description": "<p>Pellentesque <strong>habitant</strong>.</p>\n",
            "short_description": "<p>Short</p>",
            "sku": "PQ-1",
            "price": "21.999",
            "regular_price": "21.99",
            "manage_stock": True,
            "stock_quantity": -2,
            "stock_status": "onbackorder",
            "images": [{"id": 1, "src": "https://shop.example/a.jpg"}, {"id": 2}],
        }
    )
    assert product.external_id == "794"
    assert product.name == "Premium Quality & Style"
    assert product.description == "Pellentesque habitant ."
    assert product.price == Decimal("22.00")
    assert product.stock == 0
    assert product.images == ["https://shop.example/a.jpg"]
    assert product.sku == "PQ-1"


def test_a_woocommerce_product_without_price_or_stock_management() -> None:
    product = shop_product(
        {"id": 5, "name": "", "price": "", "regular_price": "", "sku": "", "images": []}
    )
    assert product.name == "#5"
    assert product.price == Decimal("0.00")
    assert product.stock is None
    assert product.sku is None
    out = shop_product({"id": 6, "name": "x", "price": "1", "stock_status": "outofstock"})
    assert out.stock == 0


GOOD = {"name": "Scarf", "price": "19.90", "currency": "EUR"}


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "price": "-1"},
        {**GOOD, "price": "1.999"},
        {**GOOD, "price": "NaN"},
        {**GOOD, "currency": "eur"},
        {**GOOD, "currency": "EURO"},
        {**GOOD, "name": "x" * 201},
        {**GOOD, "name": "  "},
        {**GOOD, "description": "d" * 5001},
        {**GOOD, "images": ["https://a.example/x.jpg"] * 21},
        {**GOOD, "images": ["not a url"]},
        {**GOOD, "stock": -1},
        {**GOOD, "sku": "s" * 65},
        {**GOOD, "product_url": "javascript:alert(1)"},
        {**GOOD, "id": "mine"},
    ],
)
def test_absurd_products_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        ProductCreate.model_validate(body)


def test_a_product_update_cannot_clear_what_a_product_must_have() -> None:
    for body in ({}, {"name": None}, {"price": None}, {"currency": None}, {"images": None}):
        with pytest.raises(ValidationError):
            ProductUpdate.model_validate(body)
    assert ProductUpdate.model_validate({"stock": None}).model_fields_set == {"stock"}


def test_absurd_live_products_and_cart_lines_are_refused() -> None:
    product_id = "4b6f1c1e-8f1a-4c1e-9d1e-1e1e1e1e1e1e"
    for body in (
        {"product_id": product_id, "promo_code": "p" * 65},
        {"product_id": product_id, "special_price": "-0.01"},
        {"product_id": product_id, "position": -1},
        {"product_id": "42"},
    ):
        with pytest.raises(ValidationError):
            LiveProductWrite.model_validate(body)
    line = {"stream_id": product_id, "product_id": product_id, "session_id": "session-0000000001"}
    for quantity in (0, -1, 100):
        with pytest.raises(ValidationError):
            CartItemAdd.model_validate({**line, "quantity": quantity})
    with pytest.raises(ValidationError):
        CartItemAdd.model_validate(
            {**line, "quantity": 1, "session_id": "session-000000000x" * 129}
        )
