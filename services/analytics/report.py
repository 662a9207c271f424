"""A live's figures for its admins, computed from the facts (so a rebuild gives the same)."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.domain import REVENUE_STATUSES, MinuteRow, minute_of, per_minute, ratio
from services.analytics.domain import series as minute_series
from services.analytics.models import (
    cart_additions,
    chat_deletions,
    chat_messages,
    live_products,
    live_stream_viewers,
    lives,
    order_attributions,
    orders,
    product_clicks,
    viewer_samples,
)


class LiveNotFound(Exception):
    """Analytics has not heard of this live."""


def _credited() -> sa.Join:
    """Order lines credited to lives, with their orders (whose status decides if they count)."""
    o = order_attributions.c
    return order_attributions.join(
        orders, sa.and_(orders.c.source == o.source, orders.c.order_id == o.order_id)
    )


def _counted(stream_id: UUID) -> sa.ColumnElement[bool]:
    """The live's credited lines whose order brings money, by its shop's statuses."""
    o = orders.c
    paying = [
        sa.and_(o.source == source, o.status.in_(statuses))
        for source, statuses in REVENUE_STATUSES.items()
    ]
    return sa.and_(order_attributions.c.stream_id == stream_id, sa.or_(*paying))


def _net() -> sa.ColumnElement:
    """What a credited line brings, refunds taken back."""
    return order_attributions.c.amount - order_attributions.c.refunded


def _orders_count() -> sa.ColumnElement[int]:
    o = order_attributions.c
    return sa.func.count(sa.distinct(sa.tuple_(o.source, o.order_id)))


def _seconds(ms: int | None) -> float:
    return round(int(ms or 0) / 1000, 3)


async def _live(session: AsyncSession, stream_id: UUID) -> Any:
    live = (await session.execute(sa.select(lives).where(lives.c.stream_id == stream_id))).first()
    if live is None:
        raise LiveNotFound(stream_id)
    return live


async def _viewers(session: AsyncSession, stream_id: UUID) -> dict[str, Any]:
    v = live_stream_viewers.c
    joined, left = v.joined_at.is_not(None), v.left_at.is_not(None)
    views, unique, completed, watched_ms = (
        await session.execute(
            sa.select(
                sa.func.count().filter(joined),
                sa.func.count(sa.distinct(v.viewer_key)).filter(joined),
                sa.func.count().filter(left),
                sa.func.coalesce(sa.func.sum(v.watched_ms).filter(left), 0),
            ).where(v.stream_id == stream_id)
        )
    ).one()
    s = viewer_samples.c
    latest = (
        await session.execute(
            sa.select(s.current)
            .where(s.stream_id == stream_id)
            .order_by(s.at.desc(), s.event_id.desc())
            .limit(1)
        )
    ).scalar()
    peak = await session.scalar(
        sa.select(sa.func.max(sa.func.greatest(s.current, s.peak))).where(s.stream_id == stream_id)
    )
    return {
        "current": latest or 0,
        "peak": peak or 0,
        "total_views": views,
        "unique_viewers": unique,
        "completed_views": completed,
        "total_watch_time_s": _seconds(watched_ms),
        "average_watch_time_s": _seconds(int(watched_ms) // completed) if completed else None,
    }


async def _chat(session: AsyncSession, stream_id: UUID, live: Any, unique: int) -> dict:
    m = chat_messages.c
    messages, chatters = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(m.user_id))).where(
                m.stream_id == stream_id
            )
        )
    ).one()
    deleted = await session.scalar(
        sa.select(sa.func.count())
        .select_from(
            chat_deletions.join(
                chat_messages, chat_messages.c.message_id == chat_deletions.c.message_id
            )
        )
        .where(chat_deletions.c.stream_id == stream_id)
    )
    return {
        "messages": messages,
        "deleted_messages": deleted or 0,
        "chatters": chatters,
        "chatters_share": min(ratio(chatters, unique) or 0.0, 1.0) if unique else None,
        "messages_per_minute": per_minute(
            messages, live.started_at, live.ended_at or datetime.now(UTC)
        ),
    }


async def _products(session: AsyncSession, stream_id: UUID) -> list[dict[str, Any]]:
    c, a, o, p = product_clicks.c, cart_additions.c, order_attributions.c, live_products.c
    clicks: dict[Any, int] = dict(
        (
            await session.execute(
                sa.select(c.product_id, sa.func.count())
                .where(c.stream_id == stream_id)
                .group_by(c.product_id)
            )
        ).all()
    )
    carts = {
        row[0]: row[1:]
        for row in await session.execute(
            sa.select(a.product_id, sa.func.count(), sa.func.sum(a.quantity))
            .where(a.stream_id == stream_id)
            .group_by(a.product_id)
        )
    }
    sold = {
        row[0]: row[1:]
        for row in await session.execute(
            sa.select(o.product_id, _orders_count(), sa.func.sum(o.quantity), sa.func.sum(_net()))
            .select_from(_credited())
            .where(_counted(stream_id))
            .group_by(o.product_id)
        )
    }
    names = dict(
        (
            await session.execute(sa.select(p.product_id, p.name).where(p.stream_id == stream_id))
        ).all()
    )
    products = []
    for product_id in sorted(set(names) | set(clicks) | set(carts) | set(sold), key=str):
        if product_id is None:
            continue
        added, quantity = carts.get(product_id, (0, 0))
        ordered, units, revenue = sold.get(product_id, (0, 0, Decimal("0")))
        products.append(
            {
                "product_id": str(product_id),
                "name": names.get(product_id),
                "clicks": clicks.get(product_id, 0),
                "add_to_cart": added,
                "quantity_added": int(quantity or 0),
                "conversion_rate": ratio(added, clicks.get(product_id, 0)),
                "orders": ordered,
                "units_sold": int(units or 0),
                "revenue": str(Decimal(revenue or 0).quantize(Decimal("0.01"))),
            }
        )
    return products


async def _sales(session: AsyncSession, stream_id: UUID, unique: int) -> dict[str, Any]:
    count, revenue, currency = (
        await session.execute(
            sa.select(
                _orders_count(),
                sa.func.coalesce(sa.func.sum(_net()), 0),
                sa.func.min(orders.c.currency),
            )
            .select_from(_credited())
            .where(_counted(stream_id))
        )
    ).one()
    return {
        "orders": count,
        "revenue": str(Decimal(revenue).quantize(Decimal("0.01"))),
        "currency": currency,
        # Orders per unique viewer: how much of the audience bought.
        "conversion_rate": ratio(count, unique),
    }


async def _per_minute(session: AsyncSession, table: sa.Table, stream_id: UUID) -> dict:
    minute = sa.func.date_trunc("minute", table.c.at)
    rows = await session.execute(
        sa.select(minute, sa.func.count()).where(table.c.stream_id == stream_id).group_by(minute)
    )
    return {minute_of(at): n for at, n in rows.all()}


async def series(session: AsyncSession, stream_id: UUID, live: Any) -> list[MinuteRow]:
    s = viewer_samples.c
    samples = (
        await session.execute(
            sa.select(s.at, s.current).where(s.stream_id == stream_id).order_by(s.at, s.event_id)
        )
    ).all()
    minute = sa.func.date_trunc("minute", orders.c.placed_at)
    revenue = {
        minute_of(at): Decimal(amount).quantize(Decimal("0.01"))
        for at, amount in await session.execute(
            sa.select(minute, sa.func.sum(_net()))
            .select_from(_credited())
            .where(_counted(stream_id))
            .group_by(minute)
        )
    }
    return minute_series(
        start=live.started_at,
        end=live.ended_at,
        samples=[(at, current) for at, current in samples],
        messages=await _per_minute(session, chat_messages, stream_id),
        clicks=await _per_minute(session, product_clicks, stream_id),
        add_to_cart=await _per_minute(session, cart_additions, stream_id),
        revenue=revenue,
    )


def _row(row: MinuteRow) -> dict[str, Any]:
    return {
        "minute": row.minute.isoformat().replace("+00:00", "Z"),
        "viewers": row.viewers,
        "messages": row.messages,
        "clicks": row.clicks,
        "add_to_cart": row.add_to_cart,
        "revenue": str(row.revenue),
    }


async def live_analytics(session: AsyncSession, stream_id: UUID) -> dict[str, Any]:
    """Everything about one live: audience, products, sales, chat, and the per-minute series,
    read from one snapshot so the figures agree with each other while events keep coming."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    live = await _live(session, stream_id)
    viewers = await _viewers(session, stream_id)
    unique = viewers["unique_viewers"]
    products = await _products(session, stream_id)
    clicks = sum(p["clicks"] for p in products)
    added = sum(p["add_to_cart"] for p in products)
    return {
        "stream": {
            "id": str(stream_id),
            "title": live.title,
            "status": "deleted" if live.deleted else live.status,
            "started_at": live.started_at.isoformat() if live.started_at else None,
            "ended_at": live.ended_at.isoformat() if live.ended_at else None,
        },
        "viewers": viewers,
        "products": {
            "clicks": clicks,
            "add_to_cart": added,
            "conversion_rate": ratio(added, clicks),
            "items": products,
        },
        "sales": await _sales(session, stream_id, unique),
        "chat": await _chat(session, stream_id, live, unique),
        "series": [_row(row) for row in await series(session, stream_id, live)],
    }


CSV_COLUMNS = ("minute", "viewers", "messages", "clicks", "add_to_cart", "revenue")


def series_csv(report: dict[str, Any]) -> str:
    """The per-minute series as CSV, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report["series"])
    return out.getvalue()
