"""The stand-in WooCommerce shop's coupons (`/wp-json/wc/v3/coupons`, REST JSON as WooCommerce
answers it), its shareable checkout link (`/checkout-link/?products=ID:QTY,…&coupon=CODE`,
WooCommerce 9.9+) and the checkout it leads to, priced the way WooCommerce applies coupons, and
the orders a test places there (REST JSON, as an `order.created` webhook carries it)."""

import base64
import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

CENT = Decimal("0.01")
DISCOUNT_TYPES = ("percent", "fixed_cart", "fixed_product")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status}}, status)


@dataclass
class Checkout:
    """A checkout page's cart: what the viewer would pay."""

    token: str
    lines: list[dict[str, Any]]
    coupons: list[str]
    notices: list[str]
    query: dict[str, str]
    total: Decimal = Decimal("0.00")
    discount: Decimal = Decimal("0.00")


@dataclass
class Store:
    """Coupons, checkouts and orders of the stand-in shop (its products live in FakeShop)."""

    coupons: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkouts: dict[str, Checkout] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    # A test makes the coupon API fail: "down" answers 503, "refuse" answers 400.
    coupon_failure: str | None = None
    _next_id: int = 900

    def coupon(self, code: str) -> dict[str, Any] | None:
        code = code.lower()
        return next((c for c in self.coupons.values() if c["code"] == code), None)

    # --- REST coupons --------------------------------------------------------------------------

    def _failure(self) -> JSONResponse | None:
        if self.coupon_failure == "down":
            return _error(503, "service_unavailable", "Service Unavailable")
        if self.coupon_failure == "refuse":
            return _error(400, "woocommerce_rest_invalid_coupon", "Coupons are disabled.")
        return None

    def _write(self, coupon: dict[str, Any], body: dict[str, Any]) -> JSONResponse | None:
        # As WooCommerce's REST controller: each field through its setter, null fields skipped,
        # `date_expires_gmt` read-only (written through `date_expires`, UTC when it ends in Z).
        for name in ("code", "description", "discount_type", "amount", "product_ids",
                     "individual_use", "exclude_sale_items", "usage_limit", "usage_limit_per_user",
                     "minimum_amount"):  # fmt: skip
            if body.get(name) is not None:
                coupon[name] = body[name]
        if body.get("date_expires") is not None:
            expires = body["date_expires"]
            if expires and not expires.endswith("Z"):
                return _error(400, "rest_invalid_param", "the test shop takes UTC dates only")
            coupon["date_expires_gmt"] = expires.removesuffix("Z") or None
        coupon["code"] = str(coupon["code"]).strip().lower()  # wc_format_coupon_code
        if coupon["discount_type"] not in DISCOUNT_TYPES:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): discount_type")
        try:
            Decimal(str(coupon["amount"]))
        except ArithmeticError:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): amount")
        coupon["date_expires"] = coupon.get("date_expires_gmt")
        for name in ("usage_limit", "usage_limit_per_user"):
            coupon[name] = coupon[name] or None  # 0 is no limit
        coupon["date_modified_gmt"] = _now().replace(tzinfo=None, microsecond=0).isoformat()
        return None

    async def list_coupons(self, request: Request) -> JSONResponse:
        if (failed := self._failure()) is not None:
            return failed
        code = request.query_params.get("code")
        found = [c for c in self.coupons.values() if code is None or c["code"] == code.lower()]
        return JSONResponse(found, headers={"X-WP-Total": str(len(found)), "X-WP-TotalPages": "1"})

    async def create_coupon(self, request: Request) -> JSONResponse:
        if (failed := self._failure()) is not None:
            return failed
        body = await request.json()
        if self.coupon(str(body.get("code", ""))) is not None:
            return _error(
                400,
                "woocommerce_rest_coupon_code_already_exists",
                "The coupon code already exists",
            )
        self._next_id += 1
        coupon: dict[str, Any] = {
            "id": self._next_id, "code": "", "amount": "0", "discount_type": "fixed_cart",
            "description": "", "product_ids": [], "individual_use": False,
            "exclude_sale_items": False, "date_expires_gmt": None, "usage_limit": None,
            "usage_limit_per_user": None, "usage_count": 0, "status": "publish",
            "minimum_amount": "",
            "date_created_gmt": _now().replace(tzinfo=None, microsecond=0).isoformat(),
        }  # fmt: skip
        if (refused := self._write(coupon, body)) is not None:
            return refused
        self.coupons[coupon["id"]] = coupon
        return JSONResponse(coupon, 201)

    async def one_coupon(self, request: Request) -> JSONResponse:
        if (failed := self._failure()) is not None:
            return failed
        coupon = self.coupons.get(int(request.path_params["coupon_id"]))
        if coupon is None:  # WooCommerce answers 400 to an update of a deleted coupon
            status = 400 if request.method == "PUT" else 404
            return _error(status, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
        if request.method == "DELETE":
            if request.query_params.get("force") != "true":
                return _error(501, "woocommerce_rest_trash_not_supported", "Use force=true.")
            del self.coupons[coupon["id"]]
            return JSONResponse(coupon)
        if request.method == "PUT":
            body = await request.json()
            other = self.coupon(str(body.get("code", coupon["code"])))
            if other is not None and other["id"] != coupon["id"]:
                return _error(
                    400,
                    "woocommerce_rest_coupon_code_already_exists",
                    "The coupon code already exists",
                )
            if (refused := self._write(coupon, body)) is not None:
                return refused
        return JSONResponse(coupon)

    # --- the storefront -----------------------------------------------------------------------

    def _usable(self, code: str, lines: list[dict[str, Any]]) -> tuple[dict | None, str | None]:
        coupon = self.coupon(code)
        if coupon is None:
            return None, f'Coupon "{code}" cannot be applied because it does not exist.'
        expires = coupon.get("date_expires_gmt")
        if expires and _now() > datetime.datetime.fromisoformat(expires).replace(
            tzinfo=datetime.UTC
        ):
            return None, "This coupon has expired."
        if coupon.get("usage_limit") and coupon["usage_count"] >= coupon["usage_limit"]:
            return None, "Coupon usage limit has been reached."
        if coupon["product_ids"] and not any(_eligible(coupon, line) for line in lines):
            return None, "Sorry, this coupon is not applicable to selected products."
        subtotal = sum((line["subtotal"] for line in lines), Decimal("0"))
        if coupon.get("minimum_amount") and subtotal < Decimal(coupon["minimum_amount"]):
            return None, f"The minimum spend for this coupon is {coupon['minimum_amount']}."
        return coupon, None

    def checkout_link(self, products: dict[int, dict[str, Any]], request: Request) -> Response:
        """What `/checkout-link/` does: empty the cart, add the products, apply the coupon, then
        redirect to the checkout with a session token and the rest of the query string."""
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        lines: list[dict[str, Any]] = []
        for pair in filter(None, query.get("products", "").split(",")):
            product_id, _, quantity = pair.partition(":")
            product = products.get(int(product_id)) if product_id.isdigit() else None
            if product is None or not (quantity or "1").isdigit():
                continue
            price = Decimal(product["price"])
            lines.append(
                {"product_id": product.get("parent_id") or product["id"],
                 "variation_id": product["id"] if product.get("parent_id") else 0,
                 "name": product["name"], "quantity": int(quantity or 1), "price": price,
                 "subtotal": price * int(quantity or 1), "discount": Decimal("0.00")}
            )  # fmt: skip
        if not lines:
            return RedirectResponse("/cart/?wc_error=invalid", 302)
        checkout = Checkout(secrets.token_hex(8), lines, [], [], {})
        if code := query.get("coupon", "").strip():
            coupon, notice = self._usable(code, lines)
            if coupon is None:
                checkout.notices.append(notice or "")
            else:
                _apply(coupon, lines)
                checkout.coupons.append(coupon["code"])
        checkout.query = {k: v for k, v in query.items() if k not in ("products", "coupon")}
        checkout.discount = sum((line["discount"] for line in lines), Decimal("0.00"))
        checkout.total = sum((line["subtotal"] - line["discount"] for line in lines), Decimal("0"))
        self.checkouts[checkout.token] = checkout
        rest = "".join(f"&{k}={v}" for k, v in checkout.query.items())
        return RedirectResponse(f"/checkout/?session={checkout.token}{rest}", 302)

    async def checkout_page(self, request: Request) -> JSONResponse:
        checkout = self.checkouts.get(request.query_params.get("session", ""))
        if checkout is None:
            return JSONResponse({"error": "no such session"}, 404)
        return JSONResponse(
            {
                "lines": [
                    {"name": ln["name"], "product_id": ln["product_id"],
                     "variation_id": ln["variation_id"], "quantity": ln["quantity"],
                     "subtotal": str(ln["subtotal"]), "total": str(ln["subtotal"] - ln["discount"])}
                    for ln in checkout.lines
                ],
                "coupons": checkout.coupons, "notices": checkout.notices,
                "discount": str(checkout.discount), "total": str(checkout.total),
            }
        )  # fmt: skip

    def place_order(self, token: str, *, currency: str = "EUR") -> dict[str, Any]:
        """The viewer pays at the checkout: an order as WooCommerce's REST API (and its
        `order.created` webhook) shows it, with the order attribution WooCommerce records from
        the `utm_*` parameters the checkout was reached with."""
        checkout = self.checkouts[token]
        for code in checkout.coupons:
            coupon = self.coupon(code)
            if coupon is not None:
                coupon["usage_count"] += 1
        self._next_id += 1
        now = _now().replace(tzinfo=None, microsecond=0).isoformat()
        attribution = {
            f"_wc_order_attribution_{name}": checkout.query[name]
            for name in ("utm_source", "utm_medium", "utm_campaign", "utm_content")
            if name in checkout.query
        }
        order = {
            "id": self._next_id, "number": str(self._next_id), "status": "processing",
            "currency": currency, "date_created_gmt": now, "date_modified_gmt": now,
            "total": str(checkout.total), "discount_total": str(checkout.discount),
            "line_items": [
                {"id": self._next_id * 10 + n, "name": ln["name"], "product_id": ln["product_id"],
                 "variation_id": ln["variation_id"], "quantity": ln["quantity"],
                 "subtotal": str(ln["subtotal"]), "total": str(ln["subtotal"] - ln["discount"]),
                 "meta_data": []}
                for n, ln in enumerate(checkout.lines)
            ],
            "coupon_lines": [
                {"id": n, "code": code, "discount": str(checkout.discount)}
                for n, code in enumerate(checkout.coupons)
            ],
            "meta_data": [
                {"id": n, "key": key, "value": value}
                for n, (key, value) in enumerate(attribution.items())
            ],
            "refunds": [],
        }  # fmt: skip
        self.orders[order["id"]] = order
        return order


def _eligible(coupon: dict[str, Any], line: dict[str, Any]) -> bool:
    ids = coupon["product_ids"]
    return not ids or line["product_id"] in ids or line["variation_id"] in ids


def _apply(coupon: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """WooCommerce's discount rules: fixed_product takes the amount off each eligible item,
    percent its share, fixed_cart the amount spread evenly over the eligible items."""
    amount = Decimal(str(coupon["amount"]))
    eligible = [line for line in lines if _eligible(coupon, line)]
    kind = coupon["discount_type"]
    if kind == "fixed_product":
        for line in eligible:
            line["discount"] += min(amount, line["price"]) * line["quantity"]
    elif kind == "percent":
        for line in eligible:
            line["discount"] += (line["subtotal"] * amount / 100).quantize(CENT)
    else:
        items = sum(line["quantity"] for line in eligible)
        per_item = (amount / items).quantize(CENT, rounding=ROUND_DOWN) if items else Decimal(0)
        left = amount - per_item * items
        for line in eligible:
            line["discount"] += min(per_item * line["quantity"], line["subtotal"])
        for line in eligible:  # the cents left over, as WooCommerce hands them out
            extra = min(left, line["subtotal"] - line["discount"])
            line["discount"] += extra
            left -= extra


def sign(body: bytes, secret: str) -> str:
    """`X-WC-Webhook-Signature`: base64 of the body's HMAC-SHA256 with the webhook's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
