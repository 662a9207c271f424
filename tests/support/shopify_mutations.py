"""The Shopify stand-in's discount mutations: `discountCodeBasicCreate`, `discountCodeBasicUpdate`
and `discountCodeDeactivate`, refusing with Shopify's `userErrors` what Shopify refuses, and with a
GraphQL error an input field the pinned API version does not have."""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.support.graphql_lite import GraphQLError
from tests.support.shopify_graph import Discount, discount_node, number

if TYPE_CHECKING:
    from tests.support.shopify import FakeShopify

CODE_MAX = 255
INPUT_FIELDS = {  # DiscountCodeBasicInput as of 2025-07 (`context` arrives in 2025-10)
    "appliesOncePerCustomer", "code", "combinesWith", "customerGets", "customerSelection",
    "endsAt", "minimumRequirement", "recurringCycleLimit", "startsAt", "title", "usageLimit",
}  # fmt: skip


def mutate(shop: "FakeShopify", name: str, args: dict[str, Any]) -> Any:
    if name == "discountCodeBasicCreate":
        return _put(shop, None, args["basicCodeDiscount"])
    if name == "discountCodeBasicUpdate":
        return _put(shop, args["id"], args["basicCodeDiscount"])
    if name == "discountCodeDeactivate":
        found = shop.discounts.get(number(args["id"], "DiscountCodeNode") or 0)
        if found is None:
            return _refused([["id"], "INVALID", "Discount does not exist"])
        if found.status != "EXPIRED":
            found.ends_at = datetime.now(UTC)
        return {"codeDiscountNode": discount_node(shop, found), "userErrors": []}
    raise GraphQLError(f"Field '{name}' doesn't exist on type 'Mutation'", code="undefinedField")


def _refused(*errors: list[Any]) -> dict[str, Any]:
    return {
        "codeDiscountNode": None,
        "userErrors": [
            {"__typename": "DiscountUserError", "field": f, "code": c, "message": m}
            for f, c, m in errors
        ],
    }


def _moment(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(
            f"Variable $discount was provided invalid value for {name} (invalid DateTime)",
            code="INVALID_VARIABLE",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _put(shop: "FakeShopify", node_id: Any, given: dict[str, Any]) -> dict[str, Any]:
    """Create (no id) or update a basic code discount, refusing what Shopify refuses."""
    unknown = set(given) - INPUT_FIELDS
    if unknown:
        raise GraphQLError(
            f"Variable $discount of type DiscountCodeBasicInput! was provided invalid value for"
            f" {sorted(unknown)[0]} (Field is not defined on DiscountCodeBasicInput)",
            code="INVALID_VARIABLE",
        )
    found = None
    if node_id is not None:
        found = shop.discounts.get(number(node_id, "DiscountCodeNode") or 0)
        if found is None:
            return _refused([["id"], "INVALID", "Discount does not exist"])
    at = ["basicCodeDiscount"]
    errors: list[list[Any]] = []
    code = given.get("code", found.code if found else None)
    title = given.get("title", found.title if found else None)
    starts = _moment(given["startsAt"], "startsAt") if "startsAt" in given else None
    starts = starts or (found.starts_at if found else None)
    ends = (
        _moment(given.get("endsAt"), "endsAt")
        if "endsAt" in given
        else (found.ends_at if found else None)
    )
    if not code or not str(code).strip():
        errors.append([[*at, "code"], "BLANK", "Code can't be blank"])
    elif len(code) > CODE_MAX:
        errors.append([[*at, "code"], "TOO_LONG", "Code is too long (maximum is 255 characters)"])
    else:
        holder = shop.discount(code)
        if holder is not None and holder is not found:
            errors.append(
                [[*at, "code"], "TAKEN", "Code must be unique. Please try a different code."]
            )
    if not title:
        errors.append([[*at, "title"], "BLANK", "Title can't be blank"])
    if starts is None:
        errors.append([[*at, "startsAt"], "BLANK", "Starts at can't be blank"])
    elif ends is not None and ends <= starts:
        errors.append([[*at, "endsAt"], "INVALID", "Ends at needs to be after starts_at"])
    if found is None and "customerSelection" not in given:
        errors.append([[*at, "customerSelection"], "BLANK", "Customer selection can't be blank"])
    gets = given.get("customerGets")
    if found is None and not gets:
        errors.append([[*at, "customerGets"], "BLANK", "Customer gets can't be blank"])
    value = found.value if found else None
    variant_ids = list(found.variant_ids) if found else []
    product_ids = list(found.product_ids) if found else []
    if gets:
        value, problems = _value(gets.get("value"), at, value)
        errors += problems
        products = (gets.get("items") or {}).get("products")
        if products is not None:
            known = {v.id for p in shop.products.values() for v in p.variants}
            for gone in products.get("productVariantsToRemove") or []:
                if (n := number(gone, "ProductVariant")) in variant_ids:
                    variant_ids.remove(n)
            for gone in products.get("productsToRemove") or []:
                if (n := number(gone, "Product")) in product_ids:
                    product_ids.remove(n)
            for added in products.get("productVariantsToAdd") or []:
                n = number(added, "ProductVariant")
                if n is None or n not in known:
                    where = [*at, "customerGets", "items", "products", "productVariantsToAdd"]
                    errors.append([where, "INVALID", f"Product variant {added} does not exist"])
                elif n not in variant_ids:
                    variant_ids.append(n)
            for added in products.get("productsToAdd") or []:
                n = number(added, "Product")
                if n is not None and n not in product_ids:
                    product_ids.append(n)
        if found is None and not variant_ids and not product_ids:
            errors.append([[*at, "customerGets", "items"], "BLANK", "Items can't be blank"])
    if errors:
        return _refused(*errors)
    assert starts is not None and value is not None and title and code
    discount = found or Discount(
        id=1_200_000_000 + len(shop.discounts) + 1,
        title="", code="", starts_at=starts, ends_at=None, value={}, variant_ids=[],
        product_ids=[], usage_limit=None, once_per_customer=False, combines_with={},
        all_customers=True,
    )  # fmt: skip
    discount.title, discount.code, discount.starts_at, discount.ends_at = title, code, starts, ends
    discount.value, discount.variant_ids, discount.product_ids = value, variant_ids, product_ids
    if "usageLimit" in given:
        discount.usage_limit = given["usageLimit"]
    if "appliesOncePerCustomer" in given:
        discount.once_per_customer = bool(given["appliesOncePerCustomer"])
    if "combinesWith" in given:
        discount.combines_with = {k: bool(v) for k, v in (given["combinesWith"] or {}).items()}
    if "customerSelection" in given:
        discount.all_customers = bool((given["customerSelection"] or {}).get("all"))
    shop.discounts[discount.id] = discount
    return {"codeDiscountNode": discount_node(shop, discount), "userErrors": []}


def _value(
    given: Any, at: list[str], old: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, list[list[Any]]]:
    where = [*at, "customerGets", "value"]
    if not given:
        return old, [] if old else [[where, "BLANK", "Value can't be blank"]]
    if "percentage" in given:
        percentage = given["percentage"]
        if not isinstance(percentage, int | float) or not 0 < percentage <= 1:
            return old, [[[*where, "percentage"], "VALUE_OUTSIDE_RANGE",
                          "Value must be between 0.0 and 1.0"]]  # fmt: skip
        return {"percentage": float(percentage)}, []
    amount = given.get("discountAmount") or {}
    try:
        money = Decimal(str(amount.get("amount")))
    except InvalidOperation:
        money = Decimal(0)
    if not money.is_finite() or money <= 0:
        return old, [[[*where, "discountAmount", "amount"], "GREATER_THAN",
                      "Value must be greater than 0"]]  # fmt: skip
    return {
        "amount": f"{money:.2f}",
        "appliesOnEachItem": bool(amount.get("appliesOnEachItem")),
    }, []
