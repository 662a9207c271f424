"""Keeps the shop in step with the offers: closes the offers whose window ran out, and tells the
shop each coupon's new version (create, update, withdraw), retrying with a bounded backoff while
the shop is away or refuses.

A coupon row is claimed with `FOR UPDATE SKIP LOCKED` and a lease (`leased_until`, which a new
version does not cancel), so replicas never work on the same one at once and the shop is called
outside any transaction; the adapters find a coupon by its code before making one, so a run
that died between the shop's answer and noting it never makes the coupon twice.
"""

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from chassis.cancellation import raise_if_cancelled
from services.products import offers
from services.products.cards import lock_live
from services.products.catalog_settings import Deps, shop_of
from services.products.models import (
    SETTINGS_ROW_ID,
    CatalogSettings,
    LiveOffer,
    OfferStatus,
    ShopCoupon,
)
from services.products.shops import CouponSpec, ShopUnavailable

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20


@dataclass(frozen=True)
class Claimed:
    id: UUID
    version: int
    source: Any
    code: str
    spec: dict
    active: bool
    external_id: str | None
    attempts: int


def backoff_s(attempts: int, *, base_s: float, max_s: float) -> float:
    """2, 4, 8 … seconds (±20 %), never more than `max_s`."""
    delay = min(base_s * 2 ** max(attempts - 1, 0), max_s)
    return min(delay * random.uniform(0.8, 1.2), max_s)


class OfferKeeper:
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], deps: Deps) -> None:
        self.sessions = sessions
        self.deps = deps

    async def run(self) -> None:
        """Until cancelled: close due offers, sync due coupons, then wait a tick."""
        while True:
            try:
                await self.close_due()
                await self.sync_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away: try again next tick
                raise_if_cancelled(error)
                log.warning("offers could not be kept in step this time", exc_info=True)
            raise_if_cancelled()
            await asyncio.sleep(self.deps.settings.offer_tick_s)

    async def close_due(self) -> int:
        """Close every open offer whose window has run out; returns how many. The live's row is
        locked first, as every other change to a live's offer does (no deadlock)."""
        closed = 0
        while True:
            async with self.sessions() as session:
                due = (
                    await session.execute(
                        sa.select(col(LiveOffer.stream_id))
                        .where(
                            col(LiveOffer.status) == OfferStatus.OPEN,
                            col(LiveOffer.closes_at) <= datetime.now(UTC),
                        )
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if due is None:
                    return closed
                live = await lock_live(session, due)
                offer = await session.get(LiveOffer, due, populate_existing=True)
                if offer is not None and offer.status is OfferStatus.OPEN:  # not closed meanwhile
                    await offers.close_offer(session, outbox=self.deps.outbox, live=live)
                await session.commit()
                closed += 1

    async def sync_due(self) -> int:
        """Tell the shop every coupon whose version it has not seen; returns how many tried."""
        claimed = await self._claim()
        for row in claimed:
            await self._sync(row)
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(ShopCoupon)
                    .where(
                        col(ShopCoupon.synced_version) < col(ShopCoupon.version),
                        col(ShopCoupon.next_attempt_at) <= now,
                        sa.or_(
                            col(ShopCoupon.leased_until).is_(None),
                            col(ShopCoupon.leased_until) < now,
                        ),
                    )
                    .order_by(col(ShopCoupon.next_attempt_at))
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
            claimed = []
            for row in rows:
                claimed.append(
                    Claimed(
                        row.id,
                        row.version,
                        row.source,
                        row.code,
                        dict(row.spec),
                        row.active,
                        row.external_id,
                        row.attempts,
                    )
                )
                row.leased_until = now + LEASE
            await session.commit()
        return claimed

    async def _sync(self, row: Claimed) -> None:
        try:
            external_id = await self._tell_shop(row)
        except ShopUnavailable as error:
            await self._failed(row, str(error))
            return
        except Exception as error:  # an answer the adapter did not expect: retried all the same
            log.exception("coupon %s: unexpected error from the %s shop", row.code, row.source)
            await self._failed(row, f"unexpected answer from the shop ({type(error).__name__})")
            return
        async with self.sessions() as session:
            await session.execute(
                sa.update(ShopCoupon)
                .where(col(ShopCoupon.id) == row.id)
                .values(
                    # Never back: a later version's sync (after this lease) may have landed first.
                    synced_version=sa.func.greatest(col(ShopCoupon.synced_version), row.version),
                    external_id=sa.func.coalesce(external_id, col(ShopCoupon.external_id)),
                    attempts=0,
                    last_error=None,
                    synced_at=datetime.now(UTC),
                    leased_until=None,
                )
            )
            await session.commit()

    async def _tell_shop(self, row: Claimed) -> str | None:
        async with self.sessions() as session:
            settings = await session.get(CatalogSettings, SETTINGS_ROW_ID)
        shop = shop_of(settings, source=row.source, deps=self.deps) if settings else None
        if shop is None:
            raise ShopUnavailable(f"the {row.source} shop is not configured any more")
        if row.active:
            return await shop.put_coupon(CouponSpec.from_json(row.spec), known_id=row.external_id)
        await shop.withdraw_coupon(code=row.code, known_id=row.external_id)
        return row.external_id

    async def _failed(self, row: Claimed, reason: str) -> None:
        settings = self.deps.settings
        attempts = row.attempts + 1
        delay = backoff_s(
            attempts, base_s=settings.coupon_retry_base_s, max_s=settings.coupon_retry_max_s
        )
        log.warning(
            "coupon %s not %s in the %s shop (attempt %d, next in %.0f s): %s",
            row.code, "placed" if row.active else "withdrawn", row.source, attempts, delay, reason,
        )  # fmt: skip
        async with self.sessions() as session:
            await session.execute(
                sa.update(ShopCoupon)
                .where(col(ShopCoupon.id) == row.id)
                .values(
                    attempts=attempts,
                    last_error=reason[:500],
                    next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
                    leased_until=None,
                )
            )
            await session.commit()
