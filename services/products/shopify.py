"""The Shopify catalog source: the shop's Admin GraphQL API.

Every call is one `POST {url}/admin/api/{API_VERSION}/graphql.json` with the access token in
`X-Shopify-Access-Token`. Shopify meters calls by query cost (a bucket of points refilled every
second, `extensions.cost.throttleStatus` in each answer): a throttled call waits what the bucket
needs and tries again, a few times. The documents sent and how their answers read are in
`shopify_format.py`; this module holds the conversation.

Catalog pages count products, like WooCommerce's: `search(limit=20, offset=40)` lists the 41st to
60th product matching (by title), every variant of each a product of its own, so a page may hold
more entries than `limit`; the total is Shopify's `productsCount`. GraphQL pages by cursor, so an
offset is walked: one light request (a cursor, no fields) per 250 products skipped. A page costs
one request per `PRODUCTS_PER_REQUEST` products, plus one for each product with more than
`VARIANTS_PER_PRODUCT` variants.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from services.products import shopify_discounts as discounts
from services.products import shopify_documents as gql
from services.products import shopify_format as fmt
from services.products.shops import (
    Attribution,
    CheckoutLine,
    CouponSpec,
    ShopProduct,
    ShopRefused,
    ShopUnavailable,
)

API_VERSION = "2025-07"

THROTTLE_ATTEMPTS = 4  # a call throttled this many times gives up
THROTTLE_WAIT_MAX_S = 10.0  # a bucket needing longer to refill is not waited for
SKIP_MAX = 250
PRODUCTS_PER_REQUEST = 6
VARIANTS_PER_PRODUCT = 16
MORE_VARIANTS = 100


class ShopifyShop:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        url: str,
        access_token: str,
        storefront_url: str | None = None,
    ) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.access_token = access_token
        self.storefront_url = (storefront_url or url).rstrip("/")
        self.endpoint = f"{self.url}/admin/api/{API_VERSION}/graphql.json"

    # --- the conversation ------------------------------------------------------------------------

    async def _post(self, document: str, variables: dict[str, Any]) -> httpx.Response:
        try:
            return await self.client.post(
                self.endpoint,
                json={"query": document, "variables": variables},
                headers={"X-Shopify-Access-Token": self.access_token},
            )
        except httpx.HTTPError as error:
            raise ShopUnavailable(f"Shopify did not answer: {type(error).__name__}") from None

    async def _graphql(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The answer's `data`. A throttled call waits for the bucket to refill, then again."""
        for attempt in range(1, THROTTLE_ATTEMPTS + 1):
            answer = await self._post(document, variables)
            if answer.status_code == 429:
                wait = fmt.retry_after(answer.headers.get("Retry-After"))
            else:
                found = _json(answer)
                errors = found.get("errors")
                if not errors:
                    data = found.get("data")
                    if not isinstance(data, dict):
                        raise ShopUnavailable("Shopify's answer has no data")
                    return data
                if not fmt.throttled(errors):
                    raise ShopUnavailable(fmt.error_reason(errors))
                wait = fmt.throttle_wait(found.get("extensions"), limit_s=THROTTLE_WAIT_MAX_S)
            if wait is None or attempt == THROTTLE_ATTEMPTS:
                raise ShopUnavailable("Shopify's rate limit: too many calls, try again shortly")
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    # --- the catalog -----------------------------------------------------------------------------

    async def search(
        self, *, search: str | None, limit: int, offset: int
    ) -> tuple[list[ShopProduct], int]:
        """Products `offset` to `offset + limit` of those active and matching (by title or SKU),
        in title order, each variant a product; and how many products match in all."""
        query = fmt.search_query(search)
        after, total, exhausted = await self._skip(query, offset)
        found: list[ShopProduct] = []
        taken = 0
        while not exhausted and taken < limit:
            data = await self._graphql(
                gql.PRODUCTS,
                {
                    "first": min(limit - taken, PRODUCTS_PER_REQUEST),
                    "after": after,
                    "query": query,
                    "variants": VARIANTS_PER_PRODUCT,
                },
            )
            with _reading():
                currency = fmt.currency(data)
                total = fmt.count(data, default=total)
                nodes, after, more = fmt.page(data["products"])
                for node in nodes:
                    variants = await self._variants(node)
                    found += [fmt.variant_product(v, node, currency=currency) for v in variants]
            taken += len(nodes)
            exhausted = not more or not nodes
        return found, total if total is not None else offset + taken

    async def _skip(self, query: str, count: int) -> tuple[str | None, int | None, bool]:
        """The cursor after the first `count` products, the products' total, and whether none
        are left; one light request per `SKIP_MAX` products."""
        after: str | None = None
        total: int | None = None
        while count > 0:
            first = min(count, SKIP_MAX)
            data = await self._graphql(gql.SKIP, {"first": first, "after": after, "query": query})
            with _reading():
                total = fmt.count(data, default=total)
                info = data["products"]["pageInfo"]
                if not info["hasNextPage"]:
                    return None, total, True
                after = info["endCursor"]
            count -= first
        return after, total, False

    async def _variants(self, product: dict[str, Any]) -> list[dict[str, Any]]:
        """All the variants of a product node: those it came with, and the rest."""
        variants, after, more = fmt.page(product["variants"])
        while more:
            data = await self._graphql(
                gql.MORE_VARIANTS, {"id": product["id"], "first": MORE_VARIANTS, "after": after}
            )
            if not isinstance(data.get("product"), dict):
                break  # deleted meanwhile: what came is what there is
            page, after, more = fmt.page(data["product"]["variants"])
            variants += page
        return variants

    async def product(self, external_id: str) -> ShopProduct | None:
        """One variant by its numeric id; None once Shopify no longer has it."""
        if not external_id.isdigit():
            return None
        data = await self._graphql(gql.VARIANT, {"id": fmt.gid("ProductVariant", external_id)})
        variant = data.get("productVariant")
        if variant is None:
            return None
        with _reading():
            return fmt.variant_product(variant, variant["product"], currency=fmt.currency(data))

    async def currency(self) -> str:
        """The shop's currency (ISO 4217)."""
        data = await self._graphql(gql.SHOP, {})
        with _reading():
            return fmt.currency(data)

    # --- discount codes: the live's prices, made real at Shopify's checkout -----------------------

    async def put_coupon(self, spec: CouponSpec, *, known_id: str | None) -> str:
        """Create the discount code, or bring the one holding it (found by id, else by code) up
        to `spec`, its variants replaced; returns the discount's GID."""
        discount = discounts.discount_input(spec)
        found = await self._discount(code=spec.code, known_id=known_id)
        if found is None:
            created = await self._mutate(
                gql.CREATE,
                {"discount": discount | {"startsAt": discounts.iso(spec.starts_at or _now())}},
                "discountCodeBasicCreate",
            )
            if created.errors and discounts.code_taken(created.errors):
                found = await self._discount(code=spec.code, known_id=None)  # made meanwhile
            if found is None:
                return created.node_id()
        if found.kind != "DiscountCodeBasic":
            raise ShopRefused(f"Shopify holds the code {spec.code} for another kind of discount")
        # The variants are replaced: those new added, those gone removed (with any product the
        # merchant added by hand, since the live's offer names variants).
        discount["customerGets"]["items"] = discounts.variants_change(spec, holding=found)
        updated = await self._mutate(
            gql.UPDATE, {"id": found.id, "discount": discount}, "discountCodeBasicUpdate"
        )
        return updated.node_id()

    async def withdraw_coupon(self, *, code: str, known_id: str | None) -> None:
        """Deactivate the code (Shopify ends it now; orders keep what they got)."""
        found = await self._discount(code=code, known_id=known_id)
        if found is None or found.status == "EXPIRED" or found.kind != "DiscountCodeBasic":
            return  # gone, over already, or another discount than ours
        deactivated = await self._mutate(gql.DEACTIVATE, {"id": found.id}, "discountCodeDeactivate")
        deactivated.node_id()

    async def _discount(self, *, code: str, known_id: str | None) -> discounts.Discount | None:
        if known_id and known_id.startswith(discounts.DISCOUNT_GID):
            data = await self._graphql(gql.DISCOUNT_BY_ID, {"id": known_id})
            if data.get("codeDiscountNode"):
                with _reading():
                    return discounts.discount(data["codeDiscountNode"])
        data = await self._graphql(gql.DISCOUNT_BY_CODE, {"code": code})
        node = data.get("codeDiscountNodeByCode")
        if not node:
            return None
        with _reading():
            return discounts.discount(node)

    async def _mutate(self, document: str, variables: dict[str, Any], root: str) -> "Mutation":
        data = await self._graphql(document, variables)
        answer = data.get(root)
        if not isinstance(answer, dict):
            raise ShopUnavailable(f"Shopify's answer has no {root}")
        return Mutation(answer)

    def checkout_url(
        self, *, lines: list[CheckoutLine], codes: list[str], attribution: Attribution
    ) -> str | None:
        """The cart permalink: Shopify's cart with these variants, the codes applied, and the
        live and cart as cart attributes (they come back on the order)."""
        return fmt.cart_permalink(
            self.storefront_url, lines=lines, codes=codes, attribution=attribution
        )


class Mutation:
    """A mutation's answer: its node, or the `userErrors` that refused it."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.errors: list[dict[str, Any]] = [
            e for e in answer.get("userErrors") or [] if isinstance(e, dict)
        ]

    def node_id(self) -> str:
        if self.errors:
            raise ShopRefused(discounts.refusal(self.errors))
        node = self.answer.get("codeDiscountNode")
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise ShopUnavailable("Shopify's answer names no discount")
        return node["id"]


def _json(answer: httpx.Response) -> dict[str, Any]:
    if answer.status_code != 200:
        raise ShopUnavailable(fmt.status_reason(answer.status_code))
    try:
        found = answer.json()
    except ValueError:
        raise ShopUnavailable("Shopify answered something else than JSON") from None
    if not isinstance(found, dict):
        raise ShopUnavailable("Shopify's answer is not a JSON object")
    return found


@contextmanager
def _reading() -> Iterator[None]:
    """An answer not shaped like what was asked is the shop's fault, told as such."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ShopUnavailable(f"Shopify's answer is not what was asked ({error!r:.80})") from None


def _now() -> datetime:
    return datetime.now(UTC)
