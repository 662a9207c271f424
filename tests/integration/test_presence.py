"""Viewer presence on a real Redis: counts that add up across gateways and die with a gateway."""

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from contracts.viewers import ViewerJoined, ViewersUpdated
from services.gateway.presence import Presence


@pytest.fixture
async def redis(env):
    client = aioredis.from_url(env["redis_url"], decode_responses=True)
    yield client
    await client.aclose()


def gateway(redis, env, name: str, published: list, ttl_s: int = 15) -> Presence:
    async def publish(stream_id: str, payload: object) -> None:
        published.append((name, stream_id, payload))

    return Presence(
        redis=redis, prefix=env["redis_prefix"] + uuid.uuid4().hex[:6] + ":",
        gateway_id=name, ttl_s=ttl_s, publish=publish,
    )  # fmt: skip


def join(presence: Presence, stream_id: str, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        presence.joined(stream_id, session_id=f"session-{i:04d}", user_id=None)


async def test_counts_add_up_across_gateways_and_a_dead_gateways_viewers_expire(redis, env):
    published: list = []
    a = gateway(redis, env, "gw-a", published, ttl_s=1)
    b = gateway(redis, env, "gw-b", published, ttl_s=1)
    b.prefix = a.prefix  # the same deployment
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 3)
    join(b, stream_id, 2, start=3)
    await a.sync()
    await b.sync()
    assert await b.read_figures(stream_id) == ViewersUpdated(current=5, peak=5, total=5, unique=5)
    # gw-a crashes: it stops refreshing; its count expires with its key.
    await asyncio.sleep(1.2)
    await redis.delete(b._key(stream_id, "announcer"))
    b.figures.clear()
    await b.sync()
    figures = await b.read_figures(stream_id)
    assert figures.current == 2 and figures.peak == 5 and figures.total == 5


async def test_one_gateway_announces_a_lives_figures_per_interval(redis, env):
    published: list = []
    a = gateway(redis, env, "gw-a", published)
    b = gateway(redis, env, "gw-b", published)
    b.prefix = a.prefix
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 1)
    join(b, stream_id, 1, start=1)
    await asyncio.gather(a.sync(), b.sync())
    announcers = [name for name, _, p in published if isinstance(p, ViewersUpdated)]
    assert len(announcers) == 1
    joined = [p for _, _, p in published if isinstance(p, ViewerJoined)]
    assert len(joined) == 2


async def test_a_viewer_counted_twice_is_one_unique_viewer(redis, env):
    published: list = []
    a = gateway(redis, env, "gw-a", published)
    stream_id = str(uuid.uuid4())
    for _ in range(3):
        a.joined(stream_id, session_id="same-session", user_id="user-7")
    await a.sync()
    figures = await a.read_figures(stream_id)
    assert figures.current == 3 and figures.unique == 1 and figures.total == 3


async def test_nothing_is_lost_while_redis_is_away(redis, env):
    published: list = []
    broken = aioredis.from_url("redis://127.0.0.1:1/0", decode_responses=True)
    a = gateway(broken, env, "gw-a", published)
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 2)
    with pytest.raises(redis_errors.ConnectionError):
        await a.sync()
    assert published == []
    a.redis = redis  # Redis is back
    a._raise_peak = redis.register_script(a._raise_peak.script)
    await a.sync()
    assert (await a.read_figures(stream_id)).total == 2
    assert len([p for _, _, p in published if isinstance(p, ViewerJoined)]) == 2
    await broken.aclose()


async def test_events_that_could_not_be_published_go_out_next_time(redis, env):
    published: list = []
    failing = True

    async def publish(stream_id: str, payload: object) -> None:
        if failing:
            raise ConnectionError("NATS is away")
        published.append(payload)

    a = Presence(redis=redis, prefix=env["redis_prefix"] + "nats-away:", gateway_id="gw-a",
                 ttl_s=15, publish=publish)  # fmt: skip
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 2)
    await a.sync()
    assert published == []
    failing = False
    await redis.delete(a._key(stream_id, "announcer"))
    await a.sync()
    assert len([p for p in published if isinstance(p, ViewerJoined)]) == 2
    assert any(isinstance(p, ViewersUpdated) and p.current == 2 for p in published)
