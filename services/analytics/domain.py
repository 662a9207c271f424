"""The arithmetic of analytics, free of I/O: who a viewer is, rates, the per-minute series, and
the shops' orders as analytics keeps them (their webhooks' signature, what an order and a refund
are). Each shop's parsing is in its own module; which live an order is credited to, in
`attribution`."""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

PLAYER_GATEWAY = "player"  # the gateway_id of `viewer.*` events for players without a socket
MINUTE = timedelta(minutes=1)
MAX_SERIES_MINUTES = 7 * 24 * 60


def ratio(part: float, whole: float) -> float | None:
    """`part / whole` rounded for display; none when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def per_minute(count: int, started_at: datetime | None, ended_at: datetime | None) -> float | None:
    """A rate over the live's time on air (none before it starts)."""
    if started_at is None or ended_at is None or ended_at <= started_at:
        return None
    return round(count / ((ended_at - started_at).total_seconds() / 60), 2)


def minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass
class MinuteRow:
    minute: datetime
    viewers: int = 0
    messages: int = 0
    clicks: int = 0
    add_to_cart: int = 0
    revenue: Decimal = Decimal("0.00")


def series(
    *,
    start: datetime | None,
    end: datetime | None,
    samples: Sequence[tuple[datetime, int]],
    messages: Mapping[datetime, int],
    clicks: Mapping[datetime, int],
    add_to_cart: Mapping[datetime, int],
    revenue: Mapping[datetime, Decimal],
) -> list[MinuteRow]:
    """One row per minute from `start` to `end` (both widened to the data). `samples` are the
    published viewer counts in time order: a minute shows its highest count, and a minute without
    one carries the last count over (the audience did not change, so nothing was published)."""
    moments = [m for m in (*messages, *clicks, *add_to_cart, *revenue) if m is not None]
    moments += [minute_of(at) for at, _ in samples]
    if start is not None:
        moments.append(minute_of(start))
    if end is not None:
        moments.append(minute_of(end))
    if not moments:
        return []
    first, last = min(moments), max(moments)
    if (last - first) / MINUTE > MAX_SERIES_MINUTES:
        first = last - MAX_SERIES_MINUTES * MINUTE
    peaks: dict[datetime, int] = {}
    closing: dict[datetime, int] = {}
    for at, current in samples:
        minute = minute_of(at)
        peaks[minute] = max(peaks.get(minute, 0), current)
        closing[minute] = current
    rows: list[MinuteRow] = []
    carried = next((closing[m] for m in sorted(closing, reverse=True) if m < first), 0)
    minute = first
    while minute <= last:
        rows.append(
            MinuteRow(
                minute=minute,
                viewers=max(carried, peaks.get(minute, 0)),
                messages=messages.get(minute, 0),
                clicks=clicks.get(minute, 0),
                add_to_cart=add_to_cart.get(minute, 0),
                revenue=revenue.get(minute, Decimal("0.00")),
            )
        )
        carried = closing.get(minute, carried)
        minute += MINUTE
    return rows


# --- the shops' orders ----------------------------------------------------------------------------

WOOCOMMERCE, SHOPIFY = "woocommerce", "shopify"
CART_KEYS = ("vitrine_cart_id", "_vitrine_cart_id")
SESSION_KEYS = ("vitrine_session_id", "_vitrine_session_id")
PRODUCT_KEYS = ("vitrine_product_id", "_vitrine_product_id")
# Our checkout links carry `utm_source=vitrine&utm_content=<cart id>` (and the live as campaign).
UTM_SOURCE = "vitrine"
# Orders whose money counts, per shop: paid, or its capture under way (WooCommerce `on-hold`,
# Shopify `authorized`). Pending, failed, cancelled, refunded and voided ones count nothing.
REVENUE_STATUSES = {
    WOOCOMMERCE: frozenset({"processing", "completed", "on-hold"}),
    SHOPIFY: frozenset({"authorized", "partially_paid", "paid", "partially_refunded"}),
}
CENT = Decimal("0.01")


def counts(source: str, status: str) -> bool:
    """Whether an order in this status brings money in."""
    return status in REVENUE_STATUSES.get(source, frozenset())


def signature_is_valid(*, body: bytes, signature: str | None, secret: str) -> bool:
    """WooCommerce and Shopify sign each delivery alike: base64 of HMAC-SHA256 over the raw body
    (compared in constant time)."""
    if not signature or not secret:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())


class InvalidOrder(ValueError):
    """The webhook's body is not an order (or a refund) we can read."""


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    name: str
    product_ref: str | None  # a Vitrine product id the shop kept on the line, if any
    quantity: int
    total: Decimal  # after its discounts, before taxes
    # The shop's ids of what was bought, the most precise first (variation or variant, product).
    shop_ids: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other names it goes by (the product's title without variant)


@dataclass(frozen=True)
class RefundLine:
    line_id: str
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class Refund:
    """Money given back: for the lines it names, else (`amount`) for the whole order."""

    refund_id: str
    refunded_at: datetime | None
    lines: tuple[RefundLine, ...] = ()
    amount: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Order:
    source: str  # the shop: woocommerce, shopify
    order_id: str
    status: str
    currency: str
    placed_at: datetime
    modified_at: datetime
    cart_id: str | None
    session_id: str | None
    coupons: tuple[str, ...]  # case-folded codes
    lines: tuple[OrderLine, ...] = field(default_factory=tuple)
    name: str | None = None  # what the shop shows: WooCommerce's number, Shopify's "#1001"
    # What the buyer paid in all (taxes, shipping): an order-wide refund is a share of it.
    total: Decimal | None = None
    refunds: tuple[Refund, ...] = ()


def moment(value: Any, fallback: datetime | None = None) -> datetime:
    """A shop's date: ISO 8601, UTC when it names no offset (WooCommerce's `*_gmt` fields)."""
    if not isinstance(value, str) or not value:
        if fallback is None:
            raise InvalidOrder("the order has no creation date")
        return fallback
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidOrder(f"unreadable date {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        raise InvalidOrder(f"unreadable amount {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise InvalidOrder("unreadable amount")
    return amount.quantize(CENT)


def quantity(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise InvalidOrder("unreadable quantity") from None


def text(value: Any, limit: int) -> str:
    return str(value if value is not None else "")[:limit]


def shop_ids(*values: Any) -> tuple[str, ...]:
    """The shop's ids that are set (WooCommerce says 0 for "none"), as text."""
    return tuple(str(v)[:64] for v in values if v not in (None, "", 0, "0"))


def codes(values: Any) -> tuple[str, ...]:
    """Coupon codes, case-folded: the shops compare them without case (WooCommerce lowercases)."""
    found = {
        str(c["code"]).strip().casefold()
        for c in values or []
        if isinstance(c, dict) and c.get("code") and str(c["code"]).strip()
    }
    return tuple(sorted(found))
