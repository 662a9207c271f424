"""Viewer presence on a real Redis: gateways' sets that die with their gateway, counted together
with registered players by analytics, each person once."""

import time
import uuid
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from chassis.bus import BusProvider, publish_event
from contracts import Envelope, subject_for
from contracts.viewers import ViewerJoined, ViewersUpdated
from services.analytics.audience import Audience
from services.gateway.presence import Presence
from tests.conftest import eventually
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
async def redis(env):
    client = aioredis.from_url(env["redis_url"], decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(env) -> str:
    return env["redis_prefix"] + uuid.uuid4().hex[:6] + ":"


def gateway(redis, prefix: str, name: str, published: list, ttl_s: int = 15) -> Presence:
    async def publish(envelope: Envelope) -> None:
        published.append((name, str(envelope.stream_id), envelope.payload()))

    return Presence(redis=redis, prefix=prefix, gateway_id=name, ttl_s=ttl_s, publish=publish)


def join(presence: Presence, stream_id: str, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        presence.joined(stream_id, session_id=f"session-{i:04d}", user_id=None)


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_counts_add_up_across_gateways_and_a_dead_gateways_viewers_expire(redis, prefix):
    published: list = []
    a = gateway(redis, prefix, "gw-a", published, ttl_s=1)
    b = gateway(redis, prefix, "gw-b", published, ttl_s=1)
    audience = Audience(redis=redis, prefix=prefix)
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 3)
    join(b, stream_id, 2, start=3)
    await a.sync()
    await b.sync()
    figures = await audience.figures(stream_id, now_ms=now_ms())
    assert figures == ViewersUpdated(current=5, peak=5, total=5, unique=5)
    assert await audience.active_lives(now_s=time.time(), within_s=60) == [stream_id]

    # gw-a crashes: it stops refreshing; its set expires.
    async def only_b_left() -> bool:
        await b.sync()
        return await audience.current(stream_id, now_ms=now_ms()) == 2

    await eventually(only_b_left, timeout=5)
    figures = await audience.figures(stream_id, now_ms=now_ms())
    assert (figures.current, figures.peak, figures.total) == (2, 5, 5)


async def test_one_person_is_counted_once_across_gateways_sockets_and_a_player(redis, prefix):
    published: list = []
    a = gateway(redis, prefix, "gw-a", published)
    b = gateway(redis, prefix, "gw-b", published)
    audience = Audience(redis=redis, prefix=prefix)
    stream_id = str(uuid.uuid4())
    for presence in (a, a, b):  # two tabs on one gateway, a phone on another
        presence.joined(stream_id, session_id=uuid.uuid4().hex, user_id="user-7")
    a.joined(stream_id, session_id="anonymous-1", user_id=None)
    await a.sync()
    await b.sync()
    await audience.player_watching(
        stream_id, viewer="user:user-7", until_ms=now_ms() + 60_000, now_s=time.time(),
        new_view=True,
    )  # fmt: skip
    figures = await audience.figures(stream_id, now_ms=now_ms())
    assert (figures.current, figures.unique, figures.total) == (2, 2, 5)
    # One tab closes: the person still watches.
    a.left(stream_id, session_id="x", user_id="user-7", watched_s=3)
    await a.sync()
    assert await audience.current(stream_id, now_ms=now_ms()) == 2
    published_joins = [p for _, _, p in published if isinstance(p, ViewerJoined)]
    assert len(published_joins) == 4


async def test_a_player_lease_runs_out_without_heartbeats(redis, prefix):
    audience = Audience(redis=redis, prefix=prefix)
    stream_id = str(uuid.uuid4())
    await audience.player_watching(
        stream_id, viewer="session:p1", until_ms=now_ms() + 300, now_s=time.time(), new_view=True
    )
    assert await audience.current(stream_id, now_ms=now_ms()) == 1
    assert await audience.current(stream_id, now_ms=now_ms() + 400) == 0


async def test_a_set_lost_from_redis_is_written_whole_again(redis, prefix):
    published: list = []
    a = gateway(redis, prefix, "gw-a", published)
    audience = Audience(redis=redis, prefix=prefix)
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 3)
    await a.sync()
    await redis.delete(a._key(stream_id, "gw:gw-a"))  # Redis restarted empty, say
    join(a, stream_id, 1, start=3)
    await a.sync()  # notices the set was gone
    await a.sync()  # writes it whole
    assert await audience.current(stream_id, now_ms=now_ms()) == 4


async def test_nothing_is_lost_while_redis_is_away(redis, prefix):
    published: list = []
    broken = aioredis.from_url("redis://127.0.0.1:1/0", decode_responses=True)
    a = gateway(broken, prefix, "gw-a", published)
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 2)
    with pytest.raises(redis_errors.ConnectionError):
        await a.sync()
    assert published == []
    a.redis = redis  # Redis is back
    await a.sync()
    audience = Audience(redis=redis, prefix=prefix)
    figures = await audience.figures(stream_id, now_ms=now_ms())
    assert (figures.current, figures.total) == (2, 2)
    assert len([p for _, _, p in published if isinstance(p, ViewerJoined)]) == 2
    await broken.aclose()


async def test_events_that_could_not_be_published_go_out_next_time(redis, prefix):
    published: list = []
    failing = True

    async def publish(envelope: Envelope) -> None:
        if failing:
            raise ConnectionError("NATS is away")
        published.append(envelope.payload())

    a = Presence(redis=redis, prefix=prefix, gateway_id="gw-a", ttl_s=15, publish=publish)
    stream_id = str(uuid.uuid4())
    join(a, stream_id, 2)
    await a.sync()
    assert published == []
    failing = False
    await a.sync()
    assert len([p for p in published if isinstance(p, ViewerJoined)]) == 2


async def test_gateways_show_the_figures_analytics_published(redis, prefix):
    a = gateway(redis, prefix, "gw-a", [])
    audience = Audience(redis=redis, prefix=prefix)
    stream_id = str(uuid.uuid4())
    assert await a.read_figures(stream_id) == {"current": 0, "peak": 0, "total": 0, "unique": 0}
    shown = ViewersUpdated(current=3, peak=4, total=9, unique=5)
    await audience.remember(stream_id, shown)
    assert await a.read_figures(stream_id) == shown.model_dump()
    assert await audience.claim(stream_id, for_ms=900)
    assert not await audience.claim(stream_id, for_ms=900)


async def test_a_viewer_event_whose_ack_was_lost_is_stored_once(redis, prefix, env, js):
    """The publish reaches JetStream but its ack does not come back in time: the retry carries
    the same event id, so JetStream drops it and the stream holds the event once."""
    address = urlsplit(env["nats_url"])
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 4222)
    proxy.start()
    bus = BusProvider(
        f"nats://127.0.0.1:{proxy.port}",
        name="presence-test-proxied",
        stream=env["jetstream_stream"],
        subject_root=env["subject_root"],
    )
    attempts: list[Envelope] = []

    async def publish(envelope: Envelope) -> None:
        attempts.append(envelope)
        subject = subject_for(envelope.stream_id, envelope.type, root=env["subject_root"])
        await publish_event(
            await bus.get(), subject=subject, body=envelope.model_dump_json().encode(),
            event_id=envelope.id,
        )  # fmt: skip

    a = Presence(redis=redis, prefix=prefix, gateway_id="gw-a", ttl_s=15, publish=publish)
    stream_id = str(uuid.uuid4())
    try:
        await bus.get()
        join(a, stream_id, 1)
        proxy.hold_replies()
        await a.sync()  # times out waiting for the ack: kept for the next round
        proxy.release_replies()
        await a.sync()
    finally:
        proxy.release_replies()
        await bus.close()
        proxy.close()
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    stored = await js.pull_subscribe(
        f"{env['subject_root']}.{stream_id}.>", stream=env["jetstream_stream"]
    )
    messages = await stored.fetch(10, timeout=2)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [str(attempts[0].id)]


async def test_while_redis_is_away_a_live_shows_its_last_known_figures_marked_stale(
    redis, prefix, env
):
    address = urlsplit(env["redis_url"])
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 6379)
    proxy.start()
    through = aioredis.from_url(
        f"redis://127.0.0.1:{proxy.port}/0", decode_responses=True, socket_timeout=2
    )
    a = Presence(redis=through, prefix=prefix, gateway_id="gw-a", ttl_s=15, publish=lambda _: None)
    seen, unseen = str(uuid.uuid4()), str(uuid.uuid4())
    shown = ViewersUpdated(current=3, peak=4, total=9, unique=5)
    await Audience(redis=redis, prefix=prefix).remember(seen, shown)
    try:
        assert await a.read_figures(seen) == shown.model_dump()
        proxy.cut()
        assert await a.read_figures(seen) == {**shown.model_dump(), "stale": True}
        zeros = {"current": 0, "peak": 0, "total": 0, "unique": 0, "stale": True}
        assert await a.read_figures(unseen) == zeros
        proxy.start()

        async def fresh() -> dict | None:
            figures = await a.read_figures(seen)
            return None if figures.get("stale") else figures

        assert await eventually(fresh) == shown.model_dump()
    finally:
        await through.aclose()
        proxy.close()
