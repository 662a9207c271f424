"""Which live an order is credited to, why, and how much of it stays once refunds are taken back —
free of I/O, so the same facts always give the same credit.

Paths, in order of precedence: the viewer's cart (`cart`: the order names a Vitrine cart filled
from lives), a live's offer code (`coupon`), a product card's promo code (`promo_code`), and the
viewer's session (`session`: what that browser added to a cart before the order was placed).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from services.analytics.domain import CENT, Order, OrderLine


@dataclass(frozen=True)
class ShownProduct:
    """A product in a viewer's cart, or one of a live's cards (with the promo code it carried),
    and when."""

    stream_id: UUID
    product_id: UUID
    name: str
    at: datetime
    external_id: str | None = None  # the shop's product, variation or variant id
    code: str | None = None


@dataclass(frozen=True)
class OfferShown:
    """A live's offer: its code, when it held in the shop, and the live's products."""

    stream_id: UUID
    code: str
    opened_at: datetime
    ends_at: datetime | None  # closed then, or due to end then; none: still open
    products: tuple[ShownProduct, ...] = ()


@dataclass(frozen=True)
class Credit:
    line_id: str
    stream_id: UUID
    product_id: UUID | None
    quantity: int
    amount: Decimal  # the line's total as ordered
    via: str  # cart | coupon | promo_code | session
    reason: str | None  # what decided it: the cart id, the code, the session id
    refunded: Decimal = Decimal("0.00")  # taken back since


def same_shop_id(a: str, b: str) -> bool:
    """Shop ids compare by their number: Shopify's GraphQL `gid://shopify/ProductVariant/42` is
    its webhooks' `42`."""
    return a.rsplit("/", 1)[-1].strip() == b.rsplit("/", 1)[-1].strip()


def _match(line: OrderLine, products: Sequence[ShownProduct]) -> ShownProduct | None:
    """The product a line is: by the Vitrine id the shop kept, else by the shop's own id (the
    variant before the product), else by name."""
    if line.product_ref is not None:
        for product in products:
            if line.product_ref == str(product.product_id):
                return product
    for shop_id in line.shop_ids:
        for product in products:
            if product.external_id and same_shop_id(product.external_id, shop_id):
                return product
    names = {n.strip().casefold() for n in (line.name, *line.aliases) if n.strip()}
    return next((p for p in products if p.name.strip().casefold() in names), None)


def chosen_live(placed_at: datetime, shown: Iterable[tuple[UUID, datetime]]) -> UUID | None:
    """Of the lives that showed a code, the last to show it before the order was placed, else
    (clocks differ) the first to show it after."""
    first_shown: dict[UUID, datetime] = {}
    for stream_id, at in shown:
        first_shown[stream_id] = min(first_shown.get(stream_id, at), at)
    if not first_shown:
        return None
    before = [(at, str(s), s) for s, at in first_shown.items() if at <= placed_at]
    if before:
        return max(before)[2]
    return min((at, str(s), s) for s, at in first_shown.items())[2]


def promo_live(order: Order, promos: Sequence[ShownProduct]) -> UUID | None:
    """The live whose product card's promo code the order used."""
    return chosen_live(order.placed_at, ((p.stream_id, p.at) for p in promos))


def offer_live(order: Order, offers: Sequence[OfferShown]) -> OfferShown | None:
    """The offer whose code the order used: one that held when it was placed, else as promo
    codes are chosen (a code reused by another live later goes to the live of its time)."""
    held = [
        o
        for o in offers
        if o.opened_at <= order.placed_at and (o.ends_at is None or order.placed_at <= o.ends_at)
    ]
    if held:
        return max(held, key=lambda o: (o.opened_at, str(o.stream_id)))
    chosen = chosen_live(order.placed_at, ((o.stream_id, o.opened_at) for o in offers))
    return next((o for o in offers if o.stream_id == chosen), None)


def refunded_by_line(order: Order) -> dict[str, Decimal]:
    """How much of each line went back: what the refunds name for it, plus its share of what
    they gave back for the whole order (shares of the order's total), never more than the line."""
    named: dict[str, Decimal] = {}
    spread = Decimal("0.00")
    for refund in order.refunds:
        spread += refund.amount
        for given in refund.lines:
            named[given.line_id] = named.get(given.line_id, Decimal("0.00")) + given.amount
    lines_total = sum((ln.total for ln in order.lines), Decimal("0.00"))
    base = order.total if order.total and order.total > 0 else lines_total
    refunded = {}
    for line in order.lines:
        share = (line.total * spread / base).quantize(CENT) if base > 0 else Decimal("0.00")
        amount = named.get(line.line_id, Decimal("0.00")) + share
        refunded[line.line_id] = max(Decimal("0.00"), min(line.total, amount))
    return refunded


def _path(
    order: Order,
    *,
    cart: Sequence[ShownProduct],
    offers: Sequence[OfferShown],
    promos: Sequence[ShownProduct],
    session: Sequence[ShownProduct],
) -> tuple[UUID, Sequence[ShownProduct], str, str | None] | None:
    """The live that gets the lines no product matches, the products to match, and why."""
    if cart:
        last = max(cart, key=lambda p: (p.at, str(p.stream_id)))
        return last.stream_id, cart, "cart", order.cart_id
    if (offer := offer_live(order, offers)) is not None:
        return offer.stream_id, offer.products, "coupon", offer.code
    if (chosen := promo_live(order, promos)) is not None:
        shown = [p for p in promos if p.stream_id == chosen]
        code = next((p.code for p in shown if p.code in order.coupons), None)
        return chosen, shown, "promo_code", code
    # A session's additions made after the order was placed belong to a later order.
    added = [p for p in session if p.at <= order.placed_at]
    if added:
        last = max(added, key=lambda p: (p.at, str(p.stream_id)))
        return last.stream_id, added, "session", order.session_id
    return None


def attribute(
    order: Order,
    *,
    cart: Sequence[ShownProduct] = (),
    offers: Sequence[OfferShown] = (),
    promos: Sequence[ShownProduct] = (),
    session: Sequence[ShownProduct] = (),
) -> list[Credit]:
    """Credit each line of the order to a live (and, when it can be told, a product).

    Through a cart or a session, each line goes to the live its product was added from, the
    others to the live added from last. Through a code, the whole order goes to that code's live.
    Otherwise the order is nobody's. Each credit carries what its line's refunds took back."""
    path = _path(order, cart=cart, offers=offers, promos=promos, session=session)
    if path is None:
        return []
    fallback, products, via, reason = path
    refunded = refunded_by_line(order)
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
                via=via,
                reason=reason,
                refunded=refunded.get(line.line_id, Decimal("0.00")),
            )
        )
    return credits
