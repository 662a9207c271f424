"""Shopify's formats: how the Admin GraphQL answers read (`shopify_documents` holds what is
asked), the REST JSON of its product webhooks, its errors and throttling, and the cart
permalink. Pure functions, no I/O.

What a variant becomes in the catalog: a product of its own (the cart permalink takes numeric
variant ids), named "Product — Variant" unless it is the product's only "Default Title" one,
priced and stocked by the variant, shown with its own image first. Stock counts only where Shopify
refuses to oversell (inventory tracked, policy DENY); elsewhere a variant never runs out. A
product no longer active (draft, archived) is sold out.
"""

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from services.products.models import DESCRIPTION_MAX, IMAGES_MAX, NAME_MAX, SKU_MAX, URL_MAX
from services.products.shops import Attribution, CheckoutLine, ShopProduct

DEFAULT_TITLE = "Default Title"
_CENT = Decimal("0.01")
_MAX_PRICE = Decimal("10000000000")  # what numeric(12, 2) holds
_SEARCH_SPECIAL = re.compile(r"""([\\:()"'*])""")


# --- ids, search ------------------------------------------------------------------------------


def gid(kind: str, numeric: str) -> str:
    return f"gid://shopify/{kind}/{numeric}"


def numeric_id(value: Any) -> str:
    """`gid://shopify/ProductVariant/123` (or 123) → "123"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        tail = value.rsplit("/", 1)[-1].split("?", 1)[0]
        if tail.isdigit():
            return tail
    raise ValueError(f"not a Shopify id: {value!r:.80}")


def search_query(search: str | None) -> str:
    """Shopify's search syntax: active products whose title (or a variant's SKU) has words
    starting with each word searched."""
    terms = ["status:active"]
    for word in (search or "").split():
        word = word.lstrip("-")  # a leading minus would negate the term
        if not word:
            continue
        escaped = _SEARCH_SPECIAL.sub(r"\\\1", word)
        terms.append(f"(title:{escaped}* OR sku:{escaped}*)")
    return " AND ".join(terms)


# --- answers ------------------------------------------------------------------------------------


def page(connection: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, bool]:
    """A connection's nodes, its end cursor, and whether more follow."""
    info = connection["pageInfo"]
    nodes = [node for node in connection["nodes"] if isinstance(node, dict)]
    return nodes, info.get("endCursor"), bool(info["hasNextPage"])


def currency(data: dict[str, Any]) -> str:
    code = data["shop"]["currencyCode"]
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError("the shop's currency is not an ISO 4217 code")
    return code


def count(data: dict[str, Any], *, default: int | None) -> int | None:
    found = (data.get("productsCount") or {}).get("count")
    return found if isinstance(found, int) else default


def money(value: Any) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return Decimal("0.00")
    if price.is_finite() and 0 <= price < _MAX_PRICE:
        return price.quantize(_CENT, rounding=ROUND_HALF_UP)
    return Decimal("0.00")


def stock_of(*, quantity: Any, tracked: bool, oversells: bool, for_sale: bool = True) -> int | None:
    """How many can be sold: none of a product no longer active (draft, archived); None where
    Shopify sells regardless (not tracked, or CONTINUE)."""
    if not for_sale:
        return 0
    if not tracked or oversells or not isinstance(quantity, int):
        return None
    return max(quantity, 0)


def variant_name(product_title: Any, variant_title: Any) -> str:
    base = " ".join(str(product_title or "").split())
    own = " ".join(str(variant_title or "").split())
    if own and own != DEFAULT_TITLE:
        return (f"{base} — {own}" if base else own)[:NAME_MAX]
    return base[:NAME_MAX]


def _media_urls(media: Any) -> list[str]:
    nodes = media.get("nodes") or [] if isinstance(media, dict) else []
    return [
        node["image"]["url"]
        for node in nodes
        if isinstance(node, dict)
        and isinstance(node.get("image"), dict)
        and isinstance(node["image"].get("url"), str)
    ]


def _fit_images(urls: list[str]) -> list[str]:
    return [url for url in dict.fromkeys(urls) if len(url) <= URL_MAX][:IMAGES_MAX]


def variant_product(
    variant: dict[str, Any], product: dict[str, Any], *, currency: str | None
) -> ShopProduct:
    """One variant of the GraphQL answer, with its product."""
    item = variant.get("inventoryItem") or {}
    url = product.get("onlineStoreUrl")  # None when not on the online store
    sku = variant.get("sku")
    description = " ".join(str(product.get("description") or "").split())
    external_id = numeric_id(variant["id"])
    return ShopProduct(
        external_id=external_id,
        name=variant_name(product.get("title"), variant.get("title")) or f"#{external_id}",
        description=description[:DESCRIPTION_MAX] or None,
        price=money(variant.get("price")),
        images=_fit_images(_media_urls(variant.get("media")) + _media_urls(product.get("media"))),
        stock=stock_of(
            quantity=variant.get("inventoryQuantity"),
            tracked=bool(item.get("tracked")),
            oversells=variant.get("inventoryPolicy") == "CONTINUE",
            for_sale=product.get("status", "ACTIVE") == "ACTIVE",
        ),
        product_url=url if isinstance(url, str) and len(url) <= URL_MAX else None,
        sku=str(sku)[:SKU_MAX] if sku else None,
        parent_id=numeric_id(product["id"]),
        inventory_item_id=numeric_id(item["id"]) if item.get("id") else None,
        currency=currency,
    )


# --- webhooks (Shopify's REST JSON) ---------------------------------------------------------------


def webhook_variants(
    payload: dict[str, Any], *, cached: dict[str, ShopProduct]
) -> list[ShopProduct]:
    """The `cached` variants a `products/update` webhook lists, brought up to what it tells:
    name, price, images, SKU, stock. What it does not tell stays as cached (the page's URL, the
    description; whether a variant is tracked, which recent versions leave out); variants it does
    not list are left alone."""
    title = payload.get("title")
    images = sorted(
        (image for image in payload.get("images") or [] if isinstance(image, dict)),
        key=lambda image: image.get("position") or 0,
    )
    by_id = {image.get("id"): image.get("src") for image in images}
    updated = []
    for variant in payload.get("variants") or []:
        if not isinstance(variant, dict) or "id" not in variant:
            continue
        old = cached.get(numeric_id(variant["id"]))
        if old is None:
            continue
        if "inventory_management" in variant:
            tracked = variant["inventory_management"] == "shopify"
        else:
            tracked = old.stock is not None
        own = by_id.get(variant.get("image_id"))
        urls = [src for src in [own, *by_id.values()] if isinstance(src, str)]
        sku = variant.get("sku") if "sku" in variant else old.sku
        item = variant.get("inventory_item_id")
        updated.append(
            replace(
                old,
                name=variant_name(title, variant.get("title")) or old.name,
                price=money(variant.get("price")) if "price" in variant else old.price,
                images=_fit_images(urls) or old.images,
                stock=stock_of(
                    quantity=variant.get("inventory_quantity"),
                    tracked=tracked,
                    oversells=variant.get("inventory_policy") == "continue",
                    for_sale=payload.get("status", "active") == "active",
                ),
                sku=str(sku)[:SKU_MAX] if sku else None,
                parent_id=numeric_id(payload["id"]),
                inventory_item_id=numeric_id(item) if item else old.inventory_item_id,
            )
        )
    return updated


def webhook_moment(value: Any) -> datetime | None:
    """A webhook's `updated_at` (ISO 8601 with its offset), in UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- throttling and errors ---------------------------------------------------------------------


def throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


def throttle_wait(extensions: Any, *, limit_s: float) -> float | None:
    """How long until the bucket holds what the throttled query asked for; None when it never
    will (the query asks more than the bucket holds) or not soon enough to wait."""
    try:
        cost = extensions["cost"]
        asked = float(cost["requestedQueryCost"])
        status = cost["throttleStatus"]
        available = float(status["currentlyAvailable"])
        restore = float(status["restoreRate"])
        maximum = float(status.get("maximumAvailable") or asked)
    except (KeyError, TypeError, ValueError):
        return 1.0  # a throttled answer without its figures: a second is what Shopify suggests
    if asked > maximum or restore <= 0:
        return None
    wait = max(asked - available, 0.0) / restore
    return max(wait, 0.01) if wait <= limit_s else None


def retry_after(header: str | None) -> float | None:
    try:
        return min(max(float(header or "1"), 0.01), 10.0)
    except ValueError:
        return 1.0


def status_reason(status: int) -> str:
    reasons = {
        401: "Shopify refused the access token",
        402: "the Shopify shop is frozen (its plan is unpaid)",
        403: "Shopify refused access to this shop's Admin API",
        404: "no Shopify Admin API at this address (check the shop's URL)",
        423: "the Shopify shop is locked",
    }
    return reasons.get(status, f"Shopify answered {status}")


def error_reason(errors: Any) -> str:
    """A GraphQL `errors` list, told shortly (never the token: Shopify does not echo it)."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict):
        code = (first.get("extensions") or {}).get("code")
        message = str(first.get("message") or code or "error")[:200]
        if code == "ACCESS_DENIED":
            return f"the access token may not do this: {message}"
        return f"Shopify refused the query: {message}"
    return f"Shopify refused the query: {str(first)[:200]}"


# --- where the viewer pays ----------------------------------------------------------------------


def cart_permalink(
    storefront_url: str, *, lines: list[CheckoutLine], codes: list[str], attribution: Attribution
) -> str | None:
    """`{store}/cart/VARIANT:QTY,…?discount=A,B&attributes[vitrine_live]=…&ref=vitrine`: the
    cart with these variants (the same one twice is one line), the codes applied."""
    quantities: dict[str, int] = {}
    for line in lines:
        if line.external_id.isdigit() and line.quantity > 0:
            quantities[line.external_id] = quantities.get(line.external_id, 0) + line.quantity
    if not quantities:
        return None
    items = ",".join(f"{variant}:{quantity}" for variant, quantity in quantities.items())
    query = []
    wanted = [code for code in dict.fromkeys(codes) if code]
    if wanted:
        query.append("discount=" + ",".join(quote(code, safe="") for code in wanted))
    query += [
        f"attributes[vitrine_live]={quote(attribution.stream_id, safe='')}",
        f"attributes[vitrine_cart]={quote(attribution.cart_id, safe='')}",
        "ref=vitrine",
    ]
    return f"{storefront_url.rstrip('/')}/cart/{items}?{'&'.join(query)}"
