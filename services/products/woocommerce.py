"""The WooCommerce catalog source: the shop's REST API (`/wp-json/wc/v3`).

Over HTTPS WooCommerce takes the consumer key and secret as HTTP Basic credentials, which is what
this adapter sends; plain HTTP would need OAuth 1.0a signatures and is refused in the settings.
Lists are paginated with `page`/`per_page` (or `offset`), the totals come in `X-WP-Total` and
`X-WP-TotalPages`.
"""

import html
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from services.products.models import DESCRIPTION_MAX, IMAGES_MAX, NAME_MAX, SKU_MAX, URL_MAX

API = "/wp-json/wc/v3"
PER_PAGE_MAX = 100
_TAG = re.compile(r"<[^>]+>")
_CENT = Decimal("0.01")


class ShopUnavailable(Exception):
    """The shop did not answer, or refused our credentials."""


@dataclass(frozen=True)
class ShopProduct:
    """A product as the shop describes it, already fitted to our catalog's limits."""

    external_id: str
    name: str
    description: str | None
    price: Decimal
    images: list[str]
    stock: int | None
    product_url: str | None
    sku: str | None


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


def shop_product(product: dict[str, Any]) -> ShopProduct:
    """Read one product of WooCommerce's JSON."""
    images = [
        image["src"]
        for image in product.get("images") or []
        if isinstance(image, dict) and isinstance(image.get("src"), str)
    ]
    permalink = product.get("permalink")
    sku = product.get("sku")
    return ShopProduct(
        external_id=str(product["id"]),
        name=_text(product.get("name"), NAME_MAX) or f"#{product['id']}",
        description=_text(product.get("description"), DESCRIPTION_MAX)
        or _text(product.get("short_description"), DESCRIPTION_MAX),
        price=_price(product),
        images=[src for src in images if len(src) <= URL_MAX][:IMAGES_MAX],
        stock=_stock(product),
        product_url=permalink if isinstance(permalink, str) and len(permalink) <= URL_MAX else None,
        sku=str(sku)[:SKU_MAX] if sku else None,
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
        self.base = url.rstrip("/") + API
        self.auth = httpx.BasicAuth(consumer_key, consumer_secret)

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            answer = await self.client.get(self.base + path, params=params, auth=self.auth)
        except httpx.HTTPError as error:
            raise ShopUnavailable(f"the shop did not answer: {type(error).__name__}") from None
        if answer.status_code in (401, 403):
            raise ShopUnavailable("the shop refused the consumer key and secret")
        return answer

    def _json(self, answer: httpx.Response) -> Any:
        if answer.status_code != 200:
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
        products = [shop_product(p) for p in listed if isinstance(p, dict) and "id" in p]
        try:
            total = int(answer.headers["X-WP-Total"])
        except (KeyError, ValueError):
            total = offset + len(products)
        return products[:limit], total

    async def product(self, external_id: str) -> ShopProduct | None:
        """One product by the shop's id; None once the shop no longer has it."""
        answer = await self._get(f"/products/{external_id}")
        if answer.status_code == 404:
            return None
        found = self._json(answer)
        if not isinstance(found, dict) or "id" not in found:
            raise ShopUnavailable("the shop's product is not an object")
        return shop_product(found)

    async def currency(self) -> str:
        """The shop's currency (ISO 4217), which its products do not repeat."""
        found = self._json(await self._get("/data/currencies/current"))
        code = found.get("code") if isinstance(found, dict) else None
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
            raise ShopUnavailable("the shop's currency is not an ISO 4217 code")
        return code
