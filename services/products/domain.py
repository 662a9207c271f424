"""The rules of a live's showcase and cart, free of I/O."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote, urlencode

import orjson

from contracts.streams import StreamStatus

ITEMS_PLACEHOLDER = "{items}"
_STATUS_RANK = {StreamStatus.SCHEDULED: 0, StreamStatus.LIVE: 1, StreamStatus.ENDED: 2}


def promo_code_readable(status: StreamStatus, *, admin: bool) -> bool:
    """Promo codes reward a live's viewers: nobody but admins reads them before it starts."""
    return admin or status is not StreamStatus.SCHEDULED


def later_status(current: StreamStatus, reported: StreamStatus) -> StreamStatus:
    """A live only moves forward (scheduled → live → ended): a late event cannot take it back."""
    return reported if _STATUS_RANK[reported] > _STATUS_RANK[current] else current


def offset_s(started_at: datetime | None, moment: datetime | None) -> float | None:
    """Seconds from the live's start to `moment` (none before the live has a start)."""
    if started_at is None or moment is None:
        return None
    return round((moment - started_at).total_seconds(), 3)


def unit_price(price: Decimal, special_price: Decimal | None) -> Decimal:
    """The live price wins over the catalog price."""
    return special_price if special_price is not None else price


@dataclass(frozen=True)
class CheckoutItem:
    product_id: str
    external_id: str | None
    quantity: int


def checkout_url(
    *,
    shop_url: str | None,
    template: str | None,
    items: Sequence[CheckoutItem],
) -> str | None:
    """Where the viewer pays. A WooCommerce shop (`shop_url`) takes one product straight into its
    cart (`?add-to-cart=<id>&quantity=<n>`); otherwise the template's `{items}` becomes
    `<id>:<quantity>,…` (the shop's ids for WooCommerce products); without a template, none."""
    if not items:
        return None
    if shop_url is not None and len(items) == 1 and items[0].external_id is not None:
        query = urlencode({"add-to-cart": items[0].external_id, "quantity": items[0].quantity})
        return f"{shop_url.rstrip('/')}/?{query}"
    if template is None:
        return None
    listed = ",".join(f"{item.external_id or item.product_id}:{item.quantity}" for item in items)
    return template.replace(ITEMS_PLACEHOLDER, quote(listed, safe=":,"))


def fingerprint(body: dict) -> str:
    """What a request asked, to tell a retry from a different request reusing its key."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
