"""The arithmetic of analytics, free of I/O: who a viewer is, rates, the per-minute series, the
shop's order webhooks (signature, parsing) and which live an order is credited to."""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

PLAYER_GATEWAY = "player"  # the gateway_id of `viewer.*` events for players without a socket
MINUTE = timedelta(minutes=1)
MAX_SERIES_MINUTES = 7 * 24 * 60


def viewer_key(*, user_id: str | None, session_id: str) -> str:
    """The person behind a view: a signed-in user is one person on every device."""
    return f"user:{user_id}" if user_id else f"session:{session_id}"


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


# --- WooCommerce orders ---------------------------------------------------------------------------

CART_KEYS = ("vitrine_cart_id", "_vitrine_cart_id")
SESSION_KEYS = ("vitrine_session_id", "_vitrine_session_id")
PRODUCT_KEYS = ("vitrine_product_id", "_vitrine_product_id")
# Orders whose money counts: paid or about to ship. Pending, failed, cancelled, refunded do not.
REVENUE_STATUSES = frozenset({"processing", "completed", "on-hold"})


def signature_is_valid(*, body: bytes, signature: str | None, secret: str) -> bool:
    """WooCommerce signs each delivery: base64 of HMAC-SHA256 over the raw body."""
    if not signature or not secret:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())


class InvalidOrder(ValueError):
    """The webhook's body is not a WooCommerce order we can read."""


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    name: str
    product_ref: str | None  # a Vitrine product id the shop kept on the line, if any
    quantity: int
    total: Decimal


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    currency: str
    placed_at: datetime
    modified_at: datetime
    cart_id: str | None
    session_id: str | None
    coupons: tuple[str, ...]
    lines: tuple[OrderLine, ...] = field(default_factory=tuple)


def _meta(items: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("key") in keys and item.get("value"):
            return str(item["value"])[:128]
    return None


def _time(value: Any, fallback: datetime | None = None) -> datetime:
    if not isinstance(value, str) or not value:
        if fallback is None:
            raise InvalidOrder("the order has no creation date")
        return fallback
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidOrder(f"unreadable date {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # `*_gmt` fields are UTC


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        raise InvalidOrder(f"unreadable amount {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise InvalidOrder("unreadable amount")
    return amount.quantize(Decimal("0.01"))


def parse_order(payload: Any) -> Order:
    """The parts of a WooCommerce order (REST v3 shape) that analytics needs."""
    if not isinstance(payload, dict) or payload.get("id") in (None, ""):
        raise InvalidOrder("expected a WooCommerce order with an id")
    placed = _time(payload.get("date_created_gmt") or payload.get("date_created"))
    lines: list[OrderLine] = []
    for item in payload.get("line_items") or []:
        if not isinstance(item, dict):
            raise InvalidOrder("a line item is not an object")
        try:
            quantity = int(item.get("quantity") or 0)
        except (TypeError, ValueError):
            raise InvalidOrder("unreadable quantity") from None
        lines.append(
            OrderLine(
                line_id=str(item.get("id", len(lines)))[:64],
                name=str(item.get("name") or "")[:200],
                product_ref=_meta(item.get("meta_data"), PRODUCT_KEYS),
                quantity=quantity,
                total=_money(item.get("total")),
            )
        )
    coupons = sorted(
        {
            str(c["code"]).strip().casefold()
            for c in payload.get("coupon_lines") or []
            if isinstance(c, dict) and c.get("code")
        }
    )
    return Order(
        order_id=str(payload["id"])[:64],
        status=str(payload.get("status") or "pending")[:32],
        currency=str(payload.get("currency") or "")[:3].upper(),
        placed_at=placed,
        modified_at=_time(
            payload.get("date_modified_gmt") or payload.get("date_modified"), fallback=placed
        ),
        cart_id=_meta(payload.get("meta_data"), CART_KEYS),
        session_id=_meta(payload.get("meta_data"), SESSION_KEYS),
        coupons=tuple(coupons),
        lines=tuple(lines),
    )


@dataclass(frozen=True)
class ShownProduct:
    """A product in a viewer's cart, or one whose card carried a promo code, and when."""

    stream_id: UUID
    product_id: UUID
    name: str
    at: datetime


@dataclass(frozen=True)
class Credit:
    line_id: str
    stream_id: UUID
    product_id: UUID | None
    quantity: int
    amount: Decimal
    via: str


def _match(line: OrderLine, products: Sequence[ShownProduct]) -> ShownProduct | None:
    for product in products:
        if line.product_ref is not None and line.product_ref == str(product.product_id):
            return product
    name = line.name.strip().casefold()
    return next((p for p in products if name and p.name.strip().casefold() == name), None)


def promo_live(order: Order, promos: Sequence[ShownProduct]) -> UUID | None:
    """The live whose promo code the order used: the last to show it before the order was
    placed, else (clocks differ) the first to show it after."""
    first_shown: dict[UUID, datetime] = {}
    for p in promos:
        first_shown[p.stream_id] = min(first_shown.get(p.stream_id, p.at), p.at)
    if not first_shown:
        return None
    before = [(at, str(s), s) for s, at in first_shown.items() if at <= order.placed_at]
    if before:
        return max(before)[2]
    return min((at, str(s), s) for s, at in first_shown.items())[2]


def attribute(
    order: Order, *, cart: Sequence[ShownProduct], via: str, promos: Sequence[ShownProduct]
) -> list[Credit]:
    """Credit each line of the order to a live (and, when it can be told, a product).

    A cart filled from lives wins: each line goes to the live its product was added from, the
    others to the live added from last. Otherwise a promo code shown in a live credits the whole
    order to that live. Otherwise the order is nobody's."""
    if cart:
        fallback = max(cart, key=lambda p: (p.at, str(p.stream_id))).stream_id
        products, source = cart, via
    elif (chosen := promo_live(order, promos)) is not None:
        fallback = chosen
        products, source = [p for p in promos if p.stream_id == chosen], "promo_code"
    else:
        return []
    credits = []
    for line in order.lines:
        match = _match(line, products)
        credits.append(
            Credit(
                line_id=line.line_id,
                stream_id=match.stream_id if match else fallback,
                product_id=match.product_id if match else None,
                quantity=line.quantity,
                amount=line.total,
                via=source,
            )
        )
    return credits
