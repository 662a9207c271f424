"""What Shopify's formats become: variants as catalog products, webhook payloads as changes, the
discount codes' input, throttling, and the cart permalink."""

import base64
import hashlib
import hmac
import logging
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi import HTTPException
from pydantic import SecretStr

from services.products import shop_webhooks
from services.products import shopify_discounts as discounts
from services.products import shopify_format as fmt
from services.products.models import SETTINGS_ROW_ID, CatalogSettings, Source
from services.products.shops import Attribution, CheckoutLine, CouponSpec, ShopProduct, ShopRefused

STORE = "https://vitrine-demo.myshopify.com"


def _variant(**fields: Any) -> dict[str, Any]:
    return {
        "id": "gid://shopify/ProductVariant/44001",
        "title": "Red / L",
        "price": "49.90",
        "sku": "SC-RL",
        "inventoryQuantity": 3,
        "inventoryPolicy": "DENY",
        "inventoryItem": {"id": "gid://shopify/InventoryItem/46001", "tracked": True},
        "media": {"nodes": [{"image": {"url": f"{STORE}/red.jpg"}}]},
    } | fields


def _product(**fields: Any) -> dict[str, Any]:
    return {
        "id": "gid://shopify/Product/8101",
        "title": "Silk scarf",
        "status": "ACTIVE",
        "description": "Pure\n silk,  hand rolled.",
        "onlineStoreUrl": f"{STORE}/products/silk-scarf",
        "media": {
            "nodes": [
                {"image": {"url": f"{STORE}/scarf.jpg"}},
                {},  # a video: no image
                {"image": {"url": f"{STORE}/red.jpg"}},
            ]
        },
    } | fields


# --- variants become products --------------------------------------------------------------------


def test_a_variant_is_a_product_named_after_its_product_with_its_own_price_stock_and_image() -> (
    None
):
    found = fmt.variant_product(_variant(), _product(), currency="EUR")
    assert found == ShopProduct(
        external_id="44001",
        name="Silk scarf — Red / L",
        description="Pure silk, hand rolled.",
        price=Decimal("49.90"),
        images=[f"{STORE}/red.jpg", f"{STORE}/scarf.jpg"],
        stock=3,
        product_url=f"{STORE}/products/silk-scarf",
        sku="SC-RL",
        parent_id="8101",
        inventory_item_id="46001",
        currency="EUR",
    )


def test_the_only_default_variant_takes_the_product_name() -> None:
    found = fmt.variant_product(_variant(title="Default Title"), _product(), currency="EUR")
    assert found.name == "Silk scarf"


@pytest.mark.parametrize(
    ("variant", "product", "stock"),
    [
        ({"inventoryQuantity": -4}, {}, 0),  # oversold: nothing left
        ({"inventoryItem": {"id": "gid://shopify/InventoryItem/1", "tracked": False}}, {}, None),
        ({"inventoryPolicy": "CONTINUE"}, {}, None),  # Shopify sells past zero
        ({}, {"status": "DRAFT"}, 0),  # not for sale any more
        ({}, {"status": "ARCHIVED"}, 0),
    ],
)
def test_stock_counts_only_where_shopify_stops_selling(
    variant: dict, product: dict, stock: int | None
) -> None:
    assert (
        fmt.variant_product(_variant(**variant), _product(**product), currency=None).stock == stock
    )


def test_what_does_not_fit_the_catalog_is_left_out() -> None:
    found = fmt.variant_product(
        _variant(price="not a price", sku=None, media=None, title=" "),
        _product(onlineStoreUrl=None, description="", media={"nodes": []}, title="x" * 300),
        currency=None,
    )
    assert found.price == Decimal("0.00")
    assert found.sku is None and found.images == [] and found.product_url is None
    assert found.description is None and len(found.name) == 200
    many = {"nodes": [{"image": {"url": f"{STORE}/{n}.jpg"}} for n in range(30)]}
    assert len(fmt.variant_product(_variant(), _product(media=many), currency=None).images) == 20


def test_shopify_ids_are_read_as_numbers() -> None:
    assert fmt.numeric_id("gid://shopify/ProductVariant/123") == "123"
    assert fmt.numeric_id(123) == "123"
    assert fmt.numeric_id("gid://shopify/InventoryLevel/9?inventory_item_id=1") == "9"
    for wrong in ("gid://shopify/ProductVariant/abc", None, True, ""):
        with pytest.raises(ValueError):
            fmt.numeric_id(wrong)


def test_a_search_asks_for_active_products_by_title_or_sku_words() -> None:
    assert fmt.search_query(None) == "status:active"
    assert fmt.search_query("  silk  Scarf ") == (
        "status:active AND (title:silk* OR sku:silk*) AND (title:Scarf* OR sku:Scarf*)"
    )
    # Search syntax stays the words searched: no field, group, wildcard or negation sneaks in.
    assert fmt.search_query('-a:b (c) "d* \\') == (
        "status:active AND (title:a\\:b* OR sku:a\\:b*) AND (title:\\(c\\)* OR sku:\\(c\\)*)"
        ' AND (title:\\"d\\** OR sku:\\"d\\**) AND (title:\\\\* OR sku:\\\\*)'
    )


# --- webhooks ------------------------------------------------------------------------------------


def _cached(external_id: str, **fields: Any) -> ShopProduct:
    cached = ShopProduct(
        external_id=external_id,
        name="Old name",
        description="Cached description",
        price=Decimal("10.00"),
        images=["https://old/img.jpg"],
        stock=5,
        product_url=f"{STORE}/products/tee",
        sku="OLD",
        parent_id="8101",
        inventory_item_id="46001",
        currency="EUR",
    )
    return replace(cached, **fields)


def _payload(**fields: Any) -> dict[str, Any]:
    return {
        "id": 8101,
        "title": "Organic tee",
        "status": "active",
        "updated_at": "2026-12-01T10:00:00-05:00",
        "images": [
            {"id": 2, "position": 2, "src": f"{STORE}/back.jpg"},
            {"id": 1, "position": 1, "src": f"{STORE}/front.jpg"},
        ],
        "variants": [
            {
                "id": 44001,
                "title": "S",
                "price": "17.50",
                "sku": "TEE-S",
                "inventory_policy": "deny",
                "inventory_item_id": 46001,
                "inventory_quantity": 4,
                "image_id": 2,
            },
            {"id": 44002, "title": "M", "price": "17.50", "inventory_quantity": 9},
        ],
    } | fields


def test_products_update_brings_the_cached_variants_up_to_what_it_tells() -> None:
    [small] = fmt.webhook_variants(_payload(), cached={"44001": _cached("44001")})
    assert small.name == "Organic tee — S"
    assert small.price == Decimal("17.50") and small.stock == 4 and small.sku == "TEE-S"
    assert small.images == [f"{STORE}/back.jpg", f"{STORE}/front.jpg"]  # its own first
    # What the payload does not tell stays as cached.
    assert small.product_url == f"{STORE}/products/tee"
    assert small.description == "Cached description" and small.currency == "EUR"


def test_products_update_keeps_how_a_variant_is_counted_when_it_does_not_say() -> None:
    untracked = _cached("44002", stock=None)
    [medium] = fmt.webhook_variants(_payload(), cached={"44002": untracked})
    assert medium.stock is None  # not counted before, not counted now
    payload = _payload()
    payload["variants"][1] |= {"inventory_management": "shopify", "inventory_policy": "deny"}
    [medium] = fmt.webhook_variants(payload, cached={"44002": untracked})
    assert medium.stock == 9
    payload["variants"][1]["inventory_policy"] = "continue"
    [medium] = fmt.webhook_variants(payload, cached={"44002": _cached("44002")})
    assert medium.stock is None


def test_a_product_no_longer_active_is_sold_out_and_unlisted_variants_are_left_alone() -> None:
    told = fmt.webhook_variants(
        _payload(status="draft"), cached={"44001": _cached("44001"), "44099": _cached("44099")}
    )
    assert [(p.external_id, p.stock) for p in told] == [("44001", 0)]


def test_a_webhook_time_is_read_in_utc() -> None:
    assert fmt.webhook_moment("2026-12-01T10:00:00-05:00") == datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert fmt.webhook_moment("2026-12-01T10:00:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert fmt.webhook_moment("yesterday") is None and fmt.webhook_moment(None) is None


def _signed(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_a_webhook_signed_with_any_of_the_secrets_is_valid() -> None:
    body = b'{"id": 1}'
    secrets = shop_webhooks.secrets_of(SecretStr(" new-secret , old-secret ,"))
    assert secrets == ["new-secret", "old-secret"]
    for secret in secrets:
        assert shop_webhooks.signature_valid(
            body=body, signature=_signed(body, secret), secrets=secrets
        )
    assert not shop_webhooks.signature_valid(
        body=body + b" ", signature=_signed(body, "new-secret"), secrets=secrets
    )
    assert not shop_webhooks.signature_valid(body=body, signature=None, secrets=secrets)
    assert not shop_webhooks.signature_valid(
        body=body, signature=_signed(body, "new-secret"), secrets=[]
    )


def test_without_a_secret_every_webhook_is_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(HTTPException) as refused:
        shop_webhooks._verify(
            b"{}", _signed(b"{}", ""), None, setting_name="SHOPIFY_WEBHOOK_SECRET"
        )
    assert refused.value.status_code == 401
    assert "SHOPIFY_WEBHOOK_SECRET is not set" in caplog.text


def test_webhooks_of_another_myshopify_shop_are_not_ours() -> None:
    row = CatalogSettings(id=SETTINGS_ROW_ID, source=Source.SHOPIFY, config={"shopify_url": STORE})
    assert shop_webhooks._our_shop(row, "vitrine-demo.myshopify.com")
    assert shop_webhooks._our_shop(row, "Vitrine-Demo.myshopify.com ")
    assert not shop_webhooks._our_shop(row, "someone-else.myshopify.com")
    custom = CatalogSettings(config={"shopify_url": "https://admin.example.com"})
    assert shop_webhooks._our_shop(custom, "someone-else.myshopify.com")  # nothing to compare


# --- discount codes ------------------------------------------------------------------------------


def _spec(**fields: Any) -> CouponSpec:
    return CouponSpec(code="LIVE10", title="Live: spring", product_ids=("44001", "44002"), **fields)


def test_an_amount_off_each_item_of_the_live_variants_for_everyone() -> None:
    ends = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)
    made = discounts.discount_input(_spec(amount_off=Decimal("10"), ends_at=ends, usage_limit=50))
    assert made == {
        "title": "Live: spring",
        "code": "LIVE10",
        "endsAt": "2026-12-02T21:00:00Z",
        "customerSelection": {"all": True},
        "customerGets": {
            "value": {"discountAmount": {"amount": "10.00", "appliesOnEachItem": True}},
            "items": {
                "products": {
                    "productVariantsToAdd": [
                        "gid://shopify/ProductVariant/44001",
                        "gid://shopify/ProductVariant/44002",
                    ]
                }
            },
        },
        "usageLimit": 50,
        "appliesOncePerCustomer": False,
        "combinesWith": {
            "productDiscounts": True,
            "orderDiscounts": False,
            "shippingDiscounts": False,
        },
    }


def test_a_percentage_is_a_fraction_and_one_use_per_customer_is_kept() -> None:
    starts = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    made = discounts.discount_input(
        _spec(percent_off=Decimal("15"), starts_at=starts, usage_limit_per_user=1)
    )
    assert made["customerGets"]["value"] == {"percentage": 0.15}
    assert made["startsAt"] == "2026-12-01T20:00:00Z" and made["endsAt"] is None
    assert made["appliesOncePerCustomer"] is True


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (_spec(cart_amount_off=Decimal("5")), "a whole cart"),
        (_spec(), "an amount or a percentage"),
        (
            CouponSpec(code="X", title="X", product_ids=("local-1",), amount_off=Decimal(1)),
            "at least one",
        ),
    ],
)
def test_what_a_shopify_code_cannot_be_is_refused_before_asking(
    spec: CouponSpec, reason: str
) -> None:
    with pytest.raises(ShopRefused, match=reason):
        discounts.discount_input(spec)


def test_an_update_adds_the_new_variants_and_removes_the_others() -> None:
    holding = discounts.Discount(
        id="gid://shopify/DiscountCodeNode/1",
        kind="DiscountCodeBasic",
        status="ACTIVE",
        variant_ids=frozenset(
            {"gid://shopify/ProductVariant/44001", "gid://shopify/ProductVariant/44009"}
        ),
        product_ids=frozenset({"gid://shopify/Product/8109"}),
        by_products=True,
    )
    assert discounts.variants_change(_spec(), holding=holding) == {
        "products": {
            "productVariantsToAdd": ["gid://shopify/ProductVariant/44002"],
            "productVariantsToRemove": ["gid://shopify/ProductVariant/44009"],
            "productsToRemove": ["gid://shopify/Product/8109"],
        }
    }
    everything = replace(holding, by_products=False)
    assert discounts.variants_change(_spec(), holding=everything) == {
        "products": {"productVariantsToAdd": ["gid://shopify/ProductVariant/44002"]}
    }


def test_user_errors_are_told_with_their_field() -> None:
    errors: list[dict[str, Any]] = [
        {"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique"},
        {"field": None, "code": "INVALID", "message": "Something else"},
    ]
    assert discounts.refusal(errors) == (
        "Shopify refused the discount: basicCodeDiscount.code: Code must be unique; Something else"
    )
    assert discounts.code_taken(errors)
    assert not discounts.code_taken([{"field": ["basicCodeDiscount", "title"], "code": "TAKEN"}])


# --- throttling ----------------------------------------------------------------------------------


def _throttled(asked: float, available: float, restore: float, maximum: float = 2000) -> dict:
    return {
        "cost": {
            "requestedQueryCost": asked,
            "actualQueryCost": None,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": restore,
            },
        }
    }


def test_a_throttled_call_waits_what_the_bucket_needs_to_refill() -> None:
    assert fmt.throttle_wait(_throttled(730, 530, 100), limit_s=10) == pytest.approx(2.0)
    assert fmt.throttle_wait(_throttled(10, 50, 100), limit_s=10) == 0.01  # just a breath
    assert fmt.throttle_wait(_throttled(730, 0, 50), limit_s=10) is None  # too long to wait
    assert fmt.throttle_wait(_throttled(3000, 0, 100), limit_s=10) is None  # never fits
    assert fmt.throttle_wait(None, limit_s=10) == 1.0
    assert fmt.throttled([{"message": "Throttled", "extensions": {"code": "THROTTLED"}}])
    assert not fmt.throttled([{"message": "x", "extensions": {"code": "ACCESS_DENIED"}}])
    assert fmt.retry_after("2.5") == 2.5 and fmt.retry_after("soon") == 1.0


def test_graphql_errors_are_told_shortly() -> None:
    denied = [
        {
            "message": "Access denied for inventoryQuantity field. Required access: "
            "`read_inventory` access scope.",
            "extensions": {"code": "ACCESS_DENIED"},
        }
    ]
    assert fmt.error_reason(denied).startswith(
        "the access token may not do this: Access denied for inventoryQuantity"
    )
    assert fmt.error_reason([{"message": "x" * 500}]) == "Shopify refused the query: " + "x" * 200
    assert fmt.status_reason(401) == "Shopify refused the access token"
    assert fmt.status_reason(503) == "Shopify answered 503"


# --- the cart permalink --------------------------------------------------------------------------


def _attribution() -> Attribution:
    return Attribution(stream_id="7d1e4c2a-0000-4000-8000-000000000001", cart_id="c/1 & 2")


def test_the_cart_permalink_of_one_variant() -> None:
    url = fmt.cart_permalink(
        STORE + "/",
        lines=[CheckoutLine(external_id="44001", quantity=2)],
        codes=["LIVE10"],
        attribution=_attribution(),
    )
    assert url == (
        f"{STORE}/cart/44001:2?discount=LIVE10"
        "&attributes[vitrine_live]=7d1e4c2a-0000-4000-8000-000000000001"
        "&attributes[vitrine_cart]=c%2F1%20%26%202&ref=vitrine"
    )


def test_the_cart_permalink_of_five_variants_with_every_code() -> None:
    lines = [CheckoutLine(external_id=str(44001 + n), quantity=n + 1) for n in range(5)]
    lines.append(CheckoutLine(external_id="44001", quantity=3))  # the same variant again
    url = fmt.cart_permalink(
        STORE, lines=lines, codes=["LIVE10", "CART,2", "LIVE10"], attribution=_attribution()
    )
    assert url is not None
    parts = urlsplit(url)
    assert parts.path == "/cart/44001:4,44002:2,44003:3,44004:4,44005:5"
    assert parts.query.startswith("discount=LIVE10,CART%2C2&")  # each code once, encoded
    query = dict(parse_qsl(parts.query))
    assert query["attributes[vitrine_cart]"] == "c/1 & 2" and query["ref"] == "vitrine"


def test_no_cart_permalink_without_a_line_and_no_discount_without_a_code() -> None:
    assert fmt.cart_permalink(STORE, lines=[], codes=["X"], attribution=_attribution()) is None
    not_shopify = [CheckoutLine(external_id="local-1", quantity=1)]
    assert (
        fmt.cart_permalink(STORE, lines=not_shopify, codes=[], attribution=_attribution()) is None
    )
    url = fmt.cart_permalink(
        STORE, lines=[CheckoutLine("44001", 1)], codes=[], attribution=_attribution()
    )
    assert url is not None and "discount=" not in url
