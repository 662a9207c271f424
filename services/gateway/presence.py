"""Who is watching through this gateway: a set per live in Redis that expires with the gateway.

Each gateway keeps `viewers:{<live>}:gw:<gateway>` = the viewer keys (user id, else session id)
it holds for the live, and refreshes its expiry every interval; a crashed gateway's set vanishes
after the TTL. The analytics service counts the union of a live's sets with the players that
registered over HTTP — one person on two gateways, or with a socket and a player, counts once —
and publishes `viewers.updated` (at most once a second a live), which it also stores for the
gateways to show on arrival. The gateway publishes `viewer.joined/left`, counts views (`total`)
and adds unique viewers to a HyperLogLog. The layout is described in `contracts/presence.py`.
"""

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from uuid import UUID

import prometheus_client
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chassis.cancellation import raise_if_cancelled
from contracts import Envelope, new_envelope
from contracts.presence import active_key, gateway_set, gateways_key, live_key, viewer_key
from contracts.viewers import ViewerJoined, ViewerLeft, ViewersUpdated

log = logging.getLogger(__name__)
# Each round of writing this gateway's viewers to Redis (every PRESENCE_INTERVAL_S).
SYNCS = prometheus_client.Counter(
    "vitrine_presence_writes_total", "Rounds of writing the viewers to Redis", ["outcome"]
)

Publish = Callable[[Envelope], Awaitable[None]]
PUBLISH_TIMEOUT_S = 2.0
MAX_PENDING_EVENTS = 50_000
COUNTERS_TTL_S = 7 * 24 * 3600
GATEWAYS_KEPT_S = 24 * 3600  # a gateway gone this long is forgotten


class Presence:
    def __init__(
        self, *, redis: Redis, prefix: str, gateway_id: str, ttl_s: int, publish: Publish
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.gateway_id = gateway_id
        self.ttl_s = ttl_s
        self.publish = publish
        # Sockets per live and viewer key: a key stays in the set while one of them is open.
        self.local: dict[str, Counter[str]] = {}
        # Made when they happen, so a retry keeps the id (JetStream drops the copy) and the time.
        self._events: list[Envelope] = []
        self._added: dict[str, set[str]] = {}
        self._removed: dict[str, set[str]] = {}
        self._views: Counter[str] = Counter()
        self._rewrite: set[str] = set()  # lives whose set must be written whole again
        self.interval_s = 1.0
        self._figures: dict[str, ViewersUpdated] = {}  # the last read of each live's figures

    def _key(self, stream_id: str, what: str) -> str:
        return live_key(self.prefix, stream_id, what)

    @property
    def _mine(self) -> str:
        return gateway_set(self.gateway_id)

    def joined(self, stream_id: str, *, session_id: str, user_id: str | None) -> None:
        key = viewer_key(user_id=user_id, session_id=session_id)
        sockets = self.local.setdefault(stream_id, Counter())
        sockets[key] += 1
        if sockets[key] == 1:
            self._added.setdefault(stream_id, set()).add(key)
            self._removed.get(stream_id, set()).discard(key)
        self._views[stream_id] += 1
        joined = ViewerJoined(session_id=session_id, user_id=user_id, gateway_id=self.gateway_id)
        self._event(stream_id, joined)

    def left(
        self, stream_id: str, *, session_id: str, user_id: str | None, watched_s: float
    ) -> None:
        key = viewer_key(user_id=user_id, session_id=session_id)
        sockets = self.local.get(stream_id, Counter())
        sockets[key] -= 1
        if sockets[key] <= 0:
            del sockets[key]
            self._removed.setdefault(stream_id, set()).add(key)
            self._added.get(stream_id, set()).discard(key)
        if not sockets:
            self.local.pop(stream_id, None)
        left = ViewerLeft(
            session_id=session_id,
            user_id=user_id,
            gateway_id=self.gateway_id,
            watched_seconds=round(max(watched_s, 0.0), 3),
        )
        self._event(stream_id, left)

    def _event(self, stream_id: str, payload: ViewerJoined | ViewerLeft) -> None:
        envelope = new_envelope(payload, stream_id=UUID(stream_id), producer="gateway")
        self._events.append(envelope)

    async def run(self, interval_s: float) -> None:
        """Write this gateway's viewers every `interval_s`, for ever."""
        self.interval_s = interval_s
        while True:
            started = time.monotonic()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: changes stay here and go out next time
                raise_if_cancelled(error)
                log.warning("presence sync failed: %s", error)
            raise_if_cancelled()
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))

    async def sync(self) -> None:
        """Write the changes since last time and refresh expiries, then publish `viewer.*`."""
        added, self._added = self._added, {}
        removed, self._removed = self._removed, {}
        views, self._views = self._views, Counter()
        rewrite, self._rewrite = self._rewrite, set()
        events, self._events = self._events, []
        try:
            await self._write(added, removed, views, rewrite)
            SYNCS.labels("written").inc()
        except BaseException:
            SYNCS.labels("failed").inc()
            for stream_id, keys in added.items():
                self._added.setdefault(stream_id, set()).update(keys)
            for stream_id, keys in removed.items():
                self._removed.setdefault(stream_id, set()).update(keys)
            self._views.update(views)
            # The set may have expired meanwhile: write it whole next time.
            self._rewrite |= rewrite | set(self.local)
            self._events = events + self._events
            raise
        # Published only once the set says so, or analytics could close a view too early.
        # Side by side with a short timeout: NATS being away must not hold back the writes
        # above, whose expiry would otherwise make this gateway's viewers vanish.
        outcomes = await asyncio.gather(*map(self._publish, events), return_exceptions=True)
        failed = [
            item
            for item, outcome in zip(events, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:  # bookkeeping for analytics: kept for the next round, within reason
            self._events = (failed + self._events)[-MAX_PENDING_EVENTS:]

    async def _publish(self, envelope: Envelope) -> None:
        await asyncio.wait_for(self.publish(envelope), PUBLISH_TIMEOUT_S)

    async def _write(
        self,
        added: dict[str, set[str]],
        removed: dict[str, set[str]],
        views: Counter[str],
        rewrite: set[str],
    ) -> None:
        now = time.time()
        watched = sorted(set(self.local) | set(added) | set(removed))
        probes: dict[str, int] = {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream_id in watched:
                mine = self._key(stream_id, self._mine)
                if stream_id in rewrite:
                    pipe.delete(mine)
                    if held := self.local.get(stream_id):
                        pipe.sadd(mine, *held)
                else:
                    # Answers 0 when the set is gone (Redis restarted, or we stalled past the
                    # TTL): then the changes alone would leave it short, so it is rewritten.
                    probes[stream_id] = len(pipe.command_stack)
                    pipe.expire(mine, self.ttl_s)
                    if removed.get(stream_id):
                        pipe.srem(mine, *removed[stream_id])
                    if added.get(stream_id):
                        pipe.sadd(mine, *added[stream_id])
                pipe.expire(mine, self.ttl_s)
                pipe.sadd(self._key(stream_id, "holders"), self.gateway_id)
                pipe.expire(self._key(stream_id, "holders"), self.ttl_s * 4)
                pipe.zadd(active_key(self.prefix), {stream_id: now})
            # When this gateway last held its viewers: how long those of a crash watched.
            pipe.zadd(gateways_key(self.prefix), {self.gateway_id: now})
            pipe.zremrangebyscore(gateways_key(self.prefix), "-inf", now - GATEWAYS_KEPT_S)
            for stream_id, new in added.items():
                if new:
                    pipe.pfadd(self._key(stream_id, "unique"), *new)
                    pipe.expire(self._key(stream_id, "unique"), COUNTERS_TTL_S)
            for stream_id, count in views.items():
                pipe.incrby(self._key(stream_id, "total"), count)
                pipe.expire(self._key(stream_id, "total"), COUNTERS_TTL_S)
            results = await pipe.execute()
        self._rewrite.update(
            stream_id
            for stream_id, at in probes.items()
            if not results[at] and set(self.local.get(stream_id, ())) - added.get(stream_id, set())
        )

    async def read_figures(self, stream_id: str) -> dict[str, object]:
        """The live's figures as analytics last published them (zeros before it has). Redis only
        holds counts: while it is away, the last ones read here, marked `stale`, and a viewer
        still gets in."""
        try:
            raw = await self.redis.get(self._key(stream_id, "figures"))
        except (RedisError, OSError) as error:
            log.warning("viewer counts unavailable: %s", error)
            known = self._figures.get(
                stream_id, ViewersUpdated(current=0, peak=0, total=0, unique=0)
            )
            return {**known.model_dump(), "stale": True}
        figures = (
            ViewersUpdated.model_validate(json.loads(raw))
            if raw
            else ViewersUpdated(current=0, peak=0, total=0, unique=0)
        )
        if len(self._figures) > 10_000:
            self._figures.clear()
        self._figures[stream_id] = figures
        return figures.model_dump()
