"""Who is watching: per-gateway counts in Redis that expire with the gateway.

Each gateway writes `presence:<stream>:<gateway>` = its viewer count with a TTL it keeps
refreshing; a crashed gateway's counts vanish after the TTL, so the sum over the live's gateways
stays right. Total views count joins; unique viewers go into a HyperLogLog.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis

from contracts.viewers import ViewerJoined, ViewerLeft, ViewersUpdated

log = logging.getLogger(__name__)

# Keeps the highest value ever written: peak viewers.
_RAISE_PEAK = """
local peak = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(ARGV[1])
if current > peak then redis.call('SET', KEYS[1], current) return current end
return peak
"""

Publish = Callable[[str, object], Awaitable[None]]
PUBLISH_TIMEOUT_S = 2.0
MAX_PENDING_EVENTS = 50_000


class Presence:
    def __init__(
        self, *, redis: Redis, prefix: str, gateway_id: str, ttl_s: int, publish: Publish
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.gateway_id = gateway_id
        self.ttl_s = ttl_s
        self.publish = publish
        self.local: Counter[str] = Counter()
        self.figures: dict[str, ViewersUpdated] = {}
        self._events: list[tuple[str, object]] = []
        self._unique: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._raise_peak = redis.register_script(_RAISE_PEAK)
        self.interval_s = 1.0

    def _key(self, stream_id: str, what: str) -> str:
        return f"{self.prefix}viewers:{stream_id}:{what}"

    def joined(self, stream_id: str, *, session_id: str, user_id: str | None) -> None:
        self.local[stream_id] += 1
        self._dirty.add(stream_id)
        self._unique.setdefault(stream_id, set()).add(user_id or session_id)
        self._events.append(
            (
                stream_id,
                ViewerJoined(session_id=session_id, user_id=user_id, gateway_id=self.gateway_id),
            )
        )

    def left(
        self, stream_id: str, *, session_id: str, user_id: str | None, watched_s: float
    ) -> None:
        self.local[stream_id] -= 1
        if self.local[stream_id] <= 0:
            del self.local[stream_id]
        self._dirty.add(stream_id)
        self._events.append(
            (
                stream_id,
                ViewerLeft(
                    session_id=session_id,
                    user_id=user_id,
                    gateway_id=self.gateway_id,
                    watched_seconds=round(max(watched_s, 0.0), 3),
                ),
            )
        )

    async def run(self, interval_s: float) -> None:
        """Write counts and publish figures every `interval_s` (at most once a second a live)."""
        self.interval_s = interval_s
        while True:
            started = time.monotonic()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: counts stay here and go out next time
                log.warning("presence sync failed: %s", error)
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))

    async def sync(self) -> None:
        dirty, self._dirty = self._dirty, set()
        unique, self._unique = self._unique, {}
        events, self._events = self._events, []
        watched = dirty | set(self.local)
        try:
            await self._write_counts(watched, unique, events)
        except BaseException:
            self._dirty |= dirty
            for stream_id, viewers in unique.items():
                self._unique.setdefault(stream_id, set()).update(viewers)
            self._events = events + self._events
            raise
        # Published side by side with a short timeout: NATS being away must not hold back the
        # count writes above, whose expiry would otherwise make this gateway's viewers vanish.
        announcements = [(s, f) for s in watched if (f := await self._changed_figures(s))]
        outcomes = await asyncio.gather(
            *(self._publish(s, e) for s, e in [*announcements, *events]), return_exceptions=True
        )
        failed = [
            item
            for item, outcome in zip(events, outcomes[len(announcements) :], strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:  # bookkeeping for analytics: kept for the next round, within reason
            self._events = (failed + self._events)[-MAX_PENDING_EVENTS:]
        for (stream_id, figures), outcome in zip(announcements, outcomes, strict=False):
            if not isinstance(outcome, BaseException):
                self.figures[stream_id] = figures
        for stream_id in watched - set(self.local):
            self.figures.pop(stream_id, None)

    async def _publish(self, stream_id: str, event: object) -> None:
        await asyncio.wait_for(self.publish(stream_id, event), PUBLISH_TIMEOUT_S)

    async def _write_counts(
        self, watched: set[str], unique: dict[str, set[str]], events: list[tuple[str, object]]
    ) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream_id in watched:
                count = self.local.get(stream_id, 0)
                mine = self._key(stream_id, f"gateway:{self.gateway_id}")
                if count:
                    pipe.set(mine, count, ex=self.ttl_s)
                else:
                    pipe.delete(mine)
                pipe.sadd(self._key(stream_id, "gateways"), self.gateway_id)
                pipe.expire(self._key(stream_id, "gateways"), self.ttl_s * 4)
            for stream_id, viewers in unique.items():
                pipe.pfadd(self._key(stream_id, "unique"), *viewers)
            for stream_id, event in events:
                if isinstance(event, ViewerJoined):
                    pipe.incr(self._key(stream_id, "total"))
            await pipe.execute()

    async def _changed_figures(self, stream_id: str) -> ViewersUpdated | None:
        """The live's figures if they changed and this gateway is the one to announce them."""
        gateways_key = self._key(stream_id, "gateways")
        gateways = sorted(cast(set[str], await self.redis.smembers(gateways_key)))
        counts = await self.redis.mget([self._key(stream_id, f"gateway:{g}") for g in gateways])
        gone = [g for g, c in zip(gateways, counts, strict=True) if c is None]
        if gone:
            await self.redis.srem(gateways_key, *gone)
        current = sum(int(c) for c in counts if c is not None)
        peak = int(await self._raise_peak(keys=[self._key(stream_id, "peak")], args=[current]))
        total = int(await self.redis.get(self._key(stream_id, "total")) or 0)
        unique_count = int(await self.redis.pfcount(self._key(stream_id, "unique")))
        figures = ViewersUpdated(current=current, peak=peak, total=total, unique=unique_count)
        if self.figures.get(stream_id) == figures:
            return None
        # One gateway announces a live's figures per interval, not every gateway.
        claimed = await self.redis.set(
            self._key(stream_id, "announcer"),
            self.gateway_id,
            nx=True,
            px=max(1, int(self.interval_s * 900)),
        )
        return figures if claimed else None

    async def read_figures(self, stream_id: str) -> ViewersUpdated:
        """The live's figures as Redis has them now (for lives this gateway does not serve)."""
        if (known := self.figures.get(stream_id)) is not None:
            return known
        gateways = cast(set[str], await self.redis.smembers(self._key(stream_id, "gateways")))
        counts = (
            await self.redis.mget([self._key(stream_id, f"gateway:{g}") for g in gateways])
            if gateways
            else []
        )
        peak, total = await self.redis.mget(
            [self._key(stream_id, "peak"), self._key(stream_id, "total")]
        )
        return ViewersUpdated(
            current=sum(int(c) for c in counts if c is not None),
            peak=int(peak or 0),
            total=int(total or 0),
            unique=int(await self.redis.pfcount(self._key(stream_id, "unique"))),
        )
