"""A local stand-in for a WooCommerce shop's REST API (`/wp-json/wc/v3`), over HTTPS.

It answers in WooCommerce's JSON format (products, errors, the current currency), paginates like
WordPress (`page`/`per_page` or `offset`, `X-WP-Total`, `X-WP-TotalPages`, `Link`), and checks the
consumer key and secret the way WooCommerce does over HTTPS: HTTP Basic credentials, or the
`consumer_key`/`consumer_secret` query parameters. It runs uvicorn on a thread with a self-signed
certificate; `ca_bundle` is the file a client must trust. Its coupons, checkout link and orders
are in `woocommerce_checkout.py`.
"""

import base64
import contextlib
import datetime
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.tls import serving_https
from tests.support.woocommerce_checkout import Store

API = "/wp-json/wc/v3"


@dataclass
class Seen:
    """One request the shop received."""

    path: str
    query: dict[str, str]
    authorized: bool
    method: str = "GET"


@dataclass
class FakeShop:
    consumer_key: str = "ck_" + "a1" * 20
    consumer_secret: str = "cs_" + "b2" * 20
    currency: str = "EUR"
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    ca_bundle: str = ""
    store: Store = field(default_factory=Store)
    _next_id: int = 100

    def add(
        self,
        name: str,
        *,
        price: str = "19.90",
        sku: str = "",
        stock: int | None = None,
        description: str = "",
        images: int = 1,
    ) -> dict[str, Any]:
        """A simple published product, as `GET /products/<id>` shows it."""
        self._next_id += 1
        product_id = self._next_id
        slug = name.lower().replace(" ", "-")
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0, tzinfo=None).isoformat()
        product = {
            "id": product_id,
            "name": name,
            "slug": slug,
            "permalink": f"{self.url}/product/{slug}/",
            "date_created": now,
            "date_created_gmt": now,
            "date_modified": now,
            "date_modified_gmt": now,
            "type": "simple",
            "status": "publish",
            "featured": False,
            "catalog_visibility": "visible",
            "description": f"<p>{description}</p>\n" if description else "",
            "short_description": "",
            "sku": sku,
            "price": price,
            "regular_price": price,
            "sale_price": "",
            "price_html": f'<span class="woocommerce-Price-amount amount">{price}</span>',
            "on_sale": False,
            "purchasable": True,
            "total_sales": 0,
            "virtual": False,
            "downloadable": False,
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": stock is not None,
            "stock_quantity": stock,
            "stock_status": "instock" if stock is None or stock > 0 else "outofstock",
            "backorders": "no",
            "sold_individually": False,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
            "tags": [],
            "images": [
                {
                    "id": product_id * 10 + n,
                    "date_created": now,
                    "src": f"{self.url}/wp-content/uploads/{slug}-{n}.jpg",
                    "name": f"{slug}-{n}",
                    "alt": "",
                }
                for n in range(images)
            ],
            "attributes": [],
            "variations": [],
            "meta_data": [],
            "_links": {
                "self": [{"href": f"{self.url}{API}/products/{product_id}"}],
                "collection": [{"href": f"{self.url}{API}/products"}],
            },
        }
        self.products[product_id] = product
        return product

    def add_variable(
        self, name: str, *, variations: list[tuple[str, str]], stock: int | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A variable product and its variations, given as (option, price) pairs."""
        parent = self.add(name, price="")
        parent.update(type="variable", price="", regular_price="")
        made = []
        for option, price in variations:
            variation = self.add(f"{name} {option}", price=price, stock=stock, images=0)
            variation.update(
                type="variation",
                parent_id=parent["id"],
                name=f"{name} - {option}",
                attributes=[{"id": 1, "name": "Size", "option": option}],
                image={"id": 0, "src": f"{self.url}/wp-content/uploads/{option}.jpg"},
            )
            made.append(variation)
        parent["variations"] = [v["id"] for v in made]
        return parent, made

    def update(self, product_id: int, **changes: Any) -> None:
        product = self.products[product_id]
        product.update(changes)
        if "price" in changes:
            product["regular_price"] = changes["price"]
        if "stock_quantity" in changes:
            product["manage_stock"] = True
            product["stock_status"] = "instock" if changes["stock_quantity"] > 0 else "outofstock"

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == API + path]

    # --- the HTTP side ---------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool | None:
        """True: right credentials; False: wrong ones; None: none at all."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        elif "consumer_key" in request.query_params:
            key = request.query_params["consumer_key"]
            secret = request.query_params.get("consumer_secret", "")
        else:
            return None
        return key == self.consumer_key and secret == self.consumer_secret

    def _guard(self, request: Request) -> JSONResponse | None:
        authorized = self._authorized(request)
        self.requests.append(
            Seen(request.url.path, dict(request.query_params), bool(authorized), request.method)
        )
        if authorized is None:
            return _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if not authorized:
            return _error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        return None

    async def list_products(self, request: Request) -> JSONResponse:
        if (refused := self._guard(request)) is not None:
            return refused
        query = request.query_params
        try:
            per_page = int(query.get("per_page", 10))
            page = int(query.get("page", 1))
            offset = int(query["offset"]) if "offset" in query else (page - 1) * per_page
        except ValueError:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): page")
        if not 1 <= per_page <= 100 or page < 1 or offset < 0:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        found = [
            p
            for p in self.products.values()
            if p["type"] != "variation"
            and p["status"] == query.get("status", p["status"])
            and (
                not query.get("search")
                or query["search"].lower() in (p["name"] + p["description"] + p["sku"]).lower()
            )
        ]
        if query.get("orderby") == "title":
            found.sort(key=lambda p: p["name"].lower(), reverse=query.get("order") == "desc")
        total, pages = len(found), math.ceil(len(found) / per_page)
        if "offset" not in query and page > max(pages, 1):
            return _error(
                400,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        return JSONResponse(
            found[offset : offset + per_page],
            headers={
                "X-WP-Total": str(total),
                "X-WP-TotalPages": str(pages),
                "Link": f'<{self.url}{API}/products?page={page + 1}>; rel="next"'
                if page < pages
                else "",
            },
        )

    async def get_product(self, request: Request) -> JSONResponse:
        if (refused := self._guard(request)) is not None:
            return refused
        product = self.products.get(int(request.path_params["product_id"]))
        if product is None:
            return _error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return JSONResponse(product)

    async def list_variations(self, request: Request) -> JSONResponse:
        if (refused := self._guard(request)) is not None:
            return refused
        parent = self.products.get(int(request.path_params["product_id"]))
        if parent is None:
            return _error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        found = [self.products[i] for i in parent.get("variations", [])]
        return JSONResponse(found, headers={"X-WP-Total": str(len(found)), "X-WP-TotalPages": "1"})

    async def guarded(self, request: Request) -> Response:
        """The coupon API, behind the same credentials as the rest."""
        if (refused := self._guard(request)) is not None:
            return refused
        if "coupon_id" in request.path_params:
            return await self.store.one_coupon(request)
        if request.method == "POST":
            return await self.store.create_coupon(request)
        return await self.store.list_coupons(request)

    async def checkout_link(self, request: Request) -> Response:
        return self.store.checkout_link(self.products, request)

    async def current_currency(self, request: Request) -> JSONResponse:
        if (refused := self._guard(request)) is not None:
            return refused
        return JSONResponse({"code": self.currency, "name": "Euro", "symbol": "&euro;"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"{API}/products", self.list_products),
                Route(f"{API}/products/{{product_id:int}}", self.get_product),
                Route(f"{API}/products/{{product_id:int}}/variations", self.list_variations),
                Route(f"{API}/data/currencies/current", self.current_currency),
                Route(f"{API}/coupons", self.guarded, methods=["GET", "POST"]),
                Route(
                    f"{API}/coupons/{{coupon_id:int}}",
                    self.guarded,
                    methods=["GET", "PUT", "DELETE"],
                ),
                Route("/checkout-link/", self.checkout_link),
                Route("/checkout/", self.store.checkout_page),
            ]
        )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status}}, status)


@contextlib.contextmanager
def running_shop() -> Iterator[FakeShop]:
    """A stand-in shop listening on 127.0.0.1 (a spare port) until the block ends."""
    shop = FakeShop()
    with serving_https(shop.app(), name="woocommerce") as (shop.url, shop.ca_bundle):
        yield shop
