"""Shopify's code discounts as Vitrine keeps them: a live's prices as `DiscountCodeBasicInput`,
the discount Shopify holds for a code, and its refusals (`userErrors`)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.products.shopify_format import gid
from services.products.shops import CouponSpec, ShopRefused

DISCOUNT_GID = "gid://shopify/DiscountCodeNode/"


@dataclass(frozen=True)
class Discount:
    """A code discount as Shopify holds it."""

    id: str
    kind: str  # DiscountCodeBasic, DiscountCodeFreeShipping …
    status: str | None
    variant_ids: frozenset[str]
    product_ids: frozenset[str]
    by_products: bool  # restricted to products and variants (not all items, not collections)


def discount(node: dict[str, Any]) -> Discount:
    code = node.get("codeDiscount") or {}
    items = (code.get("customerGets") or {}).get("items") or {}

    def ids(field: str) -> frozenset[str]:
        return frozenset(n["id"] for n in (items.get(field) or {}).get("nodes") or [])

    return Discount(
        id=node["id"],
        kind=str(code.get("__typename")),
        status=code.get("status"),
        variant_ids=ids("productVariants"),
        product_ids=ids("products"),
        by_products=items.get("__typename") == "DiscountProducts",
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _variant_gids(spec: CouponSpec) -> list[str]:
    return [gid("ProductVariant", i) for i in dict.fromkeys(spec.product_ids) if i.isdigit()]


def discount_input(spec: CouponSpec) -> dict[str, Any]:
    """`DiscountCodeBasicInput` for `spec`: an amount off each item or a percentage off the
    live's variants, for everyone, combinable with the other lives' codes (product discounts).
    `startsAt` only when the spec says it (an update keeps the start)."""
    if spec.cart_amount_off is not None:
        raise ShopRefused("Shopify codes give live prices per item: no amount off a whole cart")
    if spec.amount_off is not None:
        value: dict[str, Any] = {
            "discountAmount": {"amount": f"{spec.amount_off:.2f}", "appliesOnEachItem": True}
        }
    elif spec.percent_off is not None:
        value = {"percentage": float(spec.percent_off / 100)}
    else:
        raise ShopRefused("a discount needs an amount or a percentage off")
    variants = _variant_gids(spec)
    if not variants:
        raise ShopRefused("a discount needs at least one of the shop's variants")
    discount: dict[str, Any] = {
        "title": spec.title,
        "code": spec.code,
        "endsAt": iso(spec.ends_at) if spec.ends_at else None,
        "customerSelection": {"all": True},
        "customerGets": {
            "value": value,
            "items": {"products": {"productVariantsToAdd": variants}},
        },
        "usageLimit": spec.usage_limit,
        # Shopify limits a customer to one use or to none: other per-customer limits are not kept.
        "appliesOncePerCustomer": spec.usage_limit_per_user == 1,
        "combinesWith": {
            "productDiscounts": True,
            "orderDiscounts": False,
            "shippingDiscounts": False,
        },
    }
    if spec.starts_at is not None:
        discount["startsAt"] = iso(spec.starts_at)
    return discount


def variants_change(spec: CouponSpec, *, holding: Discount) -> dict[str, Any]:
    """`DiscountItemsInput` replacing what `holding` applies to by the spec's variants."""
    wanted = _variant_gids(spec)
    products: dict[str, Any] = {
        "productVariantsToAdd": [v for v in wanted if v not in holding.variant_ids],
    }
    if holding.by_products:
        products["productVariantsToRemove"] = sorted(holding.variant_ids - set(wanted))
        products["productsToRemove"] = sorted(holding.product_ids)
    return {"products": products}


def refusal(errors: list[dict[str, Any]]) -> str:
    """`userErrors` as one line: "Shopify refused the discount: code: Code must be unique"."""
    told = []
    for error in errors[:3]:
        field = error.get("field")
        where = ".".join(str(f) for f in field[-2:]) if isinstance(field, list) and field else ""
        message = str(error.get("message") or error.get("code") or "refused")
        told.append(f"{where}: {message}" if where else message)
    return ("Shopify refused the discount: " + "; ".join(told))[:500]


def code_taken(errors: list[dict[str, Any]]) -> bool:
    return any(
        error.get("code") == "TAKEN" and "code" in [str(f) for f in error.get("field") or []]
        for error in errors
    )
