"""The live audience, kept right: `viewers.updated` once a second at most per live, the views of
players that went silent and of gateways that died closed.

Analytics publishes `viewers.updated` (not the gateways) because only here are all the sources
seen together — every gateway and the players — including lives that no gateway serves any more:
when the last gateway of a live crashes, its viewers expire and someone must say so.
"""

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.cancellation import raise_if_cancelled
from chassis.outbox import Outbox
from contracts.viewers import ViewerLeft
from services.analytics.audience import Audience
from services.analytics.domain import PLAYER_GATEWAY
from services.analytics.models import live_stream_viewers
from services.analytics.players import expire_silent_players

log = logging.getLogger(__name__)


@dataclass
class Announcer:
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    audience: Audience
    interval_s: float
    presence_ttl_s: int
    player_ttl_s: int
    announced: int = 0
    # View id → when its viewer was first missed from its gateway's set (wall clock).
    missing_since: dict[object, datetime] = field(default_factory=dict)

    async def run(self) -> None:
        """Announce every interval and sweep every few, for ever, whatever fails."""
        last_sweep = 0.0
        while True:
            started = time.monotonic()
            try:
                await self.announce()
                if started - last_sweep >= max(1.0, self.presence_ttl_s / 3):
                    last_sweep = started
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis or the database away: try again next time
                raise_if_cancelled(error)
                log.warning("audience: %s", error)
            raise_if_cancelled()
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def announce(self) -> None:
        """Publish the figures of each live whose audience changed since they last went out."""
        now = time.time()
        window = 4 * max(self.presence_ttl_s, self.player_ttl_s)
        for stream_id in await self.audience.active_lives(now_s=now, within_s=window):
            figures = await self.audience.figures(stream_id, now_ms=int(now * 1000))
            if figures == await self.audience.published(stream_id):
                continue
            if not await self.audience.claim(stream_id, for_ms=int(self.interval_s * 900)):
                continue
            async with self.sessions() as session, session.begin():
                await self.outbox.record(session, figures, stream_id=stream_id)
            await self.audience.remember(stream_id, figures)
            self.announced += 1

    async def sweep(self) -> None:
        await expire_silent_players(
            sessions=self.sessions, outbox=self.outbox, ttl_s=self.player_ttl_s
        )
        await self.close_views_of_dead_gateways()

    async def close_views_of_dead_gateways(self, *, batch: int = 5000) -> int:
        """A view still open whose viewer is gone from its gateway's presence (the gateway died,
        its set expired) for a while is closed with an estimate: it ended when the gateway was
        last heard of. Should the gateway's own `viewer.left` come after all, it wins."""
        v = live_stream_viewers.c
        now = datetime.now(UTC)
        # A view this young may not be in its gateway's set yet.
        settled = now - timedelta(seconds=self.presence_ttl_s + 2 * self.interval_s)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(
                        v.id,
                        v.stream_id,
                        v.gateway_id,
                        v.session_id,
                        v.user_id,
                        v.viewer_key,
                        v.joined_at,
                    )
                    .where(
                        v.left_at.is_(None),
                        v.estimated_at.is_(None),
                        v.joined_at < settled,
                        v.gateway_id != PLAYER_GATEWAY,
                    )
                    .limit(batch)
                )
            ).all()
        by_holder = defaultdict(list)
        for row in rows:
            by_holder[(str(row.stream_id), row.gateway_id)].append(row)
        missing = []
        for (stream_id, gateway_id), views in by_holder.items():
            held = await self.audience.held_by(
                stream_id, gateway_id, [view.viewer_key for view in views]
            )
            missing += [view for view, present in zip(views, held, strict=True) if not present]
        open_ids = {row.id for row in rows}
        self.missing_since = {k: t for k, t in self.missing_since.items() if k in open_ids}
        # Missed twice, a presence interval apart: not a `viewer.left` still on its way.
        confirm = timedelta(seconds=max(2.0, 3 * self.interval_s))
        due = []
        for view in missing:
            first_missed = self.missing_since.setdefault(view.id, now)
            if now - first_missed >= confirm:
                due.append((view, first_missed))
        if not due:
            return 0
        heard = await self.audience.last_heard(sorted({view.gateway_id for view, _ in due}))
        async with self.sessions() as session, session.begin():
            claimed = await _claim_estimates(session, [view.id for view, _ in due], at=now)
            for view, first_missed in due:
                self.missing_since.pop(view.id, None)
                if view.id not in claimed:
                    continue
                ended = max(
                    _last_seen(view, first_missed, heard, self.presence_ttl_s), view.joined_at
                )
                left = ViewerLeft(
                    session_id=view.session_id,
                    user_id=view.user_id,
                    gateway_id=view.gateway_id,
                    watched_seconds=round((ended - view.joined_at).total_seconds(), 3),
                )
                await self.outbox.record(session, left, stream_id=view.stream_id)
        if claimed:
            log.info("closed %d views of gateways that went away", len(claimed))
        return len(claimed)


def _last_seen(
    view: sa.Row, first_missed: datetime, heard: dict[str, float], ttl_s: int
) -> datetime:
    """When the viewer was last known watching: its gateway's last write of its sets (it died
    after), or else a TTL before the set was found gone (it expired a TTL after that write)."""
    if (at := heard.get(view.gateway_id)) is not None:
        return min(datetime.fromtimestamp(at, UTC), first_missed)
    return first_missed - timedelta(seconds=ttl_s)


async def _claim_estimates(session: AsyncSession, view_ids: list, *, at: datetime) -> set:
    """The views among these that no one has estimated yet, now claimed in the caller's
    transaction: what another replica, or an earlier sweep while the consumer still lags behind
    its `viewer.left`, has claimed is not estimated twice."""
    v = live_stream_viewers.c
    claimed = await session.execute(
        sa.update(live_stream_viewers)
        .where(v.id.in_(view_ids), v.left_at.is_(None), v.estimated_at.is_(None))
        .values(estimated_at=at)
        .returning(v.id)
    )
    return set(claimed.scalars())
