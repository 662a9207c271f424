"""The Shopify stand-in's data and how its Admin GraphQL API shows it: products, variants and
code discounts as Shopify's objects (the real field names, `__typename`s, connections with opaque
cursors), and its search syntax. The mutations are in `shopify_mutations`."""

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.support.graphql_lite import GraphQLError

if TYPE_CHECKING:
    from tests.support.shopify import FakeShopify

PAGE_MAX = 250


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def number(value: Any, kind: str) -> int | None:
    """The number of `gid://shopify/<kind>/<n>`; None for another kind; an error if no GID."""
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(value))
    if match is None:
        raise GraphQLError(f"Invalid global id '{value}'", code="argumentLiteralsIncompatible")
    return int(match.group(2)) if match.group(1) == kind else None


@dataclass
class Variant:
    id: int
    product_id: int
    title: str
    price: str
    sku: str | None
    inventory_item_id: int
    quantity: int
    tracked: bool = True
    policy: str = "DENY"
    image: str | None = None


@dataclass
class Product:
    id: int
    title: str
    handle: str
    description: str
    images: list[str]
    variants: list[Variant]
    status: str = "ACTIVE"
    published: bool = True
    updated_at: datetime = field(default_factory=now)


@dataclass
class Discount:
    """A basic code discount as the shop keeps it."""

    id: int
    title: str
    code: str
    starts_at: datetime
    ends_at: datetime | None
    value: dict[str, Any]
    variant_ids: list[int]
    product_ids: list[int]
    usage_limit: int | None
    once_per_customer: bool
    combines_with: dict[str, bool]
    all_customers: bool

    @property
    def status(self) -> str:
        moment = datetime.now(UTC)
        if self.ends_at is not None and self.ends_at <= moment:
            return "EXPIRED"
        return "SCHEDULED" if self.starts_at > moment else "ACTIVE"

    @property
    def gid(self) -> str:
        return gid("DiscountCodeNode", self.id)


# --- objects ------------------------------------------------------------------------------------


def connection(
    items: list[tuple[Any, dict[str, Any]]], args: dict[str, Any], *, typename: str
) -> dict[str, Any]:
    """A connection over `(sort key, node)` pairs in order; cursors are opaque (base64 JSON of
    the key) and stay right when items come and go between pages."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("You must provide one of first or last", code="argumentError")
    size = first if first is not None else last
    if not isinstance(size, int) or not 0 <= size <= PAGE_MAX:
        raise GraphQLError(f"first must be between 0 and {PAGE_MAX}", code="argumentError")
    if args.get("reverse"):
        items = list(reversed(items))
    start = 0
    if args.get("after"):
        try:
            after = json.loads(base64.b64decode(args["after"]))
        except ValueError:
            raise GraphQLError(
                "Invalid cursor for current pagination", code="argumentError"
            ) from None
        keys = [json.loads(json.dumps(key)) for key, _ in items]
        start = next((i for i, key in enumerate(keys) if _after(key, after, args)), len(items))
    chosen = items[start : start + size]
    edges = [
        {
            "__typename": f"{typename}Edge",
            "cursor": base64.b64encode(json.dumps(key).encode()).decode(),
            "node": node,
        }
        for key, node in chosen
    ]
    return {
        "__typename": f"{typename}Connection",
        "nodes": [node for _, node in chosen],
        "edges": edges,
        "pageInfo": {
            "__typename": "PageInfo",
            "hasNextPage": start + size < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _after(key: Any, cursor: Any, args: dict[str, Any]) -> bool:
    return key < cursor if args.get("reverse") else key > cursor


def _images(urls: list[str], args: dict[str, Any]) -> dict[str, Any]:
    nodes = [
        (
            [n],
            {
                "__typename": "MediaImage",
                "id": gid("MediaImage", abs(hash(url)) % 10**12),
                "mediaContentType": "IMAGE",
                "alt": None,
                "image": {"__typename": "Image", "url": url, "altText": None},
            },
        )
        for n, url in enumerate(urls)
    ]
    return connection(nodes, args, typename="Media")


def product_node(shop: "FakeShopify", product: Product) -> dict[str, Any]:
    return {
        "__typename": "Product",
        "id": gid("Product", product.id),
        "title": product.title,
        "handle": product.handle,
        "description": product.description,
        "descriptionHtml": f"<p>{product.description}</p>",
        "status": product.status,
        "onlineStoreUrl": f"{shop.url}/products/{product.handle}" if product.published else None,
        "updatedAt": iso(product.updated_at),
        "media": lambda args: _images(product.images, args),
        "variantsCount": {
            "__typename": "Count",
            "count": len(product.variants),
            "precision": "EXACT",
        },
        "variants": lambda args: connection(
            [([n], variant_node(shop, v)) for n, v in enumerate(product.variants)],
            args,
            typename="ProductVariant",
        ),
    }


def variant_node(shop: "FakeShopify", variant: Variant) -> dict[str, Any]:
    return {
        "__typename": "ProductVariant",
        "id": gid("ProductVariant", variant.id),
        "title": variant.title,
        "displayName": variant.title,
        "price": variant.price,
        "compareAtPrice": None,
        "sku": variant.sku,
        "inventoryQuantity": variant.quantity,
        "inventoryPolicy": variant.policy,
        "availableForSale": shop.products[variant.product_id].status == "ACTIVE",
        "inventoryItem": {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", variant.inventory_item_id),
            "tracked": variant.tracked,
        },
        "media": lambda args: _images([variant.image] if variant.image else [], args),
        "product": lambda args: product_node(shop, shop.products[variant.product_id]),
    }


def discount_node(shop: "FakeShopify", discount: Discount) -> dict[str, Any]:
    value = discount.value
    shown: dict[str, Any] = (
        {"__typename": "DiscountPercentage", "percentage": value["percentage"]}
        if "percentage" in value
        else {
            "__typename": "DiscountAmount",
            "amount": {"__typename": "MoneyV2", "amount": value["amount"],
                       "currencyCode": shop.currency},
            "appliesOnEachItem": value["appliesOnEachItem"],
        }
    )  # fmt: skip
    variants = [
        v for p in shop.products.values() for v in p.variants if v.id in discount.variant_ids
    ]
    items = {
        "__typename": "DiscountProducts",
        "productVariants": lambda args: connection(
            [([v.id], variant_node(shop, v)) for v in sorted(variants, key=lambda v: v.id)],
            args,
            typename="ProductVariant",
        ),
        "products": lambda args: connection(
            [
                ([p], product_node(shop, shop.products[p]))
                for p in sorted(discount.product_ids)
                if p in shop.products
            ],
            args,
            typename="Product",
        ),
    }
    return {
        "__typename": "DiscountCodeNode",
        "id": discount.gid,
        "codeDiscount": {
            "__typename": "DiscountCodeBasic",
            "title": discount.title,
            "status": discount.status,
            "startsAt": iso(discount.starts_at),
            "endsAt": iso(discount.ends_at),
            "usageLimit": discount.usage_limit,
            "appliesOncePerCustomer": discount.once_per_customer,
            "asyncUsageCount": 0,
            "combinesWith": {"__typename": "DiscountCombinesWith", **discount.combines_with},
            "codes": lambda args: connection(
                [([0], {"__typename": "DiscountRedeemCode", "code": discount.code})],
                args,
                typename="DiscountRedeemCode",
            ),
            "customerGets": {"__typename": "DiscountCustomerGets", "value": shown, "items": items},
        },
    }


# --- queries ------------------------------------------------------------------------------------


def query(shop: "FakeShopify", name: str, args: dict[str, Any]) -> Any:
    if name == "shop":
        return {
            "__typename": "Shop",
            "name": "Vitrine demo",
            "currencyCode": shop.currency,
            "myshopifyDomain": shop.domain,
        }
    if name in ("products", "productsCount"):
        found = [p for p in shop.products.values() if matches(args.get("query"), p)]
        if name == "productsCount":
            return {"__typename": "Count", "count": len(found), "precision": "EXACT"}
        sort = args.get("sortKey") or "ID"
        key: Callable[[Product], list[Any]] = {
            "TITLE": lambda p: [p.title.lower(), p.id],
            "ID": lambda p: [p.id],
            "UPDATED_AT": lambda p: [p.updated_at.isoformat(), p.id],
        }[sort]
        ordered = sorted(found, key=key)
        return connection(
            [(key(p), product_node(shop, p)) for p in ordered], args, typename="Product"
        )
    if name == "product":
        product = shop.products.get(number(args["id"], "Product") or 0)
        return product_node(shop, product) if product else None
    if name == "productVariant":
        variant_id = number(args["id"], "ProductVariant")
        variant = next(
            (v for p in shop.products.values() for v in p.variants if v.id == variant_id), None
        )
        return variant_node(shop, variant) if variant else None
    if name == "codeDiscountNode":
        discount = shop.discounts.get(number(args["id"], "DiscountCodeNode") or 0)
        return discount_node(shop, discount) if discount else None
    if name == "codeDiscountNodeByCode":
        discount = shop.discount(str(args["code"]))
        return discount_node(shop, discount) if discount else None
    raise GraphQLError(f"Field '{name}' doesn't exist on type 'QueryRoot'", code="undefinedField")


def _terms(text: str) -> list[tuple[str, str | None, str, bool]]:
    """Shopify's search syntax as tokens: ("op", …) for AND/OR/NOT/parentheses, ("term", field,
    value, prefix) for the rest; a backslash escapes the next character."""
    tokens: list[tuple[str, str | None, str, bool]] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char in "()":
            tokens.append(("op", None, char, False))
            at += 1
        else:
            raw, prefix = "", False
            while at < len(text) and not text[at].isspace() and text[at] not in "()":
                if text[at] == "\\" and at + 1 < len(text):
                    raw += "\x00" + text[at + 1]
                    at += 2
                    continue
                raw += text[at]
                at += 1
            if raw in ("AND", "OR", "NOT"):
                tokens.append(("op", None, raw, False))
                continue
            if raw.endswith("*"):
                raw, prefix = raw[:-1], True
            name, colon, value = raw.partition(":")
            if not colon:
                name, value = "", raw
            tokens.append(
                ("term", name.replace("\x00", "") or None, value.replace("\x00", ""), prefix)
            )
    return tokens


def matches(text: str | None, product: Product) -> bool:
    tokens = _terms(text or "")
    if not tokens:
        return True
    at = 0

    def either() -> bool:
        nonlocal at
        result = both()
        while at < len(tokens) and tokens[at][2] == "OR":
            at += 1
            result = both() or result
        return result

    def both() -> bool:
        nonlocal at
        result = one()
        while at < len(tokens) and tokens[at][2] not in ("OR", ")"):
            if tokens[at][2] == "AND":
                at += 1
            result = one() and result
        return result

    def one() -> bool:
        nonlocal at
        kind, name, value, prefix = tokens[at]
        at += 1
        if value == "NOT" and kind == "op":
            return not one()
        if value == "(" and kind == "op":
            result = either()
            at += 1  # ")"
            return result
        return _term(product, name, value.lower(), prefix)

    return either()


def _term(product: Product, name: str | None, value: str, prefix: bool) -> bool:
    def like(text: str | None) -> bool:
        words = [*re.split(r"\W+", (text or "").lower()), (text or "").lower()]
        return any(w.startswith(value) if prefix else w == value for w in words if w)

    if name == "status":
        return product.status.lower() == value
    if name == "title":
        return like(product.title)
    if name == "sku":
        return any(like(v.sku) for v in product.variants)
    if name == "id":
        return str(product.id) == value
    if name is None:
        return value in product.title.lower() or any(
            value in (v.sku or "").lower() for v in product.variants
        )
    return False
