"""WooCommerce's order webhooks (`order.created`, `order.updated`): the REST v3 order, read into
what analytics keeps of it."""

from typing import Any

from services.analytics.domain import (
    CART_KEYS,
    PRODUCT_KEYS,
    SESSION_KEYS,
    UTM_SOURCE,
    WOOCOMMERCE,
    InvalidOrder,
    Order,
    OrderLine,
    Refund,
    codes,
    moment,
    money,
    quantity,
    shop_ids,
    text,
)

TOPICS = ("order.created", "order.updated")
# WooCommerce's Order Attribution (8.5+) keeps the checkout's UTM parameters on the order.
UTM_SOURCE_KEY = "_wc_order_attribution_utm_source"
UTM_CONTENT_KEY = "_wc_order_attribution_utm_content"


def _meta(items: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("key") in keys and item.get("value"):
            return str(item["value"])[:128]
    return None


def _cart_id(meta: Any) -> str | None:
    """Our cart id: kept by a plugin as order meta, else the checkout link's `utm_content`."""
    if (cart := _meta(meta, CART_KEYS)) is not None:
        return cart
    source = _meta(meta, (UTM_SOURCE_KEY,))
    if source is not None and source.strip().casefold() == UTM_SOURCE:
        content = _meta(meta, (UTM_CONTENT_KEY,))
        return content.strip() if content and content.strip() else None
    return None


def _line(item: Any, index: int) -> OrderLine:
    if not isinstance(item, dict):
        raise InvalidOrder("a line item is not an object")
    return OrderLine(
        line_id=text(item["id"] if item.get("id") is not None else index, 64),
        name=text(item.get("name"), 200),
        product_ref=_meta(item.get("meta_data"), PRODUCT_KEYS),
        quantity=quantity(item.get("quantity")),
        total=money(item.get("total")),
        shop_ids=shop_ids(item.get("variation_id"), item.get("product_id")),
    )


def _refunds(items: Any) -> tuple[Refund, ...]:
    """The order's refunds as its webhook lists them: `{id, reason, total: "-10.00"}`, the order's
    lines not named, so each is shared out over them."""
    refunds = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("id") not in (None, ""):
            amount = abs(money(item.get("total")))
            refunds.append(Refund(refund_id=text(item["id"], 64), refunded_at=None, amount=amount))
    return tuple(refunds)


def parse_order(payload: Any) -> Order:
    """The parts of a WooCommerce order (REST v3 shape) that analytics needs."""
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise InvalidOrder("expected a WooCommerce order with an id")
    placed = moment(payload.get("date_created_gmt") or payload.get("date_created"))
    meta = payload.get("meta_data")
    total = payload.get("total")
    return Order(
        source=WOOCOMMERCE,
        order_id=text(payload["id"], 64),
        status=text(payload.get("status") or "pending", 32),
        currency=text(payload.get("currency"), 3).upper(),
        placed_at=placed,
        modified_at=moment(
            payload.get("date_modified_gmt") or payload.get("date_modified"), fallback=placed
        ),
        cart_id=_cart_id(meta),
        session_id=_meta(meta, SESSION_KEYS),
        coupons=codes(payload.get("coupon_lines")),
        lines=tuple(_line(item, i) for i, item in enumerate(payload.get("line_items") or [])),
        name=text(payload.get("number") or payload["id"], 64),
        total=money(total) if total not in (None, "") else None,
        refunds=_refunds(payload.get("refunds")),
    )
