"""Shopify's order webhooks (REST Admin webhook payloads): `orders/*` carry the whole order, its
refunds included; `refunds/create` carries one refund and the id of its order."""

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.analytics.domain import (
    CART_KEYS,
    PRODUCT_KEYS,
    SESSION_KEYS,
    SHOPIFY,
    UTM_SOURCE,
    InvalidOrder,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    codes,
    moment,
    money,
    quantity,
    shop_ids,
    text,
)

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
REFUND_TOPICS = ("refunds/create",)
# Our cart permalinks add `attributes[vitrine_cart]=<cart id>`: the order's note attributes.
CART_ATTRIBUTES = ("vitrine_cart", *CART_KEYS)
FAILED = frozenset({"failure", "error"})


def _attribute(items: Any, names: tuple[str, ...]) -> str | None:
    """A `[{name, value}]` list's value (an order's note attributes, a line's properties)."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") in names and item.get("value"):
            return str(item["value"]).strip()[:128] or None
    return None


def _landing_cart(landing_site: Any) -> str | None:
    """The cart id of a visit that landed through one of our links with UTM parameters."""
    if not isinstance(landing_site, str) or "?" not in landing_site:
        return None
    query = parse_qs(urlsplit(landing_site).query)
    if [v.casefold() for v in query.get("utm_source", [])][:1] != [UTM_SOURCE]:
        return None
    return next((v.strip()[:128] for v in query.get("utm_content", []) if v.strip()), None)


def _line(item: Any, index: int) -> OrderLine:
    if not isinstance(item, dict):
        raise InvalidOrder("a line item is not an object")
    count = quantity(item.get("quantity"))
    allocations = item.get("discount_allocations")
    # Discounts are allocated to lines; the older `total_discount` says the same where set.
    if isinstance(allocations, list) and allocations:
        discount = sum(
            (money(a.get("amount")) for a in allocations if isinstance(a, dict)), Decimal("0.00")
        )
    else:
        discount = money(item.get("total_discount"))
    title, variant = text(item.get("title"), 200), text(item.get("variant_title"), 200)
    name = text(item.get("name"), 200) or (f"{title} - {variant}" if variant else title)
    return OrderLine(
        line_id=text(item["id"] if item.get("id") is not None else index, 64),
        name=name,
        product_ref=_attribute(item.get("properties"), PRODUCT_KEYS),
        quantity=count,
        total=money(item.get("price")) * count - discount,
        shop_ids=shop_ids(item.get("variant_id"), item.get("product_id")),
        aliases=(title,) if title and title != name else (),
    )


def parse_refund(payload: Any) -> tuple[str, Refund]:
    """A `refunds/create` body: its order's id, and what was given back."""
    if not isinstance(payload, dict) or payload.get("order_id") in (None, ""):
        raise InvalidOrder("expected a Shopify refund naming its order")
    return text(payload["order_id"], 64), _refund(payload)


def _refund(payload: Any) -> Refund:
    """The lines a refund names are refunded by their subtotal; money given back without naming
    lines is the sum of its refund transactions."""
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise InvalidOrder("expected a Shopify refund with an id")
    transactions = payload.get("transactions")
    given_back = [
        money(t.get("amount"))
        for t in (transactions if isinstance(transactions, list) else [])
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") not in FAILED
    ]
    paid_back = sum(given_back, Decimal("0.00"))
    lines = []
    for item in payload.get("refund_line_items") or []:
        if not isinstance(item, dict) or item.get("line_item_id") in (None, ""):
            raise InvalidOrder("a refund line names no line item")
        lines.append(
            RefundLine(
                line_id=text(item["line_item_id"], 64),
                quantity=quantity(item.get("quantity")),
                amount=money(item.get("subtotal")),
            )
        )
    if lines and isinstance(transactions, list) and not paid_back:
        # Items taken back (restocked) with no money returned: the sale stands.
        lines = [RefundLine(ln.line_id, ln.quantity, Decimal("0.00")) for ln in lines]
    created = payload.get("created_at")
    return Refund(
        refund_id=text(payload["id"], 64),
        refunded_at=moment(created) if created else None,
        lines=tuple(lines),
        amount=Decimal("0.00") if lines else paid_back,
    )


def _refunds(items: Any) -> tuple[Refund, ...]:
    return tuple(_refund(item) for item in items) if isinstance(items, list) else ()


def _status(payload: dict[str, Any]) -> str:
    if payload.get("cancelled_at"):
        return "cancelled"
    return text(payload.get("financial_status") or "pending", 32)


def parse_order(payload: Any) -> Order:
    """The parts of a Shopify order (webhook shape) that analytics needs."""
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise InvalidOrder("expected a Shopify order with an id")
    placed = moment(payload.get("created_at"))
    attributes = payload.get("note_attributes")
    total = payload.get("total_price")
    return Order(
        source=SHOPIFY,
        order_id=text(payload["id"], 64),
        status=_status(payload),
        currency=text(payload.get("currency"), 3).upper(),
        placed_at=placed,
        modified_at=moment(payload.get("updated_at"), fallback=placed),
        cart_id=_attribute(attributes, CART_ATTRIBUTES)
        or _landing_cart(payload.get("landing_site")),
        session_id=_attribute(attributes, SESSION_KEYS),
        coupons=codes(payload.get("discount_codes")),
        lines=tuple(_line(item, i) for i, item in enumerate(payload.get("line_items") or [])),
        name=text(payload.get("name") or payload.get("order_number") or payload["id"], 64),
        total=money(total) if total not in (None, "") else None,
        refunds=_refunds(payload.get("refunds")),
    )
