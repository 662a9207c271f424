"""Pure rules of the products service: promo codes, a live's status, checkout links, the shop's
JSON, and what the API refuses."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.streams import StreamStatus
from services.products.domain import (
    CheckoutItem,
    checkout_url,
    fingerprint,
    later_status,
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
    assert later_status(current, reported) is expected


def test_offsets_count_seconds_from_the_live_start() -> None:
    start = datetime(2030, 1, 1, 18, tzinfo=UTC)
    assert offset_s(start, start + timedelta(minutes=2, seconds=3.5)) == 123.5
    assert offset_s(None, start) is None
    assert offset_s(start, None) is None


def test_the_live_price_wins_over_the_catalog_price() -> None:
    assert unit_price(Decimal("20.00"), Decimal("15.00")) == Decimal("15.00")
    assert unit_price(Decimal("20.00"), None) == Decimal("20.00")
    assert unit_price(Decimal("20.00"), Decimal("0.00")) == Decimal("0.00")


def test_a_woocommerce_cart_link_puts_one_product_in_the_shop_cart() -> None:
    url = checkout_url(
        shop_url="https://shop.example/",
        template=None,
        items=[CheckoutItem(product_id="p1", external_id="42", quantity=3)],
    )
    assert url == "https://shop.example/?add-to-cart=42&quantity=3"


def test_several_products_or_a_local_catalog_go_through_the_template() -> None:
    items = [
        CheckoutItem(product_id="p1", external_id="42", quantity=1),
        CheckoutItem(product_id="p2", external_id=None, quantity=2),
    ]
    template = "https://shop.example/checkout?items={items}"
    assert (
        checkout_url(shop_url="https://shop.example", template=template, items=items)
        == "https://shop.example/checkout?items=42:1,p2:2"
    )
    assert checkout_url(shop_url=None, template=template, items=items[1:]) == (
        "https://shop.example/checkout?items=p2:2"
    )
    assert checkout_url(shop_url=None, template=None, items=items) is None
    assert checkout_url(shop_url="https://shop.example", template=None, items=items) is None
    assert checkout_url(shop_url=None, template=template, items=[]) is None


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
