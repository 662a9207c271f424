"""The rules of a live's showcase and cart, free of I/O."""

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote
from uuid import UUID

import orjson

from contracts.streams import StreamStatus


def promo_code_readable(status: StreamStatus, *, admin: bool) -> bool:
    """Promo codes reward a live's viewers: nobody but admins reads them before it starts."""
    return admin or status is not StreamStatus.SCHEDULED


def offset_s(started_at: datetime | None, moment: datetime | None) -> float | None:
    """Seconds from the live's start to `moment` (none before the live has a start)."""
    if started_at is None or moment is None:
        return None
    return round((moment - started_at).total_seconds(), 3)


def live_price(
    price: Decimal,
    special_price: Decimal | None,
    *,
    percent_off: Decimal | None = None,
    offer_closed: bool = False,
) -> Decimal | None:
    """The product's price in the live: the offer's percentage off, else its special price; none
    once the live's offer has closed."""
    if offer_closed:
        return None
    if percent_off is not None:
        return (price * (Decimal(100) - percent_off) / Decimal(100)).quantize(Decimal("0.01"))
    return special_price


def unit_price(
    price: Decimal,
    special_price: Decimal | None,
    *,
    percent_off: Decimal | None = None,
    offer_closed: bool = False,
) -> Decimal:
    """The live price wins over the catalog price while the live's offer holds."""
    found = live_price(price, special_price, percent_off=percent_off, offer_closed=offer_closed)
    return found if found is not None else price


def fingerprint(body: dict) -> str:
    """What a request asked, to tell a retry from a different request reusing its key."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


# --- live offers -------------------------------------------------------------------------------

# While a live is on air its end is unknown: the shop's coupon is set to end this long after the
# start (plus the window), and moved to the real end when the live ends.
PROVISIONAL_LIVE_S = 12 * 3600
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


_OFFER_CODE = re.compile(r"[A-Za-z0-9_-]{3,40}")
_GROUP_SUFFIX = re.compile(r".*-\d+")


def usable_code(code: str) -> bool:
    """A live's code: short enough for `-2`, `-3` … of its other price groups, and not itself
    looking like one (`SPRING-2` would be `SPRING`'s)."""
    return bool(_OFFER_CODE.fullmatch(code)) and not _GROUP_SUFFIX.fullmatch(code)


def generated_code() -> str:
    """A live's code when the admin chose none: short enough to type from the video."""
    return "LIVE-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def cart_coupon_code(*, key: bytes, cart_id: UUID) -> str:
    """A cart's own coupon code: derived from a secret, so nobody can guess another cart's."""
    digest = hmac.new(key, cart_id.bytes, hashlib.sha256).digest()
    return "CART-" + base64.b32encode(digest).decode()[:12]


def offer_ends_at(
    *, started_at: datetime | None, ended_at: datetime | None, window_s: int, now: datetime
) -> datetime:
    """When the live's prices stop holding: `window_s` after the live's end, or, while it is on
    air, after a provisional end (so a coupon never outlives its live if Vitrine goes away)."""
    if ended_at is not None:
        return ended_at + timedelta(seconds=window_s)
    start = started_at or now
    return max(start, now) + timedelta(seconds=PROVISIONAL_LIVE_S + window_s)


@dataclass(frozen=True)
class OfferItem:
    """A product of a live as its offer sees it."""

    external_id: str
    parent_id: str | None
    price: Decimal
    live_price: Decimal | None


@dataclass(frozen=True)
class CouponGroup:
    """The products one shop coupon covers, and what it takes off each item."""

    code: str
    key: str
    items: tuple[OfferItem, ...]
    amount_off: Decimal | None
    percent_off: Decimal | None


def coupon_groups(
    *, code: str, items: Sequence[OfferItem], percent_off: Decimal | None
) -> list[CouponGroup]:
    """The coupons that give each product its live price. A shop coupon takes one amount (or one
    percentage) off each of its products, so products sharing a discount share a coupon: the
    biggest group takes the live's code, the others `<code>-2`, `<code>-3` …"""
    if percent_off is not None:
        covered = tuple(sorted(items, key=lambda i: i.external_id))
        return [CouponGroup(code, "percent", covered, None, percent_off)] if covered else []
    by_amount: dict[Decimal, list[OfferItem]] = {}
    for item in items:
        if item.live_price is not None and item.live_price < item.price:
            by_amount.setdefault(item.price - item.live_price, []).append(item)
    ordered = sorted(by_amount.items(), key=lambda group: (-len(group[1]), -group[0]))
    return [
        CouponGroup(
            code=code if n == 1 else f"{code}-{n}",
            key=f"fixed:{amount}",
            items=tuple(sorted(group, key=lambda i: i.external_id)),
            amount_off=amount,
            percent_off=None,
        )
        for n, (amount, group) in enumerate(ordered, start=1)
    ]


def fill_template(
    template: str, *, items: str, coupon: str | None, live: str | None, cart: str | None
) -> str:
    """A local catalog's checkout link: `{items}` (`id:quantity,…`), `{coupon}`, `{live}`,
    `{cart}` replaced, each URL-encoded."""
    values = {"{items}": quote(items, safe=":,"), "{coupon}": quote(coupon or "", safe="")}
    values |= {"{live}": quote(live or "", safe=""), "{cart}": quote(cart or "", safe="")}
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
