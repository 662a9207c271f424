"""Shopify's order webhooks for tests: orders and refunds in the REST webhook JSON shape (as
`orders/create`, `orders/paid`, `refunds/create` … post them). `delivery` and `signature` (the
Shopify stand-in's) give the headers Shopify sends with each: topic, webhook id, and the
HMAC-SHA256 signature of the raw body."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.support.shopify import SHOP_DOMAIN, delivery, signature

__all__ = ["delivery", "line_item", "order", "refund", "signature"]


def _at(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


def _money(amount: Decimal | str, currency: str) -> dict[str, Any]:
    value = f"{Decimal(amount):.2f}"
    return {
        "shop_money": {"amount": value, "currency_code": currency},
        "presentment_money": {"amount": value, "currency_code": currency},
    }


def line_item(
    line_id: int,
    *,
    title: str,
    price: str,
    quantity: int = 1,
    variant_id: int | None = None,
    product_id: int | None = None,
    variant_title: str | None = None,
    discount: str = "0.00",
    properties: Sequence[tuple[str, str]] = (),
    currency: str = "EUR",
) -> dict[str, Any]:
    """A line item; `discount` is allocated to it by the order's discount code (Shopify fills
    both `discount_allocations` and `total_discount` with it)."""
    allocations = (
        [{"amount": discount, "amount_set": _money(discount, currency),
          "discount_application_index": 0}]
        if Decimal(discount) else []
    )  # fmt: skip
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "variant_id": variant_id,
        "product_id": product_id,
        "title": title,
        "variant_title": variant_title,
        "name": f"{title} - {variant_title}" if variant_title else title,
        "sku": f"SKU-{line_id}",
        "vendor": "Vitrine demo",
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 200,
        "price": price,
        "price_set": _money(price, currency),
        "product_exists": True,
        "properties": [{"name": n, "value": v} for n, v in properties],
        "requires_shipping": True,
        "taxable": True,
        "tax_lines": [],
        "total_discount": discount,
        "total_discount_set": _money(discount, currency),
        "discount_allocations": allocations,
        "duties": [],
    }


def _line_total(item: dict[str, Any]) -> Decimal:
    return Decimal(item["price"]) * item["quantity"] - Decimal(item["total_discount"])


def order(
    order_id: int,
    *,
    lines: Sequence[dict[str, Any]],
    financial_status: str = "paid",
    discount_codes: Sequence[str] = (),
    note_attributes: dict[str, str] | None = None,
    landing_site: str | None = "/",
    created_at: datetime | None = None,
    updated_at: datetime | None = None,
    cancelled_at: datetime | None = None,
    refunds: Sequence[dict[str, Any]] = (),
    shipping: str = "0.00",
    currency: str = "EUR",
) -> dict[str, Any]:
    """An order as its `orders/*` webhooks carry it."""
    number = 1000 + order_id % 100_000
    subtotal = sum((_line_total(item) for item in lines), Decimal("0.00"))
    discounts = sum((Decimal(item["total_discount"]) for item in lines), Decimal("0.00"))
    total = subtotal + Decimal(shipping)
    created = _at(created_at)
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111,
        "browser_ip": "203.0.113.7",
        "buyer_accepts_marketing": False,
        "cancel_reason": "customer" if cancelled_at else None,
        "cancelled_at": _at(cancelled_at) if cancelled_at else None,
        "cart_token": uuid.uuid4().hex,
        "checkout_token": uuid.uuid4().hex,
        "confirmation_number": f"X{order_id % 10**8:08d}",
        "confirmed": True,
        "contact_email": "buyer@example.com",
        "created_at": created,
        "updated_at": _at(updated_at) if updated_at else created,
        "processed_at": created,
        "currency": currency,
        "presentment_currency": currency,
        "customer_locale": "fr",
        "discount_codes": [
            {"code": code, "amount": f"{discounts:.2f}", "type": "fixed_amount"}
            for code in discount_codes
        ],
        "email": "buyer@example.com",
        "financial_status": financial_status,
        "fulfillment_status": None,
        "landing_site": landing_site,
        "referring_site": "",
        "name": f"#{number}",
        "number": number - 1000,
        "order_number": number,
        "note": None,
        "note_attributes": [{"name": k, "value": v} for k, v in (note_attributes or {}).items()],
        "order_status_url": f"https://{SHOP_DOMAIN}/orders/{uuid.uuid4().hex}/authenticate",
        "source_name": "web",
        "tags": "",
        "taxes_included": False,
        "tax_lines": [],
        "test": False,
        "subtotal_price": f"{subtotal:.2f}",
        "total_line_items_price": f"{subtotal + discounts:.2f}",
        "total_discounts": f"{discounts:.2f}",
        "total_tax": "0.00",
        "total_price": f"{total:.2f}",
        "current_total_price": f"{total:.2f}",
        "total_price_set": _money(total, currency),
        "shipping_lines": [
            {"id": order_id + 1, "title": "Standard", "price": shipping, "code": "Standard"}
        ],
        "line_items": list(lines),
        "refunds": list(refunds),
    }


def refund(
    refund_id: int,
    *,
    order_id: int,
    lines: Sequence[tuple[int, int, str]] = (),
    amount: str | None = None,
    created_at: datetime | None = None,
    currency: str = "EUR",
) -> dict[str, Any]:
    """A refund as `refunds/create` carries it (and an order's `refunds` list): `lines` are
    (line item id, quantity, subtotal); the money goes back through one refund transaction of
    `amount` (default: the lines' subtotals)."""
    paid_back = amount if amount is not None else f"{sum(Decimal(s) for *_, s in lines):.2f}"
    return {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_id": order_id,
        "created_at": _at(created_at),
        "processed_at": _at(created_at),
        "note": "returned",
        "restock": bool(lines),
        "user_id": None,
        "duties": [],
        "refund_line_items": [
            {
                "id": refund_id + i + 1,
                "line_item_id": line_id,
                "quantity": quantity,
                "location_id": 24826418,
                "restock_type": "return",
                "subtotal": float(subtotal),
                "subtotal_set": _money(subtotal, currency),
                "total_tax": 0.0,
                "total_tax_set": _money("0", currency),
            }
            for i, (line_id, quantity, subtotal) in enumerate(lines)
        ],
        "transactions": [
            {
                "id": refund_id + 100,
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": "success",
                "message": "Bogus Gateway: Forced success",
                "amount": paid_back,
                "currency": currency,
                "created_at": _at(created_at),
                "test": True,
                "parent_id": 1,
            }
        ],
        "order_adjustments": [],
    }
