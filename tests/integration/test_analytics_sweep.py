"""The views of a gateway that died are closed by estimate exactly once: whatever the lag of the
consumer that would apply the estimates, however many analytics replicas sweep side by side, and
after a restart that forgot what was missed; each watched until its gateway was last heard of."""

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from chassis.db import create_engine, session_factory
from chassis.outbox import Outbox
from contracts.presence import gateways_key
from services.analytics.announcer import Announcer
from services.analytics.app import migrate
from services.analytics.audience import Audience
from services.analytics.models import live_stream_viewers, outbox
from services.analytics.settings import AnalyticsSettings
from tests.support.services import schema_connection

OPEN_VIEWS = 300
INTERVAL_S = 0.2  # presence interval: a view missed twice 2 s apart is given up


@pytest.fixture
async def settings(env) -> AsyncIterator[AnalyticsSettings]:
    settings = AnalyticsSettings(
        **env, db_schema_prefix=f"sweep_{secrets.token_hex(3)}_", presence_ttl_s=2,
        presence_interval_s=INTERVAL_S,
    )  # fmt: skip
    await migrate(settings)
    yield settings
    async with schema_connection(settings, "analytics") as conn:
        await conn.execute(f'DROP SCHEMA "{settings.schema_for("analytics")}" CASCADE')


def replica(settings: AnalyticsSettings, redis: aioredis.Redis) -> tuple[Announcer, object]:
    """An analytics process's announcer, with its own pool (another replica, or a restart)."""
    engine = create_engine(settings.database_url, schema=settings.schema_for("analytics"))
    announcer = Announcer(
        sessions=session_factory(engine),
        outbox=Outbox(table=outbox, producer="analytics", subject_root=settings.subject_root),
        audience=Audience(redis=redis, prefix=settings.redis_prefix),
        interval_s=settings.presence_interval_s,
        presence_ttl_s=settings.presence_ttl_s,
        player_ttl_s=settings.player_ttl_s,
    )
    return announcer, engine


async def test_each_view_of_a_dead_gateway_is_estimated_once_by_two_replicas_and_a_restart(
    settings,
):
    stream_id = uuid4()
    joined = datetime.now(UTC) - timedelta(minutes=5)
    redis = aioredis.from_url(settings.redis_url, decode_responses=True)
    first, first_engine = replica(settings, redis)
    second, second_engine = replica(settings, redis)
    try:
        # Open views of a gateway whose presence set has expired; no consumer applies the
        # estimates, as when the viewers consumer lags far behind.
        async with first.sessions() as session, session.begin():
            await session.execute(
                sa.insert(live_stream_viewers),
                [
                    {
                        "id": uuid4(),
                        "stream_id": stream_id,
                        "session_id": f"viewer-{n:05d}",
                        "gateway_id": "gw-dead",
                        "viewer_key": f"session:viewer-{n:05d}",
                        "joined_at": joined,
                    }
                    for n in range(OPEN_VIEWS)
                ],
            )

        # The gateway last wrote its sets a minute after they joined, then died.
        await redis.zadd(gateways_key(settings.redis_prefix), {"gw-dead": joined.timestamp() + 60})

        async def sweeping(announcer: Announcer, *, for_s: float) -> None:
            until = asyncio.get_running_loop().time() + for_s
            while asyncio.get_running_loop().time() < until:
                await announcer.close_views_of_dead_gateways()
                await asyncio.sleep(INTERVAL_S)

        # Long enough for each replica to confirm every view and sweep several times after.
        await asyncio.gather(sweeping(first, for_s=5), sweeping(second, for_s=5))
        restarted, restarted_engine = replica(settings, redis)
        try:
            await sweeping(restarted, for_s=3)
        finally:
            await restarted_engine.dispose()

        async with first.sessions() as session:
            left = (
                await session.execute(
                    sa.select(outbox.c.envelope["data"]).where(
                        outbox.c.envelope["type"].astext == "viewer.left"
                    )
                )
            ).scalars()
            estimates = Counter()
            watched = set()
            for data in left:
                estimates[data["session_id"]] += 1
                watched.add(data["watched_seconds"])
            claimed = (
                await session.execute(
                    sa.select(sa.func.count()).where(
                        live_stream_viewers.c.estimated_at.is_not(None)
                    )
                )
            ).scalar()
        assert len(estimates) == OPEN_VIEWS
        assert set(estimates.values()) == {1}
        assert claimed == OPEN_VIEWS
        assert watched == {60.0}  # until the gateway was last heard of
    finally:
        await first_engine.dispose()
        await second_engine.dispose()
        await redis.aclose()
