"""A local stand-in for a Shopify shop: its Admin GraphQL API and its cart permalinks, over HTTPS.

- `POST /admin/api/<version>/graphql.json` (the version Vitrine pins; others 404), with
  `X-Shopify-Access-Token` (401 otherwise). Documents are parsed (`graphql_lite`) and answered
  with exactly the fields asked, from products, variants and code discounts kept here: `shop`,
  `products` (search syntax, sort keys, cursors), `productsCount`, `product`, `productVariant`,
  `codeDiscountNode`, `codeDiscountNodeByCode`, and the mutations `discountCodeBasicCreate`,
  `discountCodeBasicUpdate`, `discountCodeDeactivate` with Shopify's `userErrors`. Every answer
  carries `extensions.cost`; a leaky bucket answers `THROTTLED` when it runs dry, and a query
  over 1000 points is refused. Tests can force throttling, HTTP errors, 429s, slowness.
- `GET /cart/VARIANT:QTY,…?discount=…&attributes[…]=…` redirects to a checkout like the online
  store does, and is recorded.
- Webhooks: `delivery()` signs and heads a body like Shopify does; `products_update()` and
  `inventory_levels_update()` build the REST JSON of those topics from the shop's state.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.products.shopify import API_VERSION
from tests.support.graphql_lite import Executor, GraphQLError, evaluate, parse, requested_cost
from tests.support.shopify_graph import Discount, Product, Variant, gid, now, query
from tests.support.shopify_mutations import mutate
from tests.support.tls import serving_https

SHOP_DOMAIN = "vitrine-demo.myshopify.com"
MAX_QUERY_COST = 1000


@dataclass
class Seen:
    """One GraphQL call the shop received."""

    operation: str | None
    fields: list[str]
    variables: dict[str, Any]
    authorized: bool
    cost: int = 0


@dataclass
class CartVisit:
    """A cart permalink a viewer opened."""

    lines: list[tuple[int, int]]
    discounts: list[str]
    attributes: dict[str, str]
    ref: str | None


@dataclass
class Bucket:
    """Shopify's leaky bucket of query points."""

    maximum: float = 2000.0
    restore_rate: float = 100.0
    available: float = 2000.0
    at: float = field(default_factory=time.monotonic)

    def refill(self) -> float:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self.at) * self.restore_rate)
        self.at = now
        return self.available

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available),
            "restoreRate": self.restore_rate,
        }


@dataclass
class Fault:
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"errors":"Internal error"}'


class FakeShopify:
    def __init__(self) -> None:
        self.access_token = "shpat_" + "c3" * 16
        self.currency = "EUR"
        self.domain = SHOP_DOMAIN
        self.products: dict[int, Product] = {}
        self.discounts: dict[int, Discount] = {}
        self.requests: list[Seen] = []
        self.carts: list[CartVisit] = []
        self.bucket = Bucket()
        self.url = ""
        self.ca_bundle = ""
        self.delay_s = 0.0
        self._faults: list[Fault] = []
        self._throttled = 0
        self._ids = itertools.count(1)

    # --- the catalog, as a test arranges it ----------------------------------------------------

    def add(
        self,
        title: str,
        *,
        variants: list[dict[str, Any]] | None = None,
        description: str = "",
        images: int = 1,
        status: str = "ACTIVE",
    ) -> Product:
        """A product; each variant `{"title", "price", "stock", "sku", "tracked", "policy",
        "image"}`, by default one "Default Title" variant at 19.90 with 10 in stock."""
        number = next(self._ids)
        product_id = 8_100_000_000_000 + number
        handle = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        product = Product(
            id=product_id,
            title=title,
            handle=handle,
            description=description,
            images=[f"{self.url}/cdn/shop/files/{handle}-{n}.jpg" for n in range(images)],
            variants=[],
            status=status,
        )
        for spec in variants or [{}]:
            number = next(self._ids)
            product.variants.append(
                Variant(
                    id=44_000_000_000_000 + number,
                    product_id=product_id,
                    title=spec.get("title", "Default Title"),
                    price=spec.get("price", "19.90"),
                    sku=spec.get("sku"),
                    inventory_item_id=46_000_000_000_000 + number,
                    quantity=spec.get("stock", 10),
                    tracked=spec.get("tracked", True),
                    policy=spec.get("policy", "DENY"),
                    image=spec.get("image"),
                )
            )
        self.products[product_id] = product
        return product

    def variant(self, variant_id: int) -> Variant:
        return next(v for p in self.products.values() for v in p.variants if v.id == variant_id)

    def change(self, product: Product, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(product, name, value)
        product.updated_at = now()

    def change_variant(self, variant: Variant, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(variant, name, value)
        self.products[variant.product_id].updated_at = now()

    def discount(self, code: str) -> Discount | None:
        return next((d for d in self.discounts.values() if d.code.lower() == code.lower()), None)

    # --- faults, as a test asks for them -------------------------------------------------------

    def fail(self, status: int = 503, *, times: int = 1) -> None:
        self._faults.append(Fault(status, times))

    def too_many(self, *, times: int = 1, retry_after: str = "0.05") -> None:
        self._faults.append(Fault(429, times, {"Retry-After": retry_after}, b'{"errors":"x"}'))

    def garbage(self, *, times: int = 1) -> None:
        self._faults.append(Fault(200, times, {"Content-Type": "text/html"}, b"<html>oops"))

    def throttle(self, *, times: int = 1) -> None:
        """The next calls are THROTTLED, with a bucket that refills in milliseconds."""
        self._throttled += times

    def reset(self) -> None:
        """No fault left, a full bucket, no delay."""
        self._faults.clear()
        self._throttled = 0
        self.bucket = Bucket()
        self.delay_s = 0.0

    def seen(self, operation: str) -> list[Seen]:
        return [r for r in self.requests if r.operation == operation]

    # --- webhooks --------------------------------------------------------------------------------

    def products_update(self, product: Product) -> dict[str, Any]:
        """The `products/update` payload of `product` (Shopify's REST JSON, as sent lately:
        variants without `inventory_management`)."""
        images = [
            {
                "id": product.id * 10 + n,
                "product_id": product.id,
                "position": n + 1,
                "alt": None,
                "width": 1200,
                "height": 1200,
                "src": src,
                "variant_ids": [v.id for v in product.variants if v.image == src],
                "admin_graphql_api_id": gid("MediaImage", product.id * 10 + n),
            }
            for n, src in enumerate(product.images)
        ]
        image_ids = {image["src"]: image["id"] for image in images}
        updated = product.updated_at.isoformat()
        return {
            "admin_graphql_api_id": gid("Product", product.id),
            "body_html": f"<p>{product.description}</p>",
            "created_at": updated,
            "handle": product.handle,
            "id": product.id,
            "product_type": "",
            "published_at": updated if product.published else None,
            "template_suffix": None,
            "title": product.title,
            "updated_at": updated,
            "vendor": "Vitrine demo",
            "status": product.status.lower(),
            "published_scope": "global",
            "tags": "",
            "variants": [
                {
                    "admin_graphql_api_id": gid("ProductVariant", v.id),
                    "barcode": None,
                    "compare_at_price": None,
                    "created_at": updated,
                    "id": v.id,
                    "inventory_policy": v.policy.lower(),
                    "position": position,
                    "price": v.price,
                    "product_id": product.id,
                    "sku": v.sku,
                    "taxable": True,
                    "title": v.title,
                    "updated_at": updated,
                    "option1": v.title,
                    "option2": None,
                    "option3": None,
                    "image_id": image_ids.get(v.image or ""),
                    "inventory_item_id": v.inventory_item_id,
                    "inventory_quantity": v.quantity,
                    "old_inventory_quantity": v.quantity,
                }
                for position, v in enumerate(product.variants, start=1)
            ],
            "options": [
                {"name": "Title", "position": 1, "values": [v.title for v in product.variants]}
            ],
            "images": images,
            "image": images[0] if images else None,
            "media": [],
            "variant_gids": [
                {"admin_graphql_api_id": gid("ProductVariant", v.id), "updated_at": updated}
                for v in product.variants
            ],
            "has_variants_that_requires_components": False,
            "category": None,
        }

    def inventory_levels_update(self, variant: Variant, *, available: int | None = None) -> dict:
        """The `inventory_levels/update` payload: one inventory item's level at one location."""
        location = 24_826_418
        return {
            "inventory_item_id": variant.inventory_item_id,
            "location_id": location,
            "available": variant.quantity if available is None else available,
            "updated_at": now().isoformat(),
            "admin_graphql_api_id": (
                f"gid://shopify/InventoryLevel/{location}?inventory_item_id={variant.inventory_item_id}"
            ),
        }

    # --- the GraphQL side ------------------------------------------------------------------------

    async def graphql(self, request: Request) -> Response:
        if request.path_params["version"] != API_VERSION:
            return JSONResponse({"errors": "Not Found"}, 404)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        authorized = request.headers.get("x-shopify-access-token") == self.access_token
        try:
            body = json.loads(await request.body())
            document = parse(body["query"])
            operation = document.operation(body.get("operationName"))
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"errors": [{"message": f"Bad request: {error}"}]}, 400)
        except GraphQLError as error:
            return JSONResponse({"errors": [error.as_json()]})
        variables = body.get("variables") or {}
        seen = Seen(
            operation.name,
            [getattr(s, "name", "...") for s in operation.selections],
            variables,
            authorized,
        )
        self.requests.append(seen)
        if not authorized:
            return JSONResponse(
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong"
                 " password)"},
                401,
            )  # fmt: skip
        for fault in self._faults:
            if fault.times > 0:
                fault.times -= 1
                return Response(fault.body, fault.status, headers=fault.headers)
        executor = Executor(document, variables)
        mutation = operation.kind == "mutation"
        asked = requested_cost(executor, operation.selections, mutation=mutation)
        seen.cost = asked
        if asked > MAX_QUERY_COST:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {asked}, which exceeds the single query"
                            f" max cost limit ({MAX_QUERY_COST}).",
                            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": asked,
                                           "maxCost": MAX_QUERY_COST},
                        }
                    ]
                }
            )  # fmt: skip
        if self._throttled > 0 or self.bucket.refill() < asked:
            return self._throttled_answer(asked)
        self.bucket.available -= asked
        try:
            data, actual = {}, 0
            for selected in executor.fields(operation.selections, "Mutation" if mutation else None):
                value = self._root(selected.name, selected.args, executor, mutation=mutation)
                data[selected.alias], cost = executor.answer(
                    value, selected.selections, [selected.alias]
                )
                actual += cost + (10 if mutation else 0)
        except GraphQLError as error:
            self.bucket.available += asked
            return JSONResponse(
                {"errors": [error.as_json()], "extensions": self._cost(asked, None)}
            )
        self.bucket.available = min(
            self.bucket.maximum, self.bucket.available + max(asked - actual, 0)
        )
        return JSONResponse({"data": data, "extensions": self._cost(asked, min(actual, asked))})

    def _cost(self, asked: int, actual: int | None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": asked,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }

    def _throttled_answer(self, asked: int) -> JSONResponse:
        extensions = self._cost(asked, None)
        if self._throttled > 0:
            self._throttled -= 1
            extensions["cost"]["throttleStatus"] = {
                "maximumAvailable": self.bucket.maximum,
                "currentlyAvailable": max(asked - 20, 0),
                "restoreRate": 1000.0,
            }
        return JSONResponse(
            {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/limits",
                        },
                    }
                ],
                "extensions": extensions,
            }
        )

    def _root(self, name: str, raw: dict[str, Any], executor: Executor, *, mutation: bool) -> Any:
        args = evaluate(raw, executor.variables)
        return (mutate if mutation else query)(self, name, args)

    # --- the online store's cart permalink -------------------------------------------------------

    async def cart(self, request: Request) -> Response:
        lines = []
        for part in request.path_params["items"].split(","):
            variant_id, _, quantity = part.partition(":")
            if not variant_id.isdigit() or not quantity.isdigit() or int(quantity) < 1:
                return HTMLResponse("<h1>Cart error</h1>", 422)
            try:
                variant = self.variant(int(variant_id))
            except StopIteration:
                return HTMLResponse("<h1>Product not available</h1>", 404)
            product = self.products[variant.product_id]
            if product.status != "ACTIVE" or not product.published:
                return HTMLResponse("<h1>Product not available</h1>", 404)
            lines.append((variant.id, int(quantity)))
        query = dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))
        attributes = {
            key[len("attributes[") : -1]: value
            for key, value in query.items()
            if key.startswith("attributes[") and key.endswith("]")
        }
        discounts = [code for code in query.get("discount", "").split(",") if code]
        self.carts.append(CartVisit(lines, discounts, attributes, query.get("ref")))
        return RedirectResponse(f"{self.url}/checkouts/cn/{uuid.uuid4().hex}", 302)

    async def checkout(self, request: Request) -> Response:
        return HTMLResponse("<h1>Checkout</h1>")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/admin/api/{version}/graphql.json", self.graphql, methods=["POST"]),
                Route("/cart/{items:path}", self.cart),
                Route("/checkouts/cn/{token}", self.checkout),
            ]
        )


# --- webhooks, as Shopify delivers them -----------------------------------------------------------


def signature(body: bytes, secret: str) -> str:
    """`X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 over the raw body with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(
    payload: dict[str, Any],
    *,
    topic: str,
    secret: str,
    webhook_id: str | None = None,
    shop_domain: str = SHOP_DOMAIN,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one webhook delivery."""
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": now().isoformat(),
    }


def closed_url() -> str:
    """An HTTPS address where nothing listens (a shop that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}"


@contextlib.contextmanager
def running_shopify() -> Iterator[FakeShopify]:
    """A stand-in Shopify listening on 127.0.0.1 (a spare port) until the block ends."""
    shop = FakeShopify()
    with serving_https(shop.app(), name="shopify") as (shop.url, shop.ca_bundle):
        yield shop
