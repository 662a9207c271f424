"""The WooCommerce catalog source: the shop's REST API (`/wp-json/wc/v3`).

Over HTTPS WooCommerce takes the consumer key and secret as HTTP Basic credentials, which is what
this adapter sends; plain HTTP would need OAuth 1.0a signatures and is refused in the settings.
Lists are paginated with `page`/`per_page` (or `offset`), the totals come in `X-WP-Total` and
`X-WP-TotalPages`.
"""

import html
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import httpx

from services.products.models import DESCRIPTION_MAX, IMAGES_MAX, NAME_MAX, SKU_MAX, URL_MAX
from services.products.shops import (
    Attribution,
    CheckoutLine,
    CouponSpec,
    ShopProduct,
    ShopRefused,
    ShopUnavailable,
)

API = "/wp-json/wc/v3"
PER_PAGE_MAX = 100
_TAG = re.compile(r"<[^>]+>")
_CENT = Decimal("0.01")


def _text(value: Any, limit: int) -> str | None:
    """Shop text is HTML: keep the words."""
    if not isinstance(value, str):
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
    return text[:limit] or None


_MAX_PRICE = Decimal("10000000000")  # what numeric(12, 2) holds


def _price(product: dict[str, Any]) -> Decimal:
    for field in ("price", "regular_price"):
        try:
            price = Decimal(str(product.get(field) or ""))
        except InvalidOperation:
            continue
        if price.is_finite() and 0 <= price < _MAX_PRICE:
            return price.quantize(_CENT, rounding=ROUND_HALF_UP)
    return Decimal("0.00")  # a product without a price (a variable product's parent)


def _stock(product: dict[str, Any]) -> int | None:
    quantity = product.get("stock_quantity")
    if product.get("manage_stock") and isinstance(quantity, int):
        return max(quantity, 0)
    return 0 if product.get("stock_status") == "outofstock" else None


def _images(product: dict[str, Any]) -> list[str]:
    listed = product.get("images") or []
    if isinstance(product.get("image"), dict):  # a variation has one image
        listed = [product["image"]]
    return [
        image["src"]
        for image in listed
        if isinstance(image, dict) and isinstance(image.get("src"), str)
    ]


def _variation_name(variation: dict[str, Any], parent: dict[str, Any] | None) -> str | None:
    """A variation is named after its product and its attributes: "Silk scarf — Red, L"."""
    base = _text((parent or {}).get("name"), NAME_MAX)
    options = [
        str(attribute["option"])
        for attribute in variation.get("attributes") or []
        if isinstance(attribute, dict) and attribute.get("option")
    ]
    named = " — ".join(part for part in (base, ", ".join(options)) if part)
    return _text(named, NAME_MAX) or _text(variation.get("name"), NAME_MAX)


def shop_product(product: dict[str, Any], *, parent: dict[str, Any] | None = None) -> ShopProduct:
    """Read one product (or, with its `parent`, one variation) of WooCommerce's JSON."""
    images = _images(product) or (_images(parent) if parent else [])
    permalink = product.get("permalink")
    sku = product.get("sku")
    name = _variation_name(product, parent) if parent is not None else None
    return ShopProduct(
        external_id=str(product["id"]),
        name=name or _text(product.get("name"), NAME_MAX) or f"#{product['id']}",
        description=_text(product.get("description"), DESCRIPTION_MAX)
        or _text(product.get("short_description"), DESCRIPTION_MAX)
        or (_text(parent.get("short_description"), DESCRIPTION_MAX) if parent else None),
        price=_price(product),
        images=[src for src in images if len(src) <= URL_MAX][:IMAGES_MAX],
        stock=_stock(product),
        product_url=permalink if isinstance(permalink, str) and len(permalink) <= URL_MAX else None,
        sku=str(sku)[:SKU_MAX] if sku else None,
        parent_id=str(parent["id"]) if parent is not None and "id" in parent else None,
    )


def page_query(*, limit: int, offset: int) -> dict[str, int]:
    """WooCommerce pages by `page`/`per_page`; an offset off a page boundary is sent as is."""
    per_page = min(max(limit, 1), PER_PAGE_MAX)
    if offset % per_page == 0:
        return {"per_page": per_page, "page": offset // per_page + 1}
    return {"per_page": per_page, "offset": offset}


class WooCommerceShop:
    def __init__(
        self, *, client: httpx.AsyncClient, url: str, consumer_key: str, consumer_secret: str
    ) -> None:
        self.client = client
        self.shop_url = url.rstrip("/")
        self.base = self.shop_url + API
        self.auth = httpx.BasicAuth(consumer_key, consumer_secret)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            answer = await self.client.request(
                method, self.base + path, params=params, json=body, auth=self.auth
            )
        except httpx.HTTPError as error:
            raise ShopUnavailable(f"the shop did not answer: {type(error).__name__}") from None
        if answer.status_code in (401, 403):
            raise ShopUnavailable("the shop refused the consumer key and secret")
        if answer.status_code >= 500:
            raise ShopUnavailable(f"the shop answered {answer.status_code}")
        return answer

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return await self._call("GET", path, params=params)

    def _json(self, answer: httpx.Response) -> Any:
        if answer.status_code == 400:
            raise ShopRefused(f"the shop refused it: {_error_message(answer)}")
        if answer.status_code not in (200, 201):
            raise ShopUnavailable(f"the shop answered {answer.status_code}")
        try:
            return answer.json()
        except ValueError:
            raise ShopUnavailable("the shop answered something else than JSON") from None

    async def search(
        self, *, search: str | None, limit: int, offset: int
    ) -> tuple[list[ShopProduct], int]:
        """One page of the shop's published products, and how many match in all."""
        params: dict[str, Any] = {"status": "publish", "orderby": "title", "order": "asc"}
        params |= page_query(limit=limit, offset=offset)
        if search:
            params["search"] = search
        answer = await self._get("/products", params)
        listed = self._json(answer)
        if not isinstance(listed, list):
            raise ShopUnavailable("the shop's product list is not a list")
        products: list[ShopProduct] = []
        for found in listed:
            if not isinstance(found, dict) or "id" not in found:
                continue
            if found.get("type") == "variable" and found.get("variations"):
                products += await self._variations(found)
            else:
                products.append(shop_product(found))
        try:
            total = int(answer.headers["X-WP-Total"])
        except (KeyError, ValueError):
            total = offset + len(products)
        return products, total

    async def _variations(self, parent: dict[str, Any]) -> list[ShopProduct]:
        """A variable product's variations, each a product of its own (its own id, price, stock),
        named after the parent and its attributes."""
        listed = self._json(
            await self._get(f"/products/{parent['id']}/variations", {"per_page": PER_PAGE_MAX})
        )
        if not isinstance(listed, list):
            raise ShopUnavailable("the shop's variation list is not a list")
        return [
            shop_product(variation, parent=parent)
            for variation in listed
            if isinstance(variation, dict) and "id" in variation
        ]

    async def product(self, external_id: str) -> ShopProduct | None:
        """One product by the shop's id; None once the shop no longer has it."""
        answer = await self._get(f"/products/{external_id}")
        if answer.status_code == 404:
            return None
        found = self._json(answer)
        if not isinstance(found, dict) or "id" not in found:
            raise ShopUnavailable("the shop's product is not an object")
        if found.get("type") == "variation" and found.get("parent_id"):
            parent = self._json(await self._get(f"/products/{found['parent_id']}"))
            return shop_product(found, parent=parent if isinstance(parent, dict) else None)
        return shop_product(found)

    async def currency(self) -> str:
        """The shop's currency (ISO 4217), which its products do not repeat."""
        found = self._json(await self._get("/data/currencies/current"))
        code = found.get("code") if isinstance(found, dict) else None
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
            raise ShopUnavailable("the shop's currency is not an ISO 4217 code")
        return code

    # --- coupons: the live's prices, made real at the shop's checkout ------------------------

    async def put_coupon(self, spec: CouponSpec, *, known_id: str | None) -> str:
        """Create the coupon or bring it up to `spec` (found by its id, else by its code)."""
        body = coupon_body(spec)
        # The id noted first, then (it may have been deleted since) whatever holds the code.
        tried = None
        for coupon_id in (known_id, "by code"):
            if coupon_id == "by code":
                coupon_id = await self._coupon_id(spec.code)
            if coupon_id is None or coupon_id == tried:
                continue
            tried = coupon_id
            answer = await self._call("PUT", f"/coupons/{coupon_id}", body=body)
            if not _gone(answer):
                return _id_of(self._json(answer))
        created = self._json(await self._call("POST", "/coupons", body=body))
        return _id_of(created)

    async def withdraw_coupon(self, *, code: str, known_id: str | None) -> None:
        """Delete the coupon: orders keep the code they used; the code gives nothing any more."""
        coupon_id = known_id or await self._coupon_id(code)
        if coupon_id is None:
            return
        answer = await self._call("DELETE", f"/coupons/{coupon_id}", params={"force": "true"})
        if answer.status_code not in (200, 404, 410):
            self._json(answer)

    async def _coupon_id(self, code: str) -> str | None:
        listed = self._json(await self._get("/coupons", {"code": code, "per_page": 10}))
        if not isinstance(listed, list):
            raise ShopUnavailable("the shop's coupon list is not a list")
        for coupon in listed:
            if isinstance(coupon, dict) and str(coupon.get("code", "")).lower() == code.lower():
                return str(coupon["id"])
        return None

    def checkout_url(
        self, *, lines: list[CheckoutLine], codes: list[str], attribution: Attribution
    ) -> str | None:
        """The shareable checkout link (WooCommerce 9.9+): every line and one coupon, with the
        order attribution WooCommerce records from `utm_*` (source, live, cart)."""
        if not lines:
            return None
        query: dict[str, str] = {
            "products": ",".join(f"{line.external_id}:{line.quantity}" for line in lines)
        }
        if codes:
            query["coupon"] = codes[0]
        query |= {
            "utm_source": "vitrine",
            "utm_medium": "live",
            "utm_campaign": attribution.stream_id,
            "utm_content": attribution.cart_id,
        }
        return f"{self.shop_url}/checkout-link/?{urlencode(query, safe=':,')}"


def _gone(answer: httpx.Response) -> bool:
    """The coupon of this id is no more (deleted when a live's offer was withdrawn): WooCommerce
    says 404, or 400 `woocommerce_rest_shop_coupon_invalid_id` on an update."""
    if answer.status_code in (404, 410):
        return True
    try:
        code = answer.json().get("code") if answer.status_code == 400 else None
    except (ValueError, AttributeError):
        return False
    return code == "woocommerce_rest_shop_coupon_invalid_id"


def _id_of(coupon: Any) -> str:
    if not isinstance(coupon, dict) or "id" not in coupon:
        raise ShopUnavailable("the shop's coupon is not an object")
    return str(coupon["id"])


def coupon_body(spec: CouponSpec) -> dict[str, Any]:
    """A coupon in WooCommerce's JSON (`/wp-json/wc/v3/coupons`)."""
    if spec.cart_amount_off is not None:
        kind, amount = "fixed_cart", spec.cart_amount_off
    elif spec.percent_off is not None:
        kind, amount = "percent", spec.percent_off
    else:
        kind, amount = "fixed_product", spec.amount_off or Decimal("0")
    ids = sorted({int(i) for i in spec.product_ids if i.isdigit()})
    return {
        "code": spec.code,
        "description": spec.title,
        "discount_type": kind,
        "amount": f"{amount:.2f}",
        "product_ids": ids,
        "individual_use": spec.cart_amount_off is not None,
        "exclude_sale_items": False,
        # WooCommerce writes `date_expires` (its `_gmt` twin is read-only), UTC when it ends in Z,
        # and skips null fields: "" clears a date, 0 a limit.
        "date_expires": _utc(spec.ends_at),
        "usage_limit": spec.usage_limit or 0,
        "usage_limit_per_user": spec.usage_limit_per_user or 0,
        "minimum_amount": f"{spec.minimum_spend:.2f}" if spec.minimum_spend is not None else "",
    }


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _error_message(answer: httpx.Response) -> str:
    """WooCommerce's errors are `{"code", "message", "data"}`."""
    try:
        found = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    message = found.get("message") if isinstance(found, dict) else None
    return str(message)[:200] if message else f"HTTP {answer.status_code}"
